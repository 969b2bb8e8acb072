// The widget's side of the catalogue (bridge/texts/__init__.py tells the whole story): each language's
// .po file → the pack the widget fetches, {key: text} for the entries whose context is "widget.KEY".
// A small reader of gettext's PO format, enough for what pybabel writes: comments, flags, msgctxt,
// msgid and msgstr over one or more quoted lines, C escapes. Fuzzy and untranslated entries are left
// out (the widget then shows its English), as gettext's compiler leaves them out.

import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const CATALOGUE = fileURLToPath(new URL('../bridge/texts/', import.meta.url));
const ESCAPES = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };

/** The entries of a PO file: [{context, id, text, fuzzy}]. */
export function readPo(source) {
  const entries = [];
  let entry = null;
  let field = null;
  const finish = () => {
    if (entry && entry.id !== undefined) entries.push(entry);
    entry = null;
    field = null;
  };
  for (const raw of source.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) {
      finish();
    } else if (line.startsWith('#')) {
      if (entry && entry.id !== undefined) finish();
      entry = entry || { fuzzy: false };
      if (line.startsWith('#,') && line.includes('fuzzy')) entry.fuzzy = true;
    } else {
      const match = /^(msgctxt|msgid|msgstr)\s+(".*")$/.exec(line);
      if (match) {
        if (match[1] === 'msgctxt' && entry && entry.id !== undefined) finish();
        entry = entry || { fuzzy: false };
        field = { msgctxt: 'context', msgid: 'id', msgstr: 'text' }[match[1]];
        entry[field] = unquote(match[2]);
      } else if (line.startsWith('"') && entry && field) {
        entry[field] += unquote(line);
      } else {
        throw new Error(`not PO: ${raw}`);
      }
    }
  }
  finish();
  return entries;
}

function unquote(quoted) {
  return quoted.slice(1, -1).replace(/\\(.)/g, (_, c) => ESCAPES[c] ?? c);
}

/** {key: text} of a language's widget entries. */
export function widgetPack(entries) {
  const pack = {};
  for (const { context, text, fuzzy } of entries) {
    if (context && context.startsWith('widget.') && text && !fuzzy) pack[context.slice('widget.'.length)] = text;
  }
  return pack;
}

/** The catalogue's languages: English (the texts in the code) and each LANG/LC_MESSAGES/sitechat.po. */
export async function languages() {
  const found = [];
  for (const entry of await readdir(CATALOGUE, { withFileTypes: true })) {
    if (!entry.isDirectory() || !/^[a-z]{2}$/.test(entry.name)) continue;
    found.push(entry.name);
  }
  return ['en', ...found.sort()];
}

export async function packOf(language) {
  return widgetPack(readPo(await readFile(`${CATALOGUE}${language}/LC_MESSAGES/sitechat.po`, 'utf8')));
}
