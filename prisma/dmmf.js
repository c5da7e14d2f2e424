#!/usr/bin/env node
// Prints the DMMF (Prisma's parsed form of a schema) as JSON on stdout.
//
//   node prisma/dmmf.js [schema-path]
//
// schema-path defaults to prisma/schema.prisma next to this script; a relative path is taken
// relative to the current directory, as any command-line tool would.
// matching/store/drift.py runs this to compare schema.prisma with the SQLAlchemy models, using
// Prisma's own parser (@prisma/prisma-schema-wasm, pinned in package.json) rather than a
// hand-written one, so the comparison sees exactly what Prisma sees.
//
// Exit codes (drift.py maps them to its exceptions):
//   0  DMMF JSON printed
//   1  Prisma rejected the schema; its message is on stderr
//   2  usage or I/O error (schema file unreadable)
//   3  @prisma/prisma-schema-wasm is not installed (run `npm install`)
"use strict";

const fs = require("fs");
const path = require("path");

const PACKAGE = "@prisma/prisma-schema-wasm";
const EXIT_SCHEMA_INVALID = 1;
const EXIT_USAGE = 2;
const EXIT_PACKAGE_MISSING = 3;

// Prisma's messages are coloured for a terminal; callers capturing stderr want plain text.
function plain(text) {
  return process.stderr.isTTY ? text : text.replace(/\u001b\[[0-9;]*m/g, "");
}

function fail(code, message) {
  process.stderr.write(plain(message).replace(/\n?$/, "\n"));
  // exitCode rather than process.exit(): exit() may cut off output still queued on a pipe.
  process.exitCode = code;
}

function loadWasm() {
  try {
    return require(PACKAGE);
  } catch (err) {
    // Only a missing package gets the "install it" exit code; a broken one is reported as is.
    if (err && err.code === "MODULE_NOT_FOUND" && String(err.message).includes(PACKAGE)) {
      return null;
    }
    throw err;
  }
}

// The wasm throws an Error whose message is JSON: {"error_code": "P1012", "message": "..."}.
function prismaMessage(err) {
  const raw = err && err.message !== undefined ? String(err.message) : String(err);
  try {
    const parsed = JSON.parse(raw);
    if (parsed && typeof parsed.message === "string") {
      return parsed.error_code ? `${parsed.error_code}: ${parsed.message}` : parsed.message;
    }
  } catch (_) {
    // Not JSON: fall through and show the raw text.
  }
  return raw;
}

function main(argv) {
  if (argv.length > 1) {
    fail(EXIT_USAGE, "usage: node prisma/dmmf.js [schema-path]");
    return;
  }
  const schemaPath = argv.length === 1 ? path.resolve(argv[0]) : path.join(__dirname, "schema.prisma");

  let schema;
  try {
    schema = fs.readFileSync(schemaPath, "utf8");
  } catch (err) {
    fail(EXIT_USAGE, `cannot read ${schemaPath}: ${err.message}`);
    return;
  }

  const wasm = loadWasm();
  if (wasm === null) {
    fail(EXIT_PACKAGE_MISSING, `${PACKAGE} is not installed; run \`npm install\` in ${path.dirname(__dirname)}`);
    return;
  }

  let dmmf;
  try {
    dmmf = wasm.get_dmmf(JSON.stringify({ prismaSchema: schema }));
  } catch (err) {
    fail(EXIT_SCHEMA_INVALID, `${schemaPath}: ${prismaMessage(err)}`);
    return;
  }
  process.stdout.write(dmmf);
  process.stdout.write("\n");
}

main(process.argv.slice(2));
