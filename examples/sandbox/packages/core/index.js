// sandbox-cli-core: what the sandbox knows about itself and its native grammar.
"use strict";

const os = require("os");

// tree-sitter-bash ships one prebuilt addon per platform
// (prebuilds/<platform>-<arch>/tree-sitter-bash.node); node-gyp-build loads the
// one matching this process, so requiring it proves the image's platform is right.
function grammar() {
  const bash = require("tree-sitter-bash");
  return { name: bash.name, nodeTypes: bash.nodeTypeInfo.length };
}

function info(version) {
  return {
    version,
    node: process.version,
    arch: process.arch,
    machine: os.machine ? os.machine() : os.arch(),
    user: os.userInfo().username,
    grammar: grammar(),
  };
}

module.exports = { grammar, info };
