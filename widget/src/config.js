// What the embedding page told us, read once from our own <script> tag.

import { pageTexts } from './texts.js';

const DEFAULT_COLOR = '#1d4ed8';

/**
 * The <script> tag that loaded this file. document.currentScript is null when a tag manager
 * evaluates the code instead of loading it by src, hence the fallback.
 */
export function findOwnScript() {
  return document.currentScript || document.querySelector('script[data-site][src*="widget.js"]');
}

/** The settings from the script tag, or null without data-site. */
export function readConfig(script) {
  const siteId = script.dataset.site;
  if (!siteId) return null;
  return {
    siteId,
    // the API lives where the script came from, whatever page embeds it
    apiBase: new URL(script.src).origin,
    storageKey: 'sitechat:' + siteId,
    requireName: isSet(script, 'data-require-name'),
    requireEmail: isSet(script, 'data-require-email'),
    color: brandColor(script.dataset.color),
    // texts the page sets itself: they win over every language (texts.js)
    pageTexts: pageTexts(script),
  };
}

/** A boolean attribute: present and empty, "true", "1" or "yes". */
function isSet(script, name) {
  return /^(|true|1|yes)$/i.test(script.getAttribute(name) ?? 'x');
}

/** data-color when the browser takes it as a colour (so it cannot break out of the stylesheet). */
function brandColor(color) {
  return color && window.CSS && CSS.supports('color', color) ? color : DEFAULT_COLOR;
}
