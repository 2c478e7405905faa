// Builds the phone page into one flat directory the daemon embeds: the files of src/ and the
// three xterm.js files the page loads, copied byte for byte, plus a MANIFEST listing them.
//
// Invariants: the output depends only on the input files (no timestamps, no absolute paths), so
// building twice gives identical bytes and a test can compare a fresh build with the committed
// dist/; the set of files is fixed and flat, because the Rust side includes each one by name.
//
// Usage: node build.mjs [--out DIR]   (DIR defaults to dist/ beside this file)

import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** The files of xterm.js the page loads, by the name they get in the output. */
const VENDOR_FILES = {
  "xterm.js": "node_modules/@xterm/xterm/lib/xterm.js",
  "xterm.css": "node_modules/@xterm/xterm/css/xterm.css",
  "addon-fit.js": "node_modules/@xterm/addon-fit/lib/addon-fit.js",
};

/** Largest the whole output may grow, in bytes: the daemon's binary carries all of it. */
const DIST_BYTES_MAX = 1024 * 1024;

function outputDir(args) {
  const at = args.indexOf("--out");
  if (at === -1) return join(here, "dist");
  const dir = args[at + 1];
  if (!dir) throw new Error("--out needs a directory");
  return resolve(dir);
}

/** Every file to copy, as [output name, source path], sorted by name. */
function sources() {
  const srcDir = join(here, "src");
  const files = readdirSync(srcDir, { withFileTypes: true }).map((entry) => {
    // The output is flat; a folder in src/ would be silently left out otherwise.
    if (!entry.isFile()) throw new Error(`src/${entry.name} is not a plain file`);
    return [entry.name, join(srcDir, entry.name)];
  });
  for (const [name, path] of Object.entries(VENDOR_FILES)) {
    if (files.some(([existing]) => existing === name)) throw new Error(`src/${name} clashes with xterm's file`);
    files.push([name, join(here, path)]);
  }
  // Sorted by code units, not the locale, so every machine lists them in the same order.
  return files.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Empties `outDir` of a previous build; refuses a folder that holds anything else. */
function clear(outDir) {
  if (!existsSync(outDir) || readdirSync(outDir).length === 0) return;
  // A mistyped --out must not wipe a folder of someone's files.
  if (!existsSync(join(outDir, "MANIFEST"))) throw new Error(`${outDir} is not empty and holds no build`);
  rmSync(outDir, { recursive: true });
}

function build(outDir) {
  // Start empty so a file removed from src/ does not linger in the output.
  clear(outDir);
  mkdirSync(outDir, { recursive: true });
  const lines = [];
  let total = 0;
  for (const [name, source] of sources()) {
    copyFileSync(source, join(outDir, name));
    const size = statSync(join(outDir, name)).size;
    lines.push(`${name} ${size}`);
    total += size;
  }
  writeFileSync(join(outDir, "MANIFEST"), lines.join("\n") + "\n");
  if (total > DIST_BYTES_MAX) throw new Error(`the page is ${total} bytes, over ${DIST_BYTES_MAX}`);
  return { lines, total };
}

const outDir = outputDir(process.argv.slice(2));
const { lines, total } = build(outDir);
for (const line of lines) console.log(`  ${line}`);
console.log(`phone page: ${lines.length} files, ${total} bytes in ${outDir}`);

