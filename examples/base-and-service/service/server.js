"use strict";
// The service: reads the base image's configuration and answers every request with a
// greeting. `node server.js --once` prints the greeting and exits (the smoke test).

const fs = require("fs");
const http = require("http");
const os = require("os");
const greet = require("greeting");

function readConfig(path) {
  const conf = {};
  for (const line of fs.readFileSync(path, "utf8").split("\n")) {
    const m = line.match(/^\s*([A-Za-z0-9_.-]+)\s*=\s*(.*?)\s*$/);
    if (m) conf[m[1]] = m[2];
  }
  return conf;
}

const conf = readConfig(process.env.APP_CONFIG || "/etc/app/app.conf");
const message = greet(conf.greeting || "hello", os.machine ? os.machine() : process.arch);

if (process.argv.includes("--once")) {
  console.log(message);
} else {
  const [host, port] = (conf.listen || "0.0.0.0:8080").split(":");
  http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(message + "\n");
  }).listen(Number(port), host, () => console.log(`listening on ${host}:${port}`));
}
