// Small DOM helpers. What others wrote (agents, visitors, the site's settings) always goes into the
// page as text — textContent or appended strings — never as markup.

/** <tag class="className">text</tag> */
export function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text != null) el.textContent = text;
  return el;
}

/** Escape a value for the one HTML template (template.js): text and double-quoted attributes. */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"]/g, c => '&#' + c.charCodeAt(0) + ';');
}

/** The URL when it is http or https, else '': no javascript:, data: or other schemes in links. */
export function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return /^https?:$/.test(parsed.protocol) ? parsed.href : '';
  } catch {
    return '';
  }
}

/** A link to another site that opens in a new tab and learns nothing about this page. */
export function externalLink(href, text) {
  const a = element('a', '', text);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer nofollow';
  return a;
}
