#!/usr/bin/env node
// sandbox-cli: the command-line tool of the sandbox example.
"use strict";

const os = require("os");
const pkg = require("../package.json");

const args = process.argv.slice(2);
if (args.includes("--version") || args.includes("-v")) {
  console.log(pkg.version);
} else if (args[0] === "info") {
  console.log(JSON.stringify({
    name: pkg.name,
    version: pkg.version,
    node: process.version,
    arch: process.arch,
    machine: os.machine ? os.machine() : os.arch(),
  }));
} else if (args.length === 0 || args.includes("--help") || args.includes("-h")) {
  console.log(`usage: sandbox-cli [--version | info | --help]`);
} else {
  console.error(`sandbox-cli: unknown argument ${JSON.stringify(args[0])}`);
  process.exit(2);
}
