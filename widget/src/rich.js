// An agent's formatting (CONTRACT §7): the message's `html` is built into the page element by element
// from the allowed tags only — never given to the page as markup. The server sends the sanitized subset
// already; this is the second lock on the same door.

import { element, externalLink, safeUrl } from './dom.js';

const ALLOWED = /^(P|BR|STRONG|EM|DEL|CODE|PRE|BLOCKQUOTE|UL|OL|LI)$/;
// their content is never text a person wrote
const DROPPED = /^(SCRIPT|STYLE|TEMPLATE|NOSCRIPT|IFRAME|OBJECT|EMBED|SVG|MATH|TEXTAREA|TITLE)$/;

/** Append the subset HTML `html` to `el`; false when it holds nothing to show (then show the text). */
export function appendRich(el, html) {
  // a parsed, inert document: nothing in it runs or loads
  const body = new DOMParser().parseFromString(html, 'text/html').body;
  copyChildren(body, el);
  return el.textContent.trim() !== '';
}

function copyChildren(from, to) {
  for (const node of from.childNodes) {
    if (node.nodeType === 3) {
      to.append(node.data);
    } else if (node.nodeType === 1) {
      to.append(copyElement(node));
    }
  }
}

/** The allowed element as a new one of ours (no attributes), a link to a web page, or just its text. */
function copyElement(node) {
  const tag = node.tagName.toUpperCase();
  const out = document.createDocumentFragment();
  if (DROPPED.test(tag)) return out;
  let copy = out;
  if (ALLOWED.test(tag)) {
    copy = element(tag.toLowerCase());
  } else if (tag === 'A' && safeUrl(node.getAttribute('href') || '')) {
    copy = externalLink(safeUrl(node.getAttribute('href')));
  }
  copyChildren(node, copy);
  if (copy !== out) out.append(copy);
  return out;
}
