// What the panel shows: the pre-chat or offline form, or the conversation; the end of a
// conversation; opening and closing; starting over. And what it says to screen readers.

import { emit } from './events.js';
import { clearFiles } from './files.js';
import { callApi, sitePath } from './http.js';
import { clearLog, showTyping } from './log.js';
import { connect, disconnect } from './live.js';
import { clearQueue } from './outbox.js';
import { byId, saveState, setText, state } from './state.js';
import { format } from './texts.js';

const VIEWS = ['prechat', 'offline', 'chat'];
// announcements kept in the announcer; older ones have been read by now
const ANNOUNCEMENTS_KEPT = 3;

/** Show one of VIEWS; "End chat" only in an open conversation. */
export function showView(name) {
  for (const id of VIEWS) byId(id).hidden = id !== name;
  const conversation = state.conversation;
  byId('end-chat').hidden = name !== 'chat' || !conversation || conversation.status === 'closed';
}

/** The first view: the pre-chat form, or the offline form outside office hours. */
export function showStart() {
  const { site, texts } = state;
  if (site.online === false) {
    showView('offline');
    const hours = site.office_hours ? ' ' + format(texts.hours, { hours: site.office_hours }) : '';
    setText('offline-intro', texts.offline + hours);
  } else {
    showView('prechat');
  }
  prefill();
  if (state.isOpen) focusFirst();
}

/** Fill empty name and email fields with what the visitor told us before (or identify() said). */
export function prefill() {
  if (!state.root) return;
  const fields = [
    ['prechat-name', 'name'],
    ['prechat-email', 'email'],
    ['offline-name', 'name'],
    ['offline-email', 'email'],
    ['transcript-email', 'email'],
  ];
  for (const [id, key] of fields) {
    const field = byId(id);
    if (!field.value && state.visitor[key]) field.value = state.visitor[key];
  }
}

/** Focus where the visitor goes on: the first field, the message box, or the end of the chat. */
export function focusFirst() {
  const view = VIEWS.map(byId).find(el => !el.hidden);
  if (!view) return;
  if (view.id === 'chat') {
    const closed = state.conversation && state.conversation.status === 'closed';
    byId(closed ? 'ended-heading' : 'composer-text').focus();
  } else {
    // a sent offline form has only its thank-you left (tabindex="-1")
    (view.querySelector('input:not([hidden]),[tabindex="-1"]:not([hidden])') || view).focus();
  }
}

export function openPanel() {
  if (!state.root) {
    state.openWhenRendered = true;
    return;
  }
  if (state.isOpen) return;
  state.isOpen = true;
  byId('panel').hidden = false;
  setLauncher(state.texts.close, 'true');
  state.unread = 0;
  updateBadge();
  clearAnnouncements();
  byId('log').scrollTop = 1e9;
  focusFirst();
  emit('open');
}

export function closePanel() {
  if (!state.root) {
    state.openWhenRendered = false;
    return;
  }
  if (!state.isOpen) return;
  state.isOpen = false;
  byId('panel').hidden = true;
  setLauncher(state.texts.open, 'false');
  emit('close');
}

function setLauncher(label, expanded) {
  const launcher = byId('launcher');
  launcher.setAttribute('aria-label', label);
  launcher.setAttribute('aria-expanded', expanded);
}

/** The conversation's status from the server: closed shows the rating; reopened, the composer. */
export function applyStatus(status) {
  const conversation = state.conversation;
  if (!status || !conversation) return;
  const was = conversation.status;
  const focused = state.root.activeElement;
  const closed = status === 'closed';
  conversation.status = status;
  saveState();
  byId('composer').hidden = closed;
  byId('end-chat').hidden = closed;
  if (closed) {
    showEnded(focused);
  } else {
    byId('ended').hidden = true;
    if (was === 'closed') connect();
  }
}

/**
 * The end of the conversation: rating (unless given), transcript, new chat. Focus moves there
 * only from the composer or "End chat", which have just disappeared.
 */
export function showEnded(focused = state.root.activeElement) {
  const ended = byId('ended');
  if (!ended.hidden) return;
  const moveFocus = state.isOpen && focused && (focused.closest('.composer') || focused.id === 'end-chat');
  showTyping(null);
  ended.hidden = false;
  const rated = !!state.conversation.rated;
  byId('rating-form').hidden = rated;
  byId('rating-thanks').hidden = !rated;
  const email = byId('transcript-email');
  email.value = email.value || state.visitor.email || '';
  if (moveFocus) byId('ended-heading').focus();
}

/** "New chat" (or a conversation the server no longer knows): forget it, back to the first view. */
export async function startOver() {
  disconnect();
  state.conversation = null;
  clearQueue();
  clearFiles();
  state.score = 0;
  updateStars();
  clearLog();
  saveState();
  for (const id of ['rating-comment', 'transcript-email']) byId(id).value = '';
  for (const id of ['rating-error', 'transcript-result', 'notice', 'prechat-error']) setText(id);
  showTyping(null);
  // the site may have gone offline (or come back) since the page loaded
  const answer = await callApi(sitePath());
  if (answer.status === 200) state.site = answer.body;
  showStart();
}

/** The stars up to the chosen one lit, and the chosen one pressed. */
export function updateStars() {
  if (!state.root) return;
  state.root.querySelectorAll('.star').forEach((star, index) => {
    star.classList.toggle('lit', index < state.score);
    star.setAttribute('aria-pressed', String(index + 1 === state.score));
  });
}

/** Disable a form's button while its request is on the way. */
export function setBusy(form, busy) {
  form.querySelector('.primary').disabled = busy;
}

export function updateBadge() {
  const badge = byId('badge');
  badge.hidden = !state.unread;
  badge.textContent = state.unread > 9 ? '9+' : state.unread;
}

/**
 * Say text to screen readers through the one polite live region. Each announcement is a node of
 * its own, so two in quick succession are both read.
 */
export function announce(text) {
  const announcer = byId('announcer');
  announcer.append(Object.assign(document.createElement('div'), { textContent: text }));
  while (announcer.childElementCount > ANNOUNCEMENTS_KEPT) announcer.firstElementChild.remove();
}

function clearAnnouncements() {
  byId('announcer').replaceChildren();
}
