// Builds the widget: widget/src/ (ES modules) → widget_server/static/widget.js, one minified IIFE,
// with widget.js.gz and widget.js.br beside it, compressed once at the highest levels so the server
// never compresses per request (widget_server/static_files.py picks the one a browser accepts).
// And the language packs: widget_server/static/texts/LANG.json (+ .gz, .br), the widget's texts of each
// language of the catalogue (bridge/texts/LANG/LC_MESSAGES/sitechat.po; widget/catalogue.mjs).
//
//   node widget/build.mjs      (or: make widget, npm run build)

import { build, transform } from 'esbuild';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import { languages, packOf } from './catalogue.mjs';

const ENTRY = fileURLToPath(new URL('src/main.js', import.meta.url));
const OUT = fileURLToPath(new URL('../widget_server/static/widget.js', import.meta.url));
const PACKS = fileURLToPath(new URL('../widget_server/static/texts/', import.meta.url));
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

/** The file, and beside it its gzip and brotli forms (written first: the file itself says the build is done). */
async function writeCompressed(path, code) {
  const gzip = zlib.gzipSync(code, { level: zlib.constants.Z_BEST_COMPRESSION });
  const brotli = zlib.brotliCompressSync(code, {
    params: {
      [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
      [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: code.length,
    },
  });
  await writeAtomically(path + '.gz', gzip);
  await writeAtomically(path + '.br', brotli);
  await writeAtomically(path, code);
  return { raw: code.length, gzip: gzip.length, brotli: brotli.length };
}

const LANGUAGES = await languages();

const result = await build({
  entryPoints: [ENTRY],
  bundle: true,
  format: 'iife', // nothing leaks into the page's globals; window.Sitechat is set on purpose
  minify: true,
  target: TARGET,
  legalComments: 'none',
  banner: { js: BANNER },
  plugins: [cssAsMinifiedText],
  define: { SITECHAT_LANGUAGES: JSON.stringify(LANGUAGES) },
  write: false,
  logLevel: 'warning',
});
const code = Buffer.from(result.outputFiles[0].contents);
// the packs first: a widget.js newer than its sources tells make (and the tests) the whole build is done
await mkdir(PACKS, { recursive: true });
for (const language of LANGUAGES.filter(l => l !== 'en')) {
  const size = await writeCompressed(PACKS + language + '.json', Buffer.from(JSON.stringify(await packOf(language))));
  console.log(`texts/${language}.json: ${size.raw} bytes, gzip ${size.gzip}, brotli ${size.brotli}`);
}
const size = await writeCompressed(OUT, code);
console.log(`widget.js: ${size.raw} bytes, gzip ${size.gzip}, brotli ${size.brotli}`);
