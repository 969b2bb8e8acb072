// One message of the log as an element (CONTRACT §3's message shape). Agent text is shown as text;
// only http/https URLs in it become links. An agent's formatting (`html`, CONTRACT §7) is built from
// the allowed tags only (rich.js). Files show as images or as download links, only when their link
// is the widget's own server's (the bridge serves every file itself).

import { element, externalLink, safeUrl } from './dom.js';
import { appendRich } from './rich.js';
import { state } from './state.js';

const URL_IN_TEXT = /https?:\/\/[^\s<>"]+/gi;
// punctuation that ends a sentence rather than the URL: "see https://x.example/a."
const TRAILING_PUNCTUATION = /[.,;:!?'")\]]+$/;
const MB = 1048576;
// shown inline; anything else (an SVG too) is a download
const IMAGE = /^image\/(png|jpeg|gif|webp)$/;
const FOLLOWING_PX = 80;

/**
 * The element for a message; `message` may also be a visitor's line not yet confirmed:
 * {author, text, attachments, pending: true}. The class "m" marks every message (tests count them by it).
 */
export function messageElement(message) {
  const { texts } = state;
  const author = message.author || {};
  const role = author.role || 'system';
  const el = element('div', 'm ' + role + (message.pending ? ' pending' : ''));
  const bubble = element('div', 'bubble');
  const body = element('div', 'text');
  const meta = element('div', 'meta');
  if (message.seq) el.dataset.seq = message.seq;
  if (role !== 'system') {
    el.append(avatar(author));
    bubble.append(element('div', 'author', author.name || (role === 'visitor' ? texts.you : texts.agent)));
  }
  if (message.deleted) {
    body.className = 'text deleted';
    body.textContent = texts.deleted;
  } else if (message.html && role !== 'visitor' && appendRich(body, message.html)) {
    body.className = 'text rich';
  } else {
    body.replaceChildren();
    appendLinkified(body, message.text || '');
  }
  bubble.append(body);

  const files = (message.attachments || []).filter(file => ownUrl(file.url));
  if (files.length && !message.deleted) bubble.append(attachmentList(files));

  if (message.pending) {
    meta.textContent = texts.sending;
  } else {
    const sentAt = new Date(message.created_at);
    if (!Number.isNaN(sentAt.getTime())) {
      const time = element('time', '', sentAt.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
      time.dateTime = message.created_at;
      meta.append(time);
    }
    if (message.edited_at && !message.deleted) meta.append(' ' + texts.edited);
  }
  // system lines are short notices: no time under them unless they were edited
  if (role !== 'system' || message.edited_at) bubble.append(meta);
  el.append(bubble);
  return el;
}

/** Append text to el, with each http(s) URL in it as a link. */
function appendLinkified(el, text) {
  let done = 0;
  for (const match of text.matchAll(URL_IN_TEXT)) {
    const url = match[0].replace(TRAILING_PUNCTUATION, '');
    const href = safeUrl(url);
    if (!href) continue;
    el.append(text.slice(done, match.index), externalLink(href, url));
    done = match.index + url.length;
  }
  el.append(text.slice(done));
}

/** The URL when it is an http(s) link to the server the widget came from, else ''. */
function ownUrl(url) {
  const href = safeUrl(url);
  return href && new URL(href).origin === state.config.apiBase ? href : '';
}

/** Images inline (a click opens the whole picture in a new tab); other files as a download link. */
function attachmentList(files) {
  const list = element('ul', 'attachments');
  for (const file of files) {
    const name = file.name || 'file';
    const link = externalLink(ownUrl(file.url));
    if (IMAGE.test(file.content_type)) {
      const img = element('img');
      img.alt = name;
      img.src = link.href;
      img.onload = () => keepInView(img);
      link.append(img);
    } else {
      link.textContent = name + (file.size ? ' (' + fileSize(file.size) + ')' : '');
      link.download = name;
    }
    const item = element('li');
    item.append(link);
    list.append(item);
  }
  return list;
}

/** An image that loaded into a log scrolled to its end keeps the end in view. */
function keepInView(img) {
  const log = img.closest('#log');
  if (log && log.scrollHeight - log.scrollTop - log.clientHeight <= img.height + FOLLOWING_PX) {
    log.scrollTop = log.scrollHeight;
  }
}

function fileSize(bytes) {
  return bytes > MB ? (bytes / MB).toFixed(1) + ' MB' : Math.ceil(bytes / 1024) + ' KB';
}

/** The author's photo, or their initials when there is none or it does not load. Decorative. */
function avatar(author) {
  const el = element('span', 'avatar');
  const url = safeUrl(author.avatar_url || '');
  const showInitials = () => {
    el.textContent = (author.name || '?')
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map(word => word[0])
      .join('')
      .toUpperCase();
  };
  if (url) {
    const img = element('img');
    img.alt = '';
    img.referrerPolicy = 'no-referrer';
    img.src = url;
    img.onerror = () => {
      img.remove();
      showInitials();
    };
    el.append(img);
  } else {
    showInitials();
  }
  el.setAttribute('aria-hidden', 'true');
  return el;
}
