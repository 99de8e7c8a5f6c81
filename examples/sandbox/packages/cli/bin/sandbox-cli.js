#!/usr/bin/env node
// sandbox-cli: the command-line tool of the sandbox example.
"use strict";

const pkg = require("../package.json");

const args = process.argv.slice(2);
if (args.includes("--version") || args.includes("-v")) {
  console.log(process.env.CLI_VERSION || pkg.version);
} else if (args[0] === "info") {
  console.log(JSON.stringify(require("sandbox-cli-core").info(pkg.version)));
} else if (args.length === 0 || args.includes("--help") || args.includes("-h")) {
  console.log("usage: sandbox-cli [--version | info | --help]");
} else {
  console.error(`sandbox-cli: unknown argument ${JSON.stringify(args[0])}`);
  process.exit(2);
}
