/*
 * sitechat widget — live chat answered from Slack threads / Matrix rooms.
 * Source of widget_server/static/widget.js, which `make widget` builds (widget/build.mjs).
 *
 * Embed (one tag, nothing else):
 *   <script src="https://chat.example.com/widget.js" data-site="acme" async></script>
 * The API base is the origin of this script's src. The page's CSP needs script-src and
 * connect-src (https: and wss:) for that origin; styles use adoptedStyleSheets (no inline style).
 *
 * Script-tag attributes:
 *   data-site           site id (required)
 *   data-color          brand colour, any CSS colour (default #1d4ed8); text on it is white or
 *                       black, whichever has the better contrast
 *   data-require-name   "true" (or present and empty) = the pre-chat Name field is required
 *   data-require-email  "true" (or present and empty) = the pre-chat Email field is required
 *                       (both optional by default; the offline form always requires Email)
 *   data-texts          JSON overriding keys of TEXTS (texts.js) in every language, e.g. data-texts='{"open":"Hi"}'
 * window.SitechatTexts = {...} set before this script loads overrides TEXTS too (data-texts wins).
 * Language: the site's (LANGUAGE setting), else the first of navigator.languages the widget speaks
 * (en, de, fr, es), else English; another language's texts are fetched as a small pack (language.js).
 *
 * Page API (window.Sitechat):
 *   open(), close(), identify({id, name, email, hash}), on("message"|"open"|"close", fn) → off()
 *   "message" fires for each message new to this browser (not for history replayed after a reload).
 *   identify() prefills the form and is sent as visitor {name, email, id, hash} with the next new
 *   conversation. Calls made before the script loaded are replayed from a queue:
 *   <script>window.Sitechat=window.Sitechat||{q:[]};["open","close","identify","on"].forEach(function(m){
 *     Sitechat[m]=Sitechat[m]||function(){Sitechat.q.push([m].concat([].slice.call(arguments)))}})</script>
 *
 * Follow-up mail (CONTRACT §8): a link to the page with #sitechat-resume={ticket} reopens that chat here
 * (resume.js); visitor.key, a random key kept with the visitor, tells the team a returning visitor.
 *
 * Storage: localStorage "sitechat:{site}" = {id, token, lastSeq, status, queue, rated, visitor};
 * sessionStorage "sitechat:{site}:invited" once the chat invitation has been shown in this visit.
 */

import { findOwnScript, readConfig } from './config.js';
import { subscribe } from './events.js';
import { callApi, sitePath } from './http.js';
import { scheduleInvitation } from './invitation.js';
import { loadTexts } from './language.js';
import { reconnectNow, reportPage } from './live.js';
import { restoreQueue } from './outbox.js';
import { resumeFromLink, takeResumeTicket } from './resume.js';
import { reportSeen } from './seen.js';
import { render } from './panel.js';
import { restoreState, saveState, state } from './state.js';
import { textsIn } from './texts.js';
import { closePanel, openPanel, prefill } from './views.js';

// a site that is down or restarting: try again, ever more slowly, for a few minutes
const BOOT_ATTEMPTS = 12;
const BOOT_MAX_WAIT_MS = 30000;

let bootAttempts = 0;
let bootTimer;
let booting = false;

function main() {
  const script = findOwnScript();
  // no tag to read, or the page loaded us twice: one widget per page
  if (!script || (window.Sitechat && window.Sitechat.v)) return;
  const config = readConfig(script);
  if (!config) {
    console.warn('sitechat: data-site missing');
    return;
  }
  state.config = config;
  takeResumeTicket(); // a follow-up mail's link: off the address before anything else sees it
  state.texts = textsIn({}, config.pageTexts); // English until the site's settings say otherwise
  restoreQueue(restoreState());
  installPageApi();
  trackPages();
  // a message on screen counts as seen only while the page is visible and focused (seen.js)
  document.addEventListener('visibilitychange', reportSeen);
  window.addEventListener('focus', reportSeen);
  window.addEventListener('online', () => {
    if (!state.root) {
      bootAttempts = 0;
      boot();
    } else {
      reconnectNow();
    }
  });
  boot();
}

/** window.Sitechat, replaying the calls the page queued before we loaded. */
function installPageApi() {
  const api = {
    v: 1,
    open: openPanel,
    close: closePanel,
    identify(who) {
      who = who || {};
      for (const key of ['id', 'name', 'email', 'hash']) if (who[key] != null) state.visitor[key] = String(who[key]);
      saveState();
      prefill();
    },
    on: subscribe,
  };
  const queued = window.Sitechat && Array.isArray(window.Sitechat.q) ? window.Sitechat.q : [];
  window.Sitechat = api;
  for (const [method, ...args] of queued) {
    try {
      if (api[method]) api[method](...args);
    } catch (error) {
      console.error(error);
    }
  }
}

/** The team sees the page the visitor is on, single-page-app navigation included. */
function trackPages() {
  for (const method of ['pushState', 'replaceState']) {
    const original = history[method];
    history[method] = function (...args) {
      const result = original.apply(this, args);
      setTimeout(pageChanged); // after the page's own handlers have set the new title
      return result;
    };
  }
  window.addEventListener('popstate', pageChanged);
  window.addEventListener('hashchange', pageChanged);
}

function pageChanged() {
  reportPage();
  if (state.root) scheduleInvitation(); // the time counts on the page the visitor is on now
}

/**
 * Fetch the site's settings, then render. While the server cannot be reached (0) or is failing
 * (5xx, 429), try again with backoff: a page opened during an outage or a restart gets its chat
 * once the server is back. Any other answer (an unknown site, an origin the site does not allow)
 * means no widget on this page.
 */
async function boot() {
  if (booting || state.site) return;
  booting = true;
  clearTimeout(bootTimer);
  const answer = await callApi(sitePath());
  booting = false;
  const { status } = answer;
  if (status !== 200) {
    if (!bootAttempts) console.warn('sitechat: site unavailable', status);
    const worthRetrying = !status || status > 499 || status === 429;
    if (worthRetrying && bootAttempts < BOOT_ATTEMPTS) {
      bootTimer = setTimeout(boot, Math.min(BOOT_MAX_WAIT_MS, 1000 * 2 ** bootAttempts++));
    }
    return;
  }
  state.site = answer.body;
  await loadTexts();
  await resumeFromLink();
  if (document.body) render();
  else document.addEventListener('DOMContentLoaded', render);
}

main();
