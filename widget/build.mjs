// Builds the widget: widget/src/ (ES modules) → widget_server/static/widget.js, one minified IIFE,
// with widget.js.gz and widget.js.br beside it, compressed once at the highest levels so the server
// never compresses per request (widget_server/static_files.py picks the one a browser accepts).
//
//   node widget/build.mjs      (or: make widget, npm run build)

import { build, transform } from 'esbuild';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const ENTRY = fileURLToPath(new URL('src/main.js', import.meta.url));
const OUT = fileURLToPath(new URL('../widget_server/static/widget.js', import.meta.url));
// the browsers the widget supports: what esbuild may emit (and refuses to, beyond)
const TARGET = 'es2020';
const BANNER = '/*! sitechat widget | built from widget/src/ by widget/build.mjs */\n"use strict";';

/** `import css from './widget.css'` gives the stylesheet as a minified string. */
const cssAsMinifiedText = {
  name: 'css-as-minified-text',
  setup(builder) {
    builder.onLoad({ filter: /\.css$/ }, async ({ path }) => {
      const { code } = await transform(await readFile(path, 'utf8'), { loader: 'css', minify: true });
      return { contents: code.trim(), loader: 'text' };
    });
  },
};

/** Write through a temporary file: a running server never serves half a file. */
async function writeAtomically(path, data) {
  await writeFile(path + '.tmp', data);
  await rename(path + '.tmp', path);
}

const result = await build({
  entryPoints: [ENTRY],
  bundle: true,
  format: 'iife', // nothing leaks into the page's globals; window.Sitechat is set on purpose
  minify: true,
  target: TARGET,
  legalComments: 'none',
  banner: { js: BANNER },
  plugins: [cssAsMinifiedText],
  write: false,
  logLevel: 'warning',
});
const code = Buffer.from(result.outputFiles[0].contents);
const gzip = zlib.gzipSync(code, { level: zlib.constants.Z_BEST_COMPRESSION });
const brotli = zlib.brotliCompressSync(code, {
  params: {
    [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
    [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
    [zlib.constants.BROTLI_PARAM_SIZE_HINT]: code.length,
  },
});
// the compressed ones first: the raw file is what tells make (and the tests) the build is done
await writeAtomically(OUT + '.gz', gzip);
await writeAtomically(OUT + '.br', brotli);
await writeAtomically(OUT, code);
console.log(`widget.js: ${code.length} bytes, gzip ${gzip.length}, brotli ${brotli.length}`);
