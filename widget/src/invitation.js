// The chat invitation (CONTRACT §10): after the site's INVITE_AFTER_SECONDS on a page matching its
// INVITE_PAGES, a small bubble above the launcher — a non-modal dialog named "Chat invitation" that
// holds the greeting (a button: it opens the chat) and "Dismiss". At most once per visit (session
// storage), never while the chat is open or a conversation goes on, never when nobody is online. It
// takes no focus: screen readers hear it once through the polite announcer.

import { subscribe } from './events.js';
import { siteGreeting } from './language.js';
import { byId, state } from './state.js';
import { announce, openPanel } from './views.js';

let timer;

/** Start (or, after a navigation, restart) the time on this page; nothing when the site invites nobody. */
export function scheduleInvitation() {
  clearTimeout(timer);
  const invitation = state.site.invitation;
  if (!invitation || !(invitation.after_seconds > 0) || invited()) return;
  timer = setTimeout(showInvitation, invitation.after_seconds * 1000);
}

export function wireInvitation() {
  byId('invitation-open').onclick = () => {
    hideInvitation();
    openPanel();
  };
  byId('invitation-dismiss').onclick = () => hideInvitation(true);
  subscribe('open', () => hideInvitation()); // the launcher or Sitechat.open() opened the chat
  byId('invitation').addEventListener('keydown', event => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      hideInvitation(true);
    }
  });
}

function showInvitation() {
  const { site, texts } = state;
  const pages = site.invitation.pages || [];
  if (state.isOpen || state.conversation || site.online === false || invited()) return;
  if (pages.length && !pages.some(glob => matches(glob, location.pathname))) return;
  remember();
  byId('invitation-open').textContent = siteGreeting();
  byId('invitation').hidden = false;
  announce(texts.invitation + ': ' + siteGreeting());
}

/** Hide the bubble; from a key press inside it, the focus goes back to the launcher, not to the page's top. */
function hideInvitation(keepFocusNear) {
  const bubble = byId('invitation');
  const hadFocus = bubble.contains(state.root.activeElement);
  bubble.hidden = true;
  if (keepFocusNear && hadFocus) byId('launcher').focus();
}

/** A path glob: * matches anything (also /), ? one character; the rest as written. */
export function matches(glob, path) {
  const pattern = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp('^' + pattern + '$').test(path);
}

function storageKey() {
  return state.config.storageKey + ':invited';
}

// session storage may be refused (privacy settings): then the bubble may come again on the next page
function invited() {
  try {
    return sessionStorage.getItem(storageKey()) === '1';
  } catch {
    return false;
  }
}

function remember() {
  try {
    sessionStorage.setItem(storageKey(), '1');
  } catch {
    // see above
  }
}
