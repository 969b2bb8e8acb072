// The visitor's language: the site's own (SITECHAT_SITES__…__LANGUAGE), else the first of the
// browser's languages the widget speaks, else English. English is built in; another language's texts
// are a small pack (built from the catalogue by widget/build.mjs), fetched only when needed.

/* global SITECHAT_LANGUAGES -- the catalogue's languages, put in by widget/build.mjs */

import { state } from './state.js';
import { textsIn } from './texts.js';

/** The first language of the browser's the widget speaks ('de-AT' → 'de'), else 'en'. */
export function browserLanguage() {
  const preferred = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  for (const tag of preferred) {
    const code = String(tag || '').toLowerCase().split(/[-_]/)[0];
    if (SITECHAT_LANGUAGES.includes(code)) return code;
  }
  return 'en';
}

/** Settle the language and the texts in it (a pack that cannot be had leaves the widget in English). */
export async function loadTexts() {
  const { config, site } = state;
  let language = SITECHAT_LANGUAGES.includes(site.language) ? site.language : browserLanguage();
  let pack = {};
  if (language !== 'en') {
    pack = await fetchPack(language);
    if (!pack) {
      language = 'en';
      pack = {};
    }
  }
  state.language = language;
  state.texts = textsIn(pack, config.pageTexts);
}

async function fetchPack(language) {
  try {
    const response = await fetch(`${state.config.apiBase}/widget-texts/${language}.json`, { credentials: 'omit' });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

/** The site's greeting in the visitor's language. */
export function siteGreeting() {
  const { site, language } = state;
  return (site.greetings && site.greetings[language]) || site.greeting || '';
}
