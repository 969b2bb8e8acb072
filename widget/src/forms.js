// What the widget's forms and buttons do: start a chat, leave a message offline, write, end,
// rate, ask for the transcript, start a new chat.

import { clearFiles, readyFiles, wireFiles } from './files.js';
import { callApi, conversationPath, errorText, sitePath } from './http.js';
import { connect, reportTyping } from './live.js';
import { sendText } from './outbox.js';
import { byId, saveState, setText, state } from './state.js';
import { applyStatus, setBusy, showView, startOver, updateStars } from './views.js';

const COMPOSER_MAX_HEIGHT_PX = 130;

export function wireForms() {
  byId('prechat').onsubmit = startChat;
  byId('offline').onsubmit = leaveMessage;
  wireComposer();
  wireFiles();
  byId('end-chat').onclick = endChat;
  for (const star of state.root.querySelectorAll('.star')) {
    star.onclick = () => {
      state.score = +star.value;
      updateStars();
      setText('rating-error');
    };
  }
  byId('rating-form').onsubmit = sendRating;
  byId('transcript-form').onsubmit = sendTranscript;
  byId('new-chat').onclick = startOver;
}

async function startChat(event) {
  event.preventDefault();
  const form = event.target;
  if (!form.reportValidity()) return;
  setText('prechat-error');
  const { visitor } = state;
  const given = {
    name: byId('prechat-name').value.trim(),
    email: byId('prechat-email').value.trim(),
    id: visitor.id,
    hash: visitor.hash,
    key: visitorKey(),
  };
  const who = {};
  for (const [key, value] of Object.entries(given)) if (value) who[key] = value;
  const topic = byId('prechat-topic').value;
  setBusy(form, true);
  const answer = await callApi(sitePath('/conversations'), {
    visitor: who,
    topic: topic || undefined,
    page: { url: location.href, title: document.title, referrer: document.referrer },
    locale: navigator.language,
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
  });
  setBusy(form, false);
  if ((answer.status !== 201 && answer.status !== 200) || !answer.body.token) {
    return setText('prechat-error', errorText(answer));
  }
  Object.assign(visitor, who);
  const { conversation, token } = answer.body;
  state.conversation = { id: conversation.id, token, lastSeq: 0, status: conversation.status || 'open' };
  saveState();
  byId('composer').hidden = false;
  byId('ended').hidden = true;
  showView('chat');
  connect();
  byId('composer-text').focus();
}

/** The random key this browser keeps for the site (with the visitor): the team sees a returning visitor. */
function visitorKey() {
  const { visitor } = state;
  if (!/^[A-Za-z0-9_-]{16,64}$/.test(visitor.key || '')) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    visitor.key = Array.from(bytes, byte => byte.toString(16).padStart(2, '0')).join('');
    saveState();
  }
  return visitor.key;
}

async function leaveMessage(event) {
  event.preventDefault();
  const form = event.target;
  if (!form.reportValidity()) return;
  setText('offline-error');
  const name = byId('offline-name').value.trim();
  const email = byId('offline-email').value.trim();
  const text = byId('offline-message').value.trim();
  if (!text) return setText('offline-error', state.texts.error); // only spaces: "required" let it through
  setBusy(form, true);
  const answer = await callApi(sitePath('/offline-messages'), { name: name || undefined, email, text });
  setBusy(form, false);
  if (answer.status !== 202 && answer.status !== 200 && answer.status !== 201) {
    return setText('offline-error', errorText(answer));
  }
  Object.assign(state.visitor, name ? { name, email } : { email });
  saveState();
  // the form gives way to its thank-you, which takes the focus so it is read
  for (const child of form.children) if (child.id !== 'offline-sent') child.hidden = true;
  const sent = byId('offline-sent');
  sent.hidden = false;
  sent.textContent = state.texts.offlineSent;
  sent.focus();
}

function wireComposer() {
  const box = byId('composer-text');
  byId('composer').onsubmit = event => {
    event.preventDefault();
    const files = readyFiles();
    if (!files) return setText('composer-error', state.texts.stillUploading);
    if (sendText(box.value, files)) {
      box.value = '';
      box.style.height = '';
      clearFiles();
    }
  };
  // Enter sends, Shift+Enter adds a line (and Enter that confirms an IME composition is the IME's)
  box.onkeydown = event => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      byId('composer').requestSubmit();
    }
  };
  box.oninput = () => {
    // grow with the text, up to a few lines
    box.style.height = '';
    box.style.height = Math.min(box.scrollHeight + 2, COMPOSER_MAX_HEIGHT_PX) + 'px';
    reportTyping(box.value);
  };
}

async function endChat() {
  const conversation = state.conversation;
  const answer = await callApi(conversationPath(conversation, '/close'), {}, conversation.token);
  if (answer.status === 200) applyStatus('closed');
  else setText('notice', errorText(answer));
}

async function sendRating(event) {
  event.preventDefault();
  const { score } = state;
  if (!score) return setText('rating-error', state.texts.pickScore);
  const form = event.target;
  const comment = byId('rating-comment').value.trim();
  const conversation = state.conversation;
  setBusy(form, true);
  const answer = await callApi(
    conversationPath(conversation, '/rating'),
    comment ? { score, comment } : { score },
    conversation.token,
  );
  setBusy(form, false);
  // 409: rated already (in another tab): as good as done
  if (answer.status !== 200 && answer.status !== 201 && answer.status !== 409) {
    return setText('rating-error', errorText(answer));
  }
  conversation.rated = 1;
  saveState();
  form.hidden = true;
  const thanks = byId('rating-thanks');
  thanks.hidden = false;
  if (form.contains(state.root.activeElement)) thanks.focus();
}

async function sendTranscript(event) {
  event.preventDefault();
  const form = event.target;
  if (!form.reportValidity()) return;
  const email = byId('transcript-email').value.trim();
  const conversation = state.conversation;
  setBusy(form, true);
  const answer = await callApi(conversationPath(conversation, '/transcript'), { email }, conversation.token);
  setBusy(form, false);
  const result = byId('transcript-result');
  const sent = answer.status === 202 || answer.status === 200;
  result.className = sent ? 'success' : 'error';
  result.textContent = sent ? state.texts.transcriptSent : errorText(answer);
}
