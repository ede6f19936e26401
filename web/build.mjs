/*
 * build.mjs: bundle the dashboard into dist/ with esbuild: app.js (our
 * code, d3-geo, topojson-client, uPlot and the world-atlas 110m
 * countries), app.css, index.html with a content hash for caching.
 * Writes into a fresh directory given as argv[2] (default dist).
 */
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, 'dist');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

/* esbuild prints its errors itself (logLevel); no stack trace on top */
await build({
  entryPoints: { app: join(here, 'src/main.js') },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: out,
  loader: { '.json': 'json' },
  legalComments: 'eof',
  logLevel: 'warning',
}).catch(() => process.exit(1));

const hash = createHash('sha256')
  .update(readFileSync(join(out, 'app.js')))
  .update(readFileSync(join(out, 'app.css')))
  .digest('hex')
  .slice(0, 12);
const html = readFileSync(join(here, 'src/index.html'), 'utf8').replaceAll('@HASH@', hash);
writeFileSync(join(out, 'index.html'), html);
