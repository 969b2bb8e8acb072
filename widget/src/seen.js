// Read state (CONTRACT §7). The team learns what the visitor has seen: an agent's message counts as
// seen once it is on screen in a visible, focused page with the chat open ({"type": "seen", "seq"}).
// The visitor learns what the team has read: "Seen" under their last message the team read.

import { isLive, sendFrame } from './live.js';
import { element } from './dom.js';
import { byId, state } from './state.js';

/** the agents' messages on screen now, by seq */
const onScreen = new Set();
/** the highest seq told to the server */
let told = 0;
/** the visitor's messages up to this seq are read by the team */
let readUpTo = 0;
let observer;

/** Watch an agent's message element: once it is on screen, it may be reported as seen. */
export function watchSeen(el) {
  if (!window.IntersectionObserver) return;
  observer =
    observer ||
    new IntersectionObserver(
      entries => {
        for (const entry of entries) {
          const seq = +entry.target.dataset.seq;
          if (entry.isIntersecting) onScreen.add(seq);
          else onScreen.delete(seq);
        }
        reportSeen();
      },
      { root: byId('log') },
    );
  observer.observe(el);
}

/** Tell the server the highest agent message on screen, when the visitor can really be looking at it. */
export function reportSeen() {
  if (!state.isOpen || !isLive() || document.visibilityState !== 'visible' || !document.hasFocus()) return;
  const seq = Math.max(0, ...onScreen);
  if (seq > told) {
    told = seq;
    sendFrame({ type: 'seen', seq });
  }
}

/** The team has read the visitor's messages up to seq: "Seen" under the last of them (only there). */
export function showRead(seq) {
  readUpTo = Math.max(readUpTo, seq || 0);
  const mine = [...byId('log').querySelectorAll('.m.visitor[data-seq]')].filter(el => +el.dataset.seq <= readUpTo);
  const last = mine[mine.length - 1];
  if (!last || last.querySelector('.seen')) return;
  byId('log').querySelectorAll('.seen').forEach(old => old.remove());
  last.querySelector('.meta').append(element('span', 'seen', ' · ' + state.texts.seen));
}

/** A new chat: nothing seen either way. */
export function forgetSeen() {
  if (observer) observer.disconnect();
  observer = null;
  onScreen.clear();
  told = readUpTo = 0;
}

export const teamReadUpTo = () => readUpTo;
