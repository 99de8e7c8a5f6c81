"use strict";

// greet("hello", "arm64") -> "hello from arm64"
module.exports = function greet(word, where) {
  return `${word} from ${where}`;
};
