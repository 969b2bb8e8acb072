// The widget's markup, as a screen reader meets it (CONTRACT §6). Every text in it comes from the
// texts object and is escaped; what the site or the visitor says is filled in later, as text.
//
// Fields sit directly in their form: the offline form hides its children once it is sent, and
// focusFirst() looks for the first visible input.

import { escapeHtml } from './dom.js';
import { format } from './texts.js';

const STAR_COUNT = 5;

/** A decorative line icon (the button around it carries the name). */
function icon(paths) {
  const attributes =
    'viewBox="0 0 24 24" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" ' +
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"';
  return `<svg ${attributes}>${paths}</svg>`;
}

const CHAT_ICON = '<path class="icon-open" d="M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.8A8 8 0 1 1 21 12z"/>';
const CHEVRON_ICON = '<path class="icon-close" d="m6 9 6 6 6-6"/>';
const CROSS_ICON = '<path d="M6 6l12 12M18 6 6 18"/>';
const CLIP_ICON = '<path d="m21.4 11-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/>';
// what the attach button offers (the server's default SITECHAT_UPLOAD_TYPES; it decides by the bytes)
const ACCEPT = 'image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain';

export function widgetHtml(texts, config, language) {
  const t = key => escapeHtml(texts[key]);
  const label = (id, key) => `<label for="${id}">${t(key)}</label>`;
  const input = (id, key, attributes) => `${label(id, key)}<input id="${id}" ${attributes}>`;
  const textarea = (id, key, attributes) => `${label(id, key)}<textarea id="${id}" ${attributes}></textarea>`;
  const required = flag => (flag ? ' required' : '');
  const name = 'autocomplete="name" maxlength="100"';
  const email = 'type="email" autocomplete="email" maxlength="254"';

  const stars = [];
  for (let n = 1; n <= STAR_COUNT; n++) {
    const starName = escapeHtml(n === 1 ? texts.star : format(texts.stars, { n }));
    // buttons, as CONTRACT §6 names them; aria-pressed tells which one is chosen
    stars.push(`<button type="button" class="star" value="${n}" aria-pressed="false" aria-label="${starName}">★</button>`);
  }

  return `<div class="widget" lang="${escapeHtml(language)}">
<div class="invitation" id="invitation" role="dialog" aria-label="${t('invitation')}" hidden>
<button type="button" class="invitation-text" id="invitation-open"></button>
<button type="button" class="icon-button" id="invitation-dismiss" aria-label="${t('dismiss')}">${icon(CROSS_ICON)}</button>
</div>
<button class="launcher" id="launcher" type="button" aria-expanded="false" aria-label="${t('open')}">
${icon(CHAT_ICON + CHEVRON_ICON)}
<span class="bd" id="badge" aria-hidden="true" hidden></span>
</button>
<div class="sr-only" id="announcer" aria-live="polite"></div>
<div class="panel" id="panel" role="dialog" hidden>
<div class="header">
<div class="header-text"><h2 id="title"></h2><p id="greeting"></p></div>
<button type="button" id="end-chat" hidden>${t('end')}</button>
<button type="button" class="icon-button" id="minimise" aria-label="${t('minimise')}">${icon(CROSS_ICON)}</button>
</div>
<div class="body">
<form class="form" id="prechat" hidden>
${input('prechat-name', 'name', name + required(config.requireName))}
${input('prechat-email', 'email', email + required(config.requireEmail))}
<div class="field" id="topic-field" hidden>${label('prechat-topic', 'topic')}<select id="prechat-topic"></select></div>
<p class="error" id="prechat-error" role="alert"></p>
<button class="primary">${t('start')}</button>
</form>
<form class="form" id="offline" hidden>
<p id="offline-intro"></p>
${input('offline-name', 'name', name)}
${input('offline-email', 'email', email + ' required')}
${textarea('offline-message', 'message', 'maxlength="4000" required')}
<p class="error" id="offline-error" role="alert"></p>
<button class="primary">${t('sendMessage')}</button>
<p class="success" id="offline-sent" tabindex="-1" hidden></p>
</form>
<div id="chat" hidden>
<div id="log" role="log" aria-live="off" aria-label="${t('log')}" tabindex="0"></div>
<div class="typing" id="typing" aria-live="polite"></div>
<div class="notice" id="notice" role="status"></div>
<div class="ended" id="ended" hidden>
<p class="ended-heading" id="ended-heading" tabindex="-1">${t('ended')}</p>
<form id="rating-form">
<div class="rating" role="group" aria-labelledby="rating-legend">
<p class="legend" id="rating-legend">${t('rate')}</p>
<div class="stars">${stars.join('')}</div>
</div>
${textarea('rating-comment', 'comment', 'maxlength="1000"')}
<p class="error" id="rating-error" role="alert"></p>
<button class="primary">${t('sendRating')}</button>
</form>
<p class="success" id="rating-thanks" tabindex="-1" hidden>${t('thanks')}</p>
<form id="transcript-form">
${label('transcript-email', 'transcriptEmail')}
<div class="row">
<input id="transcript-email" type="email" autocomplete="email" required>
<button class="primary">${t('sendTranscript')}</button>
</div>
<p class="error" id="transcript-result" role="status"></p>
</form>
<button type="button" class="secondary" id="new-chat">${t('newChat')}</button>
</div>
<form class="composer" id="composer">
<ul class="files" id="files"></ul>
<button type="button" class="icon-button" id="attach" aria-label="${t('attach')}">${icon(CLIP_ICON)}</button>
<input type="file" id="file-input" multiple accept="${ACCEPT}" tabindex="-1" hidden>
<label class="sr-only" for="composer-text">${t('message')}</label>
<textarea id="composer-text" rows="1" maxlength="4000" placeholder="${t('placeholder')}"></textarea>
<button class="primary">${t('send')}</button>
</form>
<p class="error composer-error" id="composer-error" role="alert"></p>
</div>
</div>
</div>
</div>`;
}
