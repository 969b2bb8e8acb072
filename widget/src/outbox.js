// The visitor's lines on their way to the server. Nothing typed is lost: a line stays queued (and
// in storage, for a reload) until the server answers with the stored message. It goes over the
// socket when that is up; after the socket has been down a while, by HTTP POST. The same
// client_msg_id every time, so the server stores it once however often it is sent.

import { callApi, conversationPath, errorText } from './http.js';
import { isLive, offlineSince, sendMessageFrame, socketGeneration } from './live.js';
import { showMessage, placeInLog } from './log.js';
import { messageElement } from './messages.js';
import { element } from './dom.js';
import { randomId } from './util.js';
import { saveState, setText, state } from './state.js';
import { announce } from './views.js';

const MAX_LENGTH = 4000;
// the socket may just be reconnecting: try it that long before falling back to HTTP
const HTTP_AFTER_DOWN_MS = 5000;
const RECHECK_LIVE_MS = 10000;
const RECHECK_DOWN_MS = 2500;
const DEFAULT_WAIT_SECONDS = 5;

/**
 * Oldest first. Each: {clientMsgId, text, attachments (the files uploaded for it: {id, name, size,
 * content_type, url}), el (its pending line), failed (waits for Retry),
 * posting (an HTTP POST is in flight), notBefore (ms; after a 429), sentOn (the socket generation
 * it was sent on: sent once per socket)}
 */
let queue = [];
let flushTimer;

/** Queue the messages a reload found in storage (they are drawn once the log is there). */
export function restoreQueue(saved) {
  queue = saved.map(item => ({ clientMsgId: item.client_msg_id, text: item.text, attachments: item.attachments }));
}

/** What storage keeps: the lines still to send, as {client_msg_id, text, attachments}. */
export function unsentForStorage() {
  return queue
    .filter(item => !item.failed)
    .map(item => ({ client_msg_id: item.clientMsgId, text: item.text, attachments: item.attachments }));
}

/** A queued line as the server takes it, over the socket or by POST. */
export function messageBody(item) {
  const ids = (item.attachments || []).map(file => file.id);
  return { client_msg_id: item.clientMsgId, text: item.text, attachment_ids: ids };
}

/** Draw every queued line as pending (after a reload). */
export function drawQueued() {
  queue.forEach(drawPending);
}

/** Queue what the visitor typed, with the files uploaded for it. False when there is nothing to send. */
export function sendText(typed, attachments = []) {
  const text = typed.trim();
  if ((!text && !attachments.length) || !state.conversation) return false;
  if (text.length > MAX_LENGTH) {
    setText('composer-error', state.texts.tooLong);
    return false;
  }
  setText('composer-error');
  const item = { clientMsgId: randomId(), text, attachments };
  queue.push(item);
  saveState();
  drawPending(item);
  flush();
  return true;
}

/** The server has the line with this client_msg_id: drop it from the queue and its pending line. */
export function confirmQueued(clientMsgId) {
  const item = clientMsgId && findQueued(clientMsgId);
  if (!item) return;
  queue.splice(queue.indexOf(item), 1);
  item.el.remove();
  saveState();
}

export function findQueued(clientMsgId) {
  return queue.find(item => item.clientMsgId === clientMsgId);
}

/** Send what is due, and look again later while anything is left. */
export function flush() {
  clearTimeout(flushTimer);
  const conversation = state.conversation;
  if (!conversation || conversation.status === 'closed') return;
  const now = Date.now();
  for (const item of queue) {
    if (item.failed || item.posting || item.notBefore > now) continue;
    if (isLive()) {
      if (item.sentOn !== socketGeneration()) {
        item.sentOn = socketGeneration();
        sendMessageFrame(item);
      }
    } else if (offlineSince() && now - offlineSince() >= HTTP_AFTER_DOWN_MS) {
      postOverHttp(item);
    }
  }
  if (queue.some(item => !item.failed)) flushTimer = setTimeout(flush, isLive() ? RECHECK_LIVE_MS : RECHECK_DOWN_MS);
}

export function cancelFlush() {
  clearTimeout(flushTimer);
}

/** Forget the queue (a new chat). */
export function clearQueue() {
  queue = [];
}

/**
 * The server refused a line: say why under it. With waitSeconds (too many messages) it is sent
 * again by itself after that; otherwise it waits for the visitor's Retry.
 */
export function markFailed(item, message, waitSeconds) {
  const bubble = item.el.querySelector('.bubble');
  const error = bubble.querySelector('.error') || bubble.appendChild(element('div', 'error'));
  error.textContent = message || state.texts.error;
  // the log is not a live region: say it, or a screen reader user never learns the line did not go
  announce(error.textContent);
  if (waitSeconds) {
    item.notBefore = Date.now() + waitSeconds * 1000;
    item.sentOn = 0;
    setTimeout(flush, waitSeconds * 1000 + 50);
    return;
  }
  item.failed = true;
  saveState();
  const retry = element('button', 'secondary', state.texts.retry);
  retry.type = 'button';
  retry.onclick = () => {
    error.remove();
    item.failed = false;
    item.notBefore = 0;
    item.sentOn = 0;
    saveState();
    flush();
  };
  error.append(' ', retry);
}

function drawPending(item) {
  const author = { role: 'visitor', name: state.visitor.name || state.texts.you };
  item.el = messageElement({ author, text: item.text, attachments: item.attachments, pending: true });
  placeInLog(item.el);
}

async function postOverHttp(item) {
  item.posting = true;
  const conversation = state.conversation;
  const answer = await callApi(
    conversationPath(conversation, '/messages'),
    messageBody(item),
    conversation.token,
  );
  item.posting = false;
  // a new chat was started meanwhile, or the socket delivered it first
  if (conversation !== state.conversation || !queue.includes(item)) return;
  if (answer.status === 200 || answer.status === 201) {
    showMessage(answer.body.message, item.clientMsgId);
  } else if (answer.status === 429) {
    const wait = +(answer.headers.get('Retry-After') || (answer.body.error || {}).retry_after);
    markFailed(item, errorText(answer), wait || DEFAULT_WAIT_SECONDS);
  } else if (answer.status >= 400 && answer.status < 500) {
    markFailed(item, errorText(answer));
  }
  // 0 or 5xx: the next flush tries again
}
