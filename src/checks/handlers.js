// stepgate's handler check, run as `node --experimental-vm-modules -e` by
// src/checks/handlers.rs. argv[1] is JSON: {"check": [file, ...],
// "load": [[function dir, entry file, export], ...]}. Parses every file in
// `check` as node would load it, without running it, then imports each
// entry and checks its export. Prints one JSON object:
// {"suspects": [files that did not parse], "problem": null | {...},
//  "unchecked": [[file, error], ...]}: modules whose loading node's
// permission model stopped (a file write, a child process, an addon), whose
// exports therefore cannot be known.
// The Rust side confirms each suspect with `node --check`, which also gives
// the line, so a quirk of this quick pass can never refuse a good file.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const { wrap } = require("node:module");
const { pathToFileURL } = require("node:url");

const { check, load } = JSON.parse(process.argv[1]);
const esmOnly = /Cannot use import statement outside a module|Unexpected token 'export'|import\.meta|await is only valid/;

// "module", "commonjs", or "auto" (no package.json type: node detects it).
function kind(file) {
  if (file.endsWith(".mjs")) return "module";
  if (file.endsWith(".cjs")) return "commonjs";
  for (let dir = path.dirname(file); ; ) {
    try {
      const type = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).type;
      return type === "module" || type === "commonjs" ? type : "auto";
    } catch (e) {
      if (e.code !== "ENOENT") return "auto";
    }
    const up = path.dirname(dir);
    if (up === dir) return "auto";
    dir = up;
  }
}

function parses(file) {
  const source = fs.readFileSync(file, "utf8").replace(/^#!.*/, "");
  const asModule = () => new vm.SourceTextModule(source, { identifier: file });
  const asScript = () => new vm.Script(wrap(source), { filename: file });
  try {
    if (kind(file) === "module") {
      asModule();
    } else {
      try {
        asScript();
      } catch (e) {
        if (kind(file) !== "auto" || !esmOnly.test(String(e))) throw e;
        asModule();
      }
    }
    return true;
  } catch (e) {
    return false;
  }
}

const unchecked = [];
const sandboxed = new Set(["ERR_ACCESS_DENIED", "ERR_DLOPEN_DISABLED"]);

function done(problem) {
  process.stdout.write(JSON.stringify({ suspects, problem, unchecked }));
  process.exit(0);
}

const suspects = check.filter((file) => !parses(file));
(async () => {
  for (const [dir, file, name] of load) {
    process.chdir(dir);
    let module;
    try {
      module = await import(pathToFileURL(file).href);
    } catch (e) {
      if (e && sandboxed.has(e.code)) {
        unchecked.push([file, `${e.code}: ${String(e.message).split("\n")[0]}`]);
        continue;
      }
      done({ file, load: String((e && e.stack) || e).split("\n")[0] });
    }
    let f = module[name];
    if (f === undefined && module.default != null && typeof module.default === "object") {
      f = module.default[name];
    }
    if (typeof f !== "function") {
      done({ file, export: name, type: f === undefined ? "undefined" : f === null ? "null" : typeof f });
    }
  }
  done(null);
})();
