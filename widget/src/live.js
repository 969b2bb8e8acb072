// The live channel (CONTRACT §4): one WebSocket per conversation, reconnected with backoff, and
// the HTTP catch-up for when it cannot be had.

import { callApi, conversationPath } from './http.js';
import { highestSeqShown, redrawMessage, showDeleted, showMessage, showTyping } from './log.js';
import { cancelFlush, findQueued, flush, markFailed, messageBody } from './outbox.js';
import { reportSeen, showRead } from './seen.js';
import { setText, state } from './state.js';
import { parseJson } from './util.js';
import { applyStatus, showEnded, startOver } from './views.js';

const PING_EVERY_MS = 25000; // below the idle timeouts of the proxies on the way
const MAX_BACKOFF_MS = 15000;
const TYPING_EVERY_MS = 3000; // CONTRACT §7: at most one typing frame every 3 s
const RATE_LIMITED = /rate|429|too_many/i;
const WAIT_AFTER_RATE_LIMIT_S = 10;

/** the current socket, or null */
let socket = null;
/** the server said "ready" on the current socket: frames may be sent */
let ready = false;
/** counts sockets, so each queued line is sent once per socket */
let generation = 0;
/** failed attempts in a row, for the backoff */
let attempts = 0;
/** when the socket went down (ms), 0 while it is up: after a while lines go by HTTP */
let downSince = 0;
let reconnectTimer;
let pingTimer;
/** the last line sent: an error frame without client_msg_id is about it */
let lastSentClientMsgId;
let lastTypingSent = 0;
let lastPageUrl;

export const isLive = () => ready;
export const socketGeneration = () => generation;
export const offlineSince = () => downSince;

/** Open the socket for the current conversation, unless it is closed or a socket is already there. */
export function connect() {
  clearTimeout(reconnectTimer);
  const conversation = state.conversation;
  if (!conversation || conversation.status === 'closed' || socket) return;
  downSince = downSince || Date.now();
  let ws;
  try {
    ws = socket = new WebSocket(state.config.apiBase.replace(/^http/, 'ws') + conversationPath(conversation, '/ws'));
  } catch {
    return reconnectLater();
  }
  generation++;
  ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', token: conversation.token, after: highestSeqShown() }));
  ws.onmessage = event => {
    const frame = parseJson(event.data);
    if (socket === ws && frame) handleFrame(frame);
  };
  ws.onclose = () => {
    if (socket !== ws) return; // one we closed ourselves
    const wasReady = ready;
    socket = null;
    ready = false;
    clearInterval(pingTimer);
    downSince = downSince || Date.now();
    if (!state.conversation || state.conversation.status === 'closed') return;
    // refused before "ready": the conversation may be gone or closed; HTTP tells which
    if (!wasReady) catchUp();
    setText('notice', state.texts.reconnecting);
    reconnectLater();
    flush();
  };
}

/** Connect again now, without waiting for the backoff (the browser is back online). */
export function reconnectNow() {
  if (state.conversation && !socket) {
    attempts = 0;
    connect();
  }
}

/** Close the socket and stop every timer (a new chat). */
export function disconnect() {
  const ws = socket;
  socket = null;
  ready = false;
  if (ws) ws.close();
  clearInterval(pingTimer);
  clearTimeout(reconnectTimer);
  cancelFlush();
}

/** Send a frame when the socket is ready; otherwise drop it (what matters is queued elsewhere). */
export function sendFrame(frame) {
  if (ready) socket.send(JSON.stringify(frame));
}

export function sendMessageFrame(item) {
  lastSentClientMsgId = item.clientMsgId;
  sendFrame(Object.assign({ type: 'message' }, messageBody(item)));
}

/** Tell the team the page the visitor is on, when it changed (or, forced, on every new socket). */
export function reportPage(force = false) {
  if (force || location.href !== lastPageUrl) {
    lastPageUrl = location.href;
    sendFrame({ type: 'page', url: lastPageUrl, title: document.title });
  }
}

/** The visitor is typing something: tell the team, at most every few seconds. */
export function reportTyping(text) {
  if (ready && text.trim() && Date.now() - lastTypingSent > TYPING_EVERY_MS) {
    lastTypingSent = Date.now();
    sendFrame({ type: 'typing' });
  }
}

/**
 * The conversation over HTTP: what the socket would have replayed, and its status. Used when the
 * socket fails before "ready", and to show a closed conversation after a reload.
 */
export async function catchUp() {
  const conversation = state.conversation;
  if (!conversation) return;
  const answer = await callApi(
    conversationPath(conversation, `/messages?after=${highestSeqShown()}`),
    null,
    conversation.token,
  );
  if (conversation !== state.conversation) return;
  // the token no longer opens this conversation (deleted, expired): start afresh
  if (answer.status === 401 || answer.status === 403 || answer.status === 404) return startOver();
  if (answer.status === 200) {
    (answer.body.messages || []).forEach(message => showMessage(message));
    applyStatus(answer.body.status);
  }
}

function reconnectLater() {
  const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempts++);
  // jitter: after a server restart, not every visitor at the same moment
  reconnectTimer = setTimeout(connect, backoff / 2 + (Math.random() * backoff) / 2);
}

function handleFrame(frame) {
  switch (frame.type) {
    case 'ready':
      ready = true;
      attempts = 0;
      downSince = 0;
      setText('notice');
      applyStatus(frame.status);
      clearInterval(pingTimer);
      pingTimer = setInterval(() => sendFrame({ type: 'ping' }), PING_EVERY_MS);
      reportPage(true);
      flush();
      reportSeen();
      break;
    case 'read':
      showRead(frame.seq);
      break;
    case 'message':
      showMessage(frame.message);
      break;
    case 'message_updated':
      // "(edited)" even if the server left edited_at out
      redrawMessage(Object.assign({ edited_at: 1 }, frame.message));
      break;
    case 'message_deleted':
      showDeleted(frame.id);
      break;
    case 'status':
      applyStatus(frame.status);
      break;
    case 'rating_requested':
      showEnded();
      break;
    case 'typing':
      if ((frame.author || {}).role !== 'visitor') showTyping(frame.author || {});
      break;
    case 'error':
      showError(frame);
      break;
  }
}

/** An error frame is about a line the visitor sent (shown under it), or about the chat. */
function showError(frame) {
  const item = findQueued(frame.client_msg_id || lastSentClientMsgId);
  if (item && !item.failed) {
    markFailed(item, frame.message, RATE_LIMITED.test(frame.code) ? WAIT_AFTER_RATE_LIMIT_S : 0);
  } else {
    setText('notice', frame.message || state.texts.error);
  }
}
