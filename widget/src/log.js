// The conversation log: the messages shown, in seq order, each once — whether it came over the
// socket, from the HTTP catch-up, or as the answer to the visitor's own POST.

import { emit } from './events.js';
import { messageElement } from './messages.js';
import { confirmQueued } from './outbox.js';
import { forgetSeen, showRead, teamReadUpTo, watchSeen } from './seen.js';
import { byId, saveState, setText, state } from './state.js';
import { format } from './texts.js';
import { announce, updateBadge } from './views.js';

const TYPING_SHOWN_MS = 4000;
// a reader this close to the bottom is following the conversation: keep them at the bottom
const FOLLOWING_PX = 80;

/** seq → its element, so a message is shown once and can be redrawn in place */
const shownBySeq = new Map();
/** id → message, to redraw a message when only its id comes (a deletion) */
const messagesById = new Map();
/** the highest seq shown: what the socket's hello and the HTTP catch-up ask for "after" */
let highestSeq = 0;
let typingTimer;

export function highestSeqShown() {
  return highestSeq;
}

/**
 * Show a message from the server. clientMsgId names the visitor's queued line it confirms when the
 * message does not say so itself (the answer to a POST).
 */
export function showMessage(message, clientMsgId) {
  const conversation = state.conversation;
  if (!message || !message.seq || !conversation) return;
  confirmQueued(message.client_msg_id || clientMsgId);
  if (shownBySeq.has(message.seq)) return;
  // new to this browser, not history replayed after a reload or in a second tab
  const isNew = message.seq > (conversation.lastSeq || 0);
  if (isNew) {
    conversation.lastSeq = message.seq;
    saveState();
  }
  if (message.seq > highestSeq) highestSeq = message.seq;
  const el = messageElement(message);
  placeInLog(el, message.seq);
  shownBySeq.set(message.seq, el);
  messagesById.set(message.id, message);
  const role = (message.author || {}).role;
  if (role === 'agent') watchSeen(el);
  if (role === 'visitor' && message.seq <= teamReadUpTo()) showRead(message.seq);
  if (role === 'agent') showTyping(null); // whoever was typing has sent it
  if (isNew) {
    emit('message', message);
    tellScreenReader(message, role);
  }
}

/** Redraw a message in place (an edit, a deletion); show it if it was not shown yet. */
export function redrawMessage(message) {
  const old = shownBySeq.get(message.seq);
  if (!old) return showMessage(message);
  const el = messageElement(message);
  old.replaceWith(el);
  shownBySeq.set(message.seq, el);
  messagesById.set(message.id, message);
  if ((message.author || {}).role === 'agent') watchSeen(el);
}

/** A message the server deleted: it keeps its place, with "Message deleted" for its text. */
export function showDeleted(id) {
  const message = messagesById.get(id);
  if (message) redrawMessage(Object.assign({}, message, { deleted: true, text: '' }));
}

/**
 * Insert el by seq (before the first later or still-pending line); el without seq (the visitor's
 * pending line) goes at the end.
 */
export function placeInLog(el, seq) {
  const log = byId('log');
  const following = log.scrollHeight - log.scrollTop - log.clientHeight < FOLLOWING_PX;
  const next = seq ? [...log.children].find(child => !child.dataset.seq || +child.dataset.seq > seq) : null;
  log.insertBefore(el, next || null);
  if (following || !seq) log.scrollTop = log.scrollHeight;
}

/** "Alice is typing…" for a while, or (author null) no longer. */
export function showTyping(author) {
  clearTimeout(typingTimer);
  const text = author ? format(state.texts.typing, { name: author.name || state.texts.agent }) : '';
  // the line is a live region: setting the same text again would announce it again
  if (byId('typing').textContent !== text) setText('typing', text);
  if (author) typingTimer = setTimeout(() => showTyping(null), TYPING_SHOWN_MS);
}

/** Forget every message shown (a new chat). */
export function clearLog() {
  forgetSeen();
  highestSeq = 0;
  shownBySeq.clear();
  messagesById.clear();
  byId('log').replaceChildren();
}

/**
 * The log itself is not a live region (it would read out history, the visitor's own lines and
 * every redraw): new lines from the team are announced once, by the polite announcer. While the
 * panel is closed an agent's line only counts as unread.
 */
function tellScreenReader(message, role) {
  const { texts } = state;
  if (role !== 'agent' && role !== 'system') return;
  if (!state.isOpen) {
    if (role !== 'agent') return;
    state.unread++;
    updateBadge();
    announce(format(state.unread === 1 ? texts.unread1 : texts.unreadN, { n: state.unread }));
    return;
  }
  const files = (message.attachments || []).map(file => file.name).filter(Boolean);
  const text = message.deleted ? '' : [message.text, ...files].filter(Boolean).join(' ');
  if (!text) return;
  announce(role === 'agent' ? format(texts.said, { name: message.author.name || texts.agent, text }) : text);
}
