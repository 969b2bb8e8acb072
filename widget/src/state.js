// The widget's state, and what of it the browser remembers.
//
// There is one widget per page (main.js refuses to start a second copy), so the state of these
// modules is the widget's state; the bundle wraps everything in one function, so none of it is a
// global of the page.

import { unsentForStorage } from './outbox.js';
import { parseJson } from './util.js';

export const state = {
  /** the script tag's settings (config.js) */
  config: null,
  /** the texts in the visitor's language (texts.js, language.js) */
  texts: null,
  /** the visitor's language: the site's, else the first of the browser's the widget speaks */
  language: 'en',
  /** GET /api/v1/sites/{site}: {name, greeting, greetings, language, online, topics, office_hours, invitation} */
  site: null,
  /** who the visitor is, as far as they told us (forms, identify()): {name, email, id, hash} */
  visitor: {},
  /** the current conversation, {id, token, lastSeq, status, rated}, or null before one starts */
  conversation: null,
  /** the shadow root everything is rendered into, once the site's settings are in */
  root: null,
  /** the panel is showing */
  isOpen: false,
  /** open() was called before the widget was rendered: open it once it is */
  openWhenRendered: false,
  /** a follow-up mail's link was refused and there is no chat here: the start view says so (resume.js) */
  linkRefused: false,
  /** agent messages that arrived while the panel was closed */
  unread: 0,
  /** the rating the visitor picked, 1..5; 0 = none yet */
  score: 0,
};

/** An element of the widget by id (ids are only unique inside our shadow root). */
export function byId(id) {
  return state.root.getElementById(id);
}

/** Set (or, without text, clear) an element's text. */
export function setText(id, text) {
  byId(id).textContent = text || '';
}

// ---- storage: localStorage "sitechat:{site}" = {visitor, id, token, lastSeq, status, rated, queue}
// (the shape earlier versions wrote: a visitor in the middle of a chat keeps it across an upgrade)

/** Load what this browser remembers; returns the messages that were still unsent. */
export function restoreState() {
  const saved = parseJson(readStorage()) || {};
  state.visitor = saved.visitor || {};
  if (saved.id && saved.token) {
    const { id, token, lastSeq, status, rated } = saved;
    state.conversation = { id, token, lastSeq, status, rated };
  }
  return state.conversation && Array.isArray(saved.queue) ? saved.queue : [];
}

/** Remember the visitor, the conversation and its unsent messages (for a reload or another tab). */
export function saveState() {
  const saved = { visitor: state.visitor };
  const conversation = state.conversation;
  if (conversation) {
    const { id, token, lastSeq, status, rated } = conversation;
    Object.assign(saved, { id, token, lastSeq, status, rated, queue: unsentForStorage() });
  }
  writeStorage(JSON.stringify(saved));
}

// Storage may be refused (privacy settings, a full quota): the chat then works for this page only.
function readStorage() {
  try {
    return localStorage.getItem(state.config.storageKey);
  } catch {
    return null;
  }
}

function writeStorage(value) {
  try {
    localStorage.setItem(state.config.storageKey, value);
  } catch {
    // see above
  }
}
