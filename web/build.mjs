// Builds dist/ (index.html, app.js, app.css), or the directory given, from src/: the files
// zonesd embeds (src/zonesd/web.rs). Deterministic for a given lockfile: CI rebuilds into a
// temporary directory and compares (scripts/build-web.sh --check).
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = process.argv[2] || "dist";
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: { app: "src/main.js" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir: out,
  legalComments: "eof",
  logLevel: "warning",
});
copyFileSync("src/index.html", `${out}/index.html`);
