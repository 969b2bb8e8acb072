// The visitor's files (CONTRACT §7): chosen with the attach button, dropped on the chat or pasted into
// the message box (a screenshot). Each is uploaded at once — by XMLHttpRequest, whose upload reports
// progress — and goes with the next message as attachment_ids. A file the server refuses is said in
// plain words and dropped; a file can be removed until the message is sent.

import { element } from './dom.js';
import { conversationPath } from './http.js';
import { byId, setText, state } from './state.js';
import { format } from './texts.js';
import { parseJson } from './util.js';

// files one message may carry (the server's limit)
const MAX_FILES = 10;
// the server's refusals in the visitor's words; anything else is the generic apology
const REFUSED = { 413: 'fileTooLarge', 415: 'fileType', 429: 'tooManyFiles' };

/** the next message's files, in order: {el, xhr, attachment (once uploaded)} */
let pending = [];

export function wireFiles() {
  const input = byId('file-input');
  byId('attach').onclick = () => input.click();
  input.onchange = () => {
    addFiles(input.files);
    input.value = ''; // the same file again is a change again
  };
  const chat = byId('chat');
  chat.ondragover = event => {
    if (canAttach()) event.preventDefault(); // a drop here is welcome
  };
  chat.ondrop = event => {
    if (!canAttach() || !event.dataTransfer.files.length) return;
    event.preventDefault(); // or the browser leaves the page to show the file
    addFiles(event.dataTransfer.files);
  };
  byId('composer-text').onpaste = event => {
    const clipboard = event.clipboardData;
    if (!canAttach() || !clipboard?.files.length) return;
    addFiles(clipboard.files);
    // an image copied from a page comes with its text too: that still goes into the box
    if (!clipboard.types.includes('text/plain')) event.preventDefault();
  };
}

/** The uploaded files for the message being sent: [] for none, null while one is still uploading. */
export function readyFiles() {
  return pending.every(item => item.attachment) ? pending.map(item => item.attachment) : null;
}

/** Forget the pending files (sent with a message, or a new chat), stopping uploads on the way. */
export function clearFiles() {
  pending.forEach(item => item.xhr.abort());
  pending = [];
  if (state.root) byId('files').replaceChildren();
}

function canAttach() {
  return state.conversation && !byId('composer').hidden;
}

function addFiles(files) {
  setText('composer-error');
  for (const file of [...files].slice(0, MAX_FILES - pending.length)) upload(file);
}

function upload(file) {
  const { texts } = state;
  const conversation = state.conversation;
  const name = file.name || 'image.png';
  const item = { xhr: new XMLHttpRequest() };
  const progress = element('progress'); // indeterminate until the first progress event
  progress.setAttribute('aria-label', format(texts.uploading, { name }));
  const remove = element('button', 'icon-button', '×');
  remove.type = 'button';
  remove.setAttribute('aria-label', format(texts.remove, { name }));
  remove.onclick = () => {
    forget(item);
    byId('composer-text').focus();
  };
  item.el = element('li');
  item.el.append(element('span', '', name), progress, remove);
  byId('files').append(item.el);
  pending.push(item);

  const { xhr } = item;
  xhr.open('POST', state.config.apiBase + conversationPath(conversation, '/attachments'));
  xhr.setRequestHeader('Authorization', 'Bearer ' + conversation.token);
  xhr.upload.onprogress = event => {
    if (event.lengthComputable) progress.value = event.loaded / event.total;
  };
  xhr.onloadend = () => {
    if (!pending.includes(item)) return; // removed, sent or a new chat meanwhile
    const attachment = (parseJson(xhr.responseText) || {}).attachment;
    if (xhr.status === 201 && attachment) {
      item.attachment = attachment;
      progress.remove();
    } else {
      setText('composer-error', format(texts[REFUSED[xhr.status]] || texts.error, { name }));
      forget(item); // (its abort() sets the status to 0)
    }
  };
  const form = new FormData();
  form.append('file', file, name);
  xhr.send(form);
}

function forget(item) {
  pending.splice(pending.indexOf(item), 1);
  item.xhr.abort();
  item.el.remove();
}
