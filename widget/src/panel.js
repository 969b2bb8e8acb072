// Putting the widget into the page: an open shadow root (CONTRACT §6: assistive technology and
// page tests reach in), its markup, the site's name, greeting and topics, and the launcher.

import { wireForms } from './forms.js';
import { scheduleInvitation, wireInvitation } from './invitation.js';
import { siteGreeting } from './language.js';
import { catchUp, connect } from './live.js';
import { drawQueued } from './outbox.js';
import { byId, setText, state } from './state.js';
import { applyStyles } from './style.js';
import { widgetHtml } from './template.js';
import { format } from './texts.js';
import { applyStatus, closePanel, openPanel, prefill, showStart, showView } from './views.js';

export function render() {
  const { config, site, texts } = state;
  const host = document.createElement('sitechat-widget');
  const root = host.attachShadow({ mode: 'open' });
  state.root = root;
  const fallbackStyle = applyStyles(root, config.color);
  // eslint-disable-next-line no-restricted-properties -- the one template: our markup, every text escaped
  root.innerHTML = fallbackStyle + widgetHtml(texts, config, state.language);

  const siteName = site.name || config.siteId;
  byId('panel').setAttribute('aria-label', format(texts.dialog, { site: siteName }));
  setText('title', siteName);
  setText('greeting', siteGreeting());
  addTopics(Array.isArray(site.topics) ? site.topics : []);
  wireLauncher();
  wireForms();

  document.body.append(host);
  const conversation = state.conversation;
  if (conversation) {
    // a reload or another tab: straight back into the conversation
    showView('chat');
    drawQueued();
    if (conversation.status === 'closed') {
      applyStatus('closed');
      catchUp();
    } else {
      connect();
    }
  } else {
    showStart();
    if (state.linkRefused) setText(site.online === false ? 'offline-error' : 'prechat-error', texts.linkUsed);
  }
  prefill();
  if (state.openWhenRendered) openPanel();
  wireInvitation();
  scheduleInvitation();
}

function addTopics(topics) {
  if (!topics.length) return;
  byId('topic-field').hidden = false;
  const select = byId('prechat-topic');
  select.append(new Option(state.texts.pickTopic, ''));
  for (const topic of topics) select.append(new Option(topic.label || topic.id, topic.id));
}

function wireLauncher() {
  const launcher = byId('launcher');
  const minimise = () => {
    closePanel();
    launcher.focus();
  };
  launcher.onclick = () => (state.isOpen ? closePanel() : openPanel());
  byId('minimise').onclick = minimise;
  byId('panel').addEventListener('keydown', event => {
    if (event.key === 'Escape') {
      event.stopPropagation(); // the page's own Escape handlers (its modals) are not for us
      minimise();
    }
  });
}
