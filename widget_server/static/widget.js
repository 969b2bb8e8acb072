/*! sitechat widget — live chat answered from Slack threads / Matrix rooms.
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
 *   data-texts          JSON overriding keys of TEXTS below, e.g. data-texts='{"open":"Chat öffnen"}'
 * window.SitechatTexts = {...} set before this script loads overrides TEXTS too (data-texts wins).
 *
 * Page API (window.Sitechat):
 *   open(), close(), identify({id, name, email, hash}), on("message"|"open"|"close", fn) → off()
 *   "message" fires for each message new to this browser (not for history replayed after a reload).
 *   identify() prefills the form and is sent as visitor {name, email, id, hash} with the next new
 *   conversation. Calls made before the script loaded are replayed from a queue:
 *   <script>window.Sitechat=window.Sitechat||{q:[]};["open","close","identify","on"].forEach(function(m){
 *     Sitechat[m]=Sitechat[m]||function(){Sitechat.q.push([m].concat([].slice.call(arguments)))}})</script>
 *
 * Storage: localStorage "sitechat:{site}" = {id, token, lastSeq, status, queue, rated, visitor}.
 */
(() => {
  'use strict';
  const d = document, w = window;
  const S = d.currentScript || d.querySelector('script[data-site][src*="widget.js"]');
  if (!S || (w.Sitechat && w.Sitechat.v)) return;
  const SITE = S.dataset.site;
  if (!SITE) return void console.warn('sitechat: data-site missing');
  const BASE = new URL(S.src).origin;
  const KEY = 'sitechat:' + SITE;
  const attr = n => /^(|true|1|yes)$/i.test(S.getAttribute(n) ?? 'x');

  const TEXTS = {
    open: 'Open chat', close: 'Close chat', minimise: 'Minimise chat', end: 'End chat',
    dialog: 'Chat with {site}', name: 'Name', email: 'Email', topic: 'Topic', pickTopic: 'Choose a topic',
    start: 'Start chat', log: 'Messages', message: 'Message', placeholder: 'Type your message…', send: 'Send',
    you: 'You', agent: 'Support', sending: 'Sending…', edited: '(edited)', deleted: 'Message deleted',
    typing: '{name} is typing…', reconnecting: 'Reconnecting…', retry: 'Retry',
    error: 'Something went wrong. Please try again.', tooLong: 'Messages can be at most 4000 characters.',
    ended: 'Conversation ended', rate: 'How was this conversation?', star: '1 star', stars: '{n} stars',
    comment: 'Comment', sendRating: 'Send rating', pickScore: 'Please choose a rating first.',
    thanks: 'Thank you for your feedback!', transcriptEmail: 'Email for transcript',
    sendTranscript: 'Email transcript', transcriptSent: 'Transcript on its way', newChat: 'New chat',
    offline: 'We are not online right now. Leave a message and we will answer by email.',
    hours: 'Office hours: {hours}', sendMessage: 'Send message',
    offlineSent: 'Thank you! We received your message and will answer by email.',
    unread1: '1 new message', unreadN: '{n} new messages',
  };
  const json = s => { try { return JSON.parse(s) } catch { return null } };
  const T = Object.assign({}, TEXTS, w.SitechatTexts, json(S.dataset.texts));
  const fmt = (s, o) => String(s).replace(/\{(\w+)\}/g, (_, k) => o[k] ?? '');
  const esc = s => String(s).replace(/[&<>"]/g, c => '&#' + c.charCodeAt(0) + ';');

  // ---- state
  let st = json(ls('get')) || {};
  let vis = st.visitor || {};
  let conv = st.id && st.token ? st : null;
  let queue = conv && Array.isArray(conv.queue) ? conv.queue.map(x => ({ c: x.client_msg_id, t: x.text })) : [];
  let site, R, P, L, isOpen = 0, wantOpen = 0, unread = 0;
  let ws, ready = 0, gen = 0, tries = 0, downAt = 0, rt, ft, pi, tyT, lastTy = 0, lastSent, lastUrl, max = 0, score = 0;
  const seen = new Map(), ids = new Map(), subs = {};
  const $ = id => R.getElementById(id);

  function ls(op, v) {
    try { return op == 'get' ? localStorage.getItem(KEY) : localStorage.setItem(KEY, v) } catch { return null }
  }
  function save() {
    const o = { visitor: vis };
    if (conv) {
      const { id, token, lastSeq, status, rated } = conv;
      Object.assign(o, { id, token, lastSeq, status, rated, queue: queue.filter(x => !x.f).map(x => ({ client_msg_id: x.c, text: x.t })) });
    }
    ls('set', JSON.stringify(o));
  }
  const emit = (e, a) => (subs[e] || []).forEach(f => { try { f(a) } catch (x) { console.error(x) } });
  const uuid = () => crypto.randomUUID ? crypto.randomUUID()
    : ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g, c => (c ^ crypto.getRandomValues(new Uint8Array(1))[0] & 15 >> c / 4).toString(16));

  async function call(path, body, auth) {
    const headers = {};
    if (body) headers['Content-Type'] = 'application/json';
    if (auth) headers.Authorization = 'Bearer ' + conv.token;
    try {
      const r = await fetch(BASE + path, { method: body ? 'POST' : 'GET', headers, body: body ? JSON.stringify(body) : null, credentials: 'omit' });
      let j = null;
      try { j = await r.json() } catch { }
      return { s: r.status, j: j || {}, r };
    } catch { return { s: 0, j: {} } }
  }
  const errText = r => (r.j.error && r.j.error.message) || T.error;
  const say = (id, t) => { $(id).textContent = t || '' };

  // ---- DOM helpers
  function h(tag, cls, text) {
    const e = d.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  const safeUrl = u => { try { const x = new URL(u); return /^https?:$/.test(x.protocol) ? x.href : '' } catch { return '' } };
  function link(href, text) {
    const a = h('a', 0, text);
    a.href = href; a.target = '_blank'; a.rel = 'noopener noreferrer nofollow';
    return a;
  }
  function linkify(el, s) {
    let i = 0;
    for (const m of s.matchAll(/https?:\/\/[^\s<>"]+/gi)) {
      const u = m[0].replace(/[.,;:!?'")\]]+$/, ''), href = safeUrl(u);
      if (!href) continue;
      el.append(s.slice(i, m.index), link(href, u));
      i = m.index + u.length;
    }
    el.append(s.slice(i));
  }
  function avatar(a) {
    const e = h('span', 'av'), u = safeUrl(a.avatar_url || '');
    const initials = () => { e.textContent = (a.name || '?').split(/\s+/).filter(Boolean).slice(0, 2).map(x => x[0]).join('').toUpperCase() };
    if (u) {
      const i = h('img');
      i.alt = ''; i.referrerPolicy = 'no-referrer'; i.src = u;
      i.onerror = () => { i.remove(); initials() };
      e.append(i);
    } else initials();
    e.setAttribute('aria-hidden', 'true');
    return e;
  }
  const size = n => n > 1048576 ? (n / 1048576).toFixed(1) + ' MB' : Math.ceil(n / 1024) + ' KB';

  // one message element; m may be a pending {author, text, pending}
  function mel(m) {
    const a = m.author || {}, role = a.role || 'system';
    const el = h('div', 'm ' + role[0] + (m.pending ? ' pe' : '')), b = h('div', 'b'), t = h('div', 't'), mt = h('div', 'mt');
    if (m.seq) el.dataset.seq = m.seq;
    if (role != 'system') {
      el.append(avatar(a));
      b.append(h('div', 'n', a.name || (role == 'visitor' ? T.you : T.agent)));
    }
    if (m.deleted) { t.className = 't dl'; t.textContent = T.deleted } else linkify(t, m.text || '');
    b.append(t);
    const at = (m.attachments || []).filter(f => safeUrl(f.url));
    if (at.length && !m.deleted) {
      const ul = h('ul', 'att');
      for (const f of at) { const li = h('li'); li.append(link(safeUrl(f.url), (f.name || 'file') + (f.size ? ' (' + size(f.size) + ')' : ''))); ul.append(li) }
      b.append(ul);
    }
    if (m.pending) mt.textContent = T.sending;
    else {
      const c = new Date(m.created_at);
      if (!isNaN(c)) {
        const tm = h('time', 0, c.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
        tm.dateTime = m.created_at;
        mt.append(tm);
      }
      if (m.edited_at && !m.deleted) mt.append(' ' + T.edited);
    }
    if (role != 'system' || m.edited_at) b.append(mt);
    el.append(b);
    return el;
  }
  function place(el, seq) {
    const log = $('log'), stick = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    const nxt = seq ? [...log.children].find(c => !c.dataset.seq || +c.dataset.seq > seq) : null;
    log.insertBefore(el, nxt || null);
    if (stick || !seq) log.scrollTop = log.scrollHeight;
  }

  // ---- messages
  function add(m, cid) {
    if (!m || !m.seq || !conv) return;
    cid = m.client_msg_id || cid;
    const it = cid && queue.find(x => x.c == cid);
    if (it) { queue.splice(queue.indexOf(it), 1); it.el.remove(); save() }
    if (seen.has(m.seq)) return;
    const fresh = m.seq > (conv.lastSeq || 0);
    if (fresh) { conv.lastSeq = m.seq; save() }
    if (m.seq > max) max = m.seq;
    const el = mel(m);
    place(el, m.seq);
    seen.set(m.seq, el); ids.set(m.id, m);
    if ((m.author || {}).role == 'agent') typing();
    if (fresh) {
      emit('message', m);
      if ((m.author || {}).role == 'agent' && !isOpen) {
        unread++; badge();
        say('an', fmt(unread == 1 ? T.unread1 : T.unreadN, { n: unread }));
      }
    }
  }
  function replace(m) {
    const old = seen.get(m.seq);
    if (!old) return add(m);
    const el = mel(m);
    old.replaceWith(el);
    seen.set(m.seq, el); ids.set(m.id, m);
  }
  function badge() {
    const b = $('bd');
    b.hidden = !unread; b.textContent = unread > 9 ? '9+' : unread;
  }
  function typing(a) {
    clearTimeout(tyT);
    const s = a ? fmt(T.typing, { name: a.name || T.agent }) : '';
    if ($('ty').textContent != s) say('ty', s);
    if (a) tyT = setTimeout(typing, 4000);
  }

  // ---- sending
  function pending(it) {
    it.el = mel({ author: { role: 'visitor', name: vis.name || T.you }, text: it.t, pending: 1 });
    place(it.el);
  }
  function fail(it, msg, wait) {
    const b = it.el.querySelector('.b');
    let e = b.querySelector('.e');
    if (!e) e = b.appendChild(h('div', 'e'));
    e.textContent = msg || T.error;
    if (wait) { it.at = Date.now() + wait * 1000; it.s = 0; setTimeout(flush, wait * 1000 + 50); return }
    it.f = 1; save();
    const r = h('button', 'sc', T.retry);
    r.type = 'button';
    r.onclick = () => { e.remove(); it.f = 0; it.at = 0; it.s = 0; save(); flush() };
    e.append(' ', r);
  }
  function flush() {
    clearTimeout(ft);
    if (!conv || conv.status == 'closed') return;
    const now = Date.now();
    for (const it of queue) {
      if (it.f || it.h || it.at > now) continue;
      if (ready) {
        if (it.s != gen) { it.s = gen; lastSent = it.c; tx({ type: 'message', client_msg_id: it.c, text: it.t }) }
      } else if (downAt && now - downAt >= 5000) post(it);
    }
    if (queue.some(x => !x.f)) ft = setTimeout(flush, ready ? 10000 : 2500);
  }
  async function post(it) {
    it.h = 1;
    const c = conv, r = await call(`/api/v1/conversations/${c.id}/messages`, { client_msg_id: it.c, text: it.t }, 1);
    it.h = 0;
    if (c != conv || !queue.includes(it)) return;
    if (r.s == 200 || r.s == 201) add(r.j.message, it.c);
    else if (r.s == 429) fail(it, errText(r), +(r.r.headers.get('Retry-After') || (r.j.error || {}).retry_after) || 5);
    else if (r.s >= 400 && r.s < 500) fail(it, errText(r));
  }
  function send(text) {
    text = text.trim();
    if (!text || !conv) return false;
    if (text.length > 4000) return say('cx', T.tooLong), false;
    say('cx');
    const it = { c: uuid(), t: text };
    queue.push(it); save(); pending(it); flush();
    return true;
  }
  const tx = o => ready && ws.send(JSON.stringify(o));
  function page(force) {
    if (force === 1 || location.href != lastUrl) { lastUrl = location.href; tx({ type: 'page', url: lastUrl, title: d.title }) }
  }

  // ---- live channel
  function connect() {
    clearTimeout(rt);
    if (!conv || conv.status == 'closed' || ws) return;
    downAt = downAt || Date.now();
    let s;
    try { s = ws = new WebSocket(BASE.replace(/^http/, 'ws') + `/api/v1/conversations/${conv.id}/ws`) } catch { return retry() }
    gen++;
    s.onopen = () => s.send(JSON.stringify({ type: 'hello', token: conv.token, after: max }));
    s.onmessage = e => { const f = json(e.data); if (ws == s && f) frame(f) };
    s.onclose = () => {
      if (ws != s) return;
      const was = ready;
      ws = null; ready = 0; clearInterval(pi);
      downAt = downAt || Date.now();
      if (!conv || conv.status == 'closed') return;
      if (!was) check();
      say('nt', T.reconnecting);
      retry(); flush();
    };
  }
  function retry() {
    const t = Math.min(15000, 500 * 2 ** tries++);
    rt = setTimeout(connect, t / 2 + Math.random() * t / 2);
  }
  function stop() {
    const s = ws;
    ws = null; ready = 0;
    if (s) s.close();
    clearInterval(pi); clearTimeout(rt); clearTimeout(ft);
  }
  function frame(f) {
    const t = f.type;
    if (t == 'ready') {
      ready = 1; tries = 0; downAt = 0; say('nt');
      status(f.status);
      pi = setInterval(() => tx({ type: 'ping' }), 25000);
      page(1); flush();
    } else if (t == 'message') add(f.message);
    else if (t == 'message_updated') replace(Object.assign({ edited_at: 1 }, f.message));
    else if (t == 'message_deleted') { const m = ids.get(f.id); if (m) replace(Object.assign({}, m, { deleted: true, text: '' })) }
    else if (t == 'status') status(f.status);
    else if (t == 'rating_requested') showEnd();
    else if (t == 'typing') { if ((f.author || {}).role != 'visitor') typing(f.author || {}) }
    else if (t == 'error') {
      const it = queue.find(x => x.c == (f.client_msg_id || lastSent));
      if (it && !it.f) fail(it, f.message, /rate|429|too_many/i.test(f.code) ? 10 : 0);
      else say('nt', f.message || T.error);
    }
  }
  // HTTP view of the conversation: used when the socket fails before "ready" (also a slow poll while it is down)
  async function check() {
    const c = conv;
    if (!c) return;
    const r = await call(`/api/v1/conversations/${c.id}/messages?after=${max}`, 0, 1);
    if (c != conv) return;
    if (r.s == 401 || r.s == 403 || r.s == 404) return reset();
    if (r.s == 200) { (r.j.messages || []).forEach(m => add(m)); status(r.j.status) }
  }
  function status(s) {
    if (!s || !conv) return;
    const was = conv.status, a = R.activeElement, closed = s == 'closed';
    conv.status = s; save();
    $('co').hidden = $('end').hidden = closed;
    if (closed) showEnd(a);
    else { $('ev').hidden = true; if (was == 'closed') connect() }
  }
  function showEnd(a = R.activeElement) {
    const ev = $('ev');
    if (!ev.hidden) return;
    const moveFocus = isOpen && a && (a.closest('.co') || a.id == 'end');
    typing();
    ev.hidden = false;
    $('rf').hidden = !!conv.rated; $('rt').hidden = !conv.rated;
    $('te').value = $('te').value || vis.email || '';
    if (moveFocus) $('eh').focus();
  }
  async function reset() {
    stop();
    conv = null; queue = []; max = 0; score = 0; stars();
    seen.clear(); ids.clear(); save();
    $('log').replaceChildren();
    for (const id of ['rc', 'te']) $(id).value = '';
    for (const id of ['rx', 'tx', 'nt', 'px']) say(id);
    typing();
    const r = await call(`/api/v1/sites/${SITE}`);
    if (r.s == 200) site = r.j;
    start();
  }

  // ---- views
  function view(v) {
    for (const id of ['pre', 'off', 'ch']) $(id).hidden = id != v;
    $('end').hidden = v != 'ch' || !conv || conv.status == 'closed';
  }
  function start() {
    if (site.online === false) {
      view('off');
      say('oi', T.offline + (site.office_hours ? ' ' + fmt(T.hours, { hours: site.office_hours }) : ''));
    } else view('pre');
    prefill();
    if (isOpen) focusFirst();
  }
  function prefill() {
    if (!R) return;
    for (const [id, k] of [['pn', 'name'], ['pe', 'email'], ['on', 'name'], ['oe', 'email'], ['te', 'email']])
      if (!$(id).value && vis[k]) $(id).value = vis[k];
  }
  function focusFirst() {
    const v = ['pre', 'off', 'ch'].map($).find(e => !e.hidden);
    if (!v) return;
    if (v.id == 'ch') (conv && conv.status == 'closed' ? $('eh') : $('ta')).focus();
    else (v.querySelector('input:not([hidden]),[tabindex="-1"]:not([hidden])') || v).focus();
  }
  function openChat() {
    if (!R) return void (wantOpen = 1);
    if (isOpen) return;
    isOpen = 1; P.hidden = false;
    L.setAttribute('aria-label', T.close); L.setAttribute('aria-expanded', 'true');
    unread = 0; badge(); say('an');
    $('log').scrollTop = 1e9;
    focusFirst();
    emit('open');
  }
  function closeChat() {
    if (!R) return void (wantOpen = 0);
    if (!isOpen) return;
    isOpen = 0; P.hidden = true;
    L.setAttribute('aria-label', T.open); L.setAttribute('aria-expanded', 'false');
    emit('close');
  }
  function stars() {
    if (R) R.querySelectorAll('.st button').forEach((b, i) => { b.setAttribute('aria-pressed', i + 1 == score); b.classList.toggle('on', i < score) });
  }
  function busy(form, p) { form.querySelector('.pr').disabled = p }

  // ---- colour: brand background, black or white text on it (whichever contrasts more)
  function ink(c) {
    const x = d.createElement('canvas').getContext('2d');
    x.fillStyle = c;
    const m = /^#(..)(..)(..)$/.exec(x.fillStyle);
    if (!m) return '#fff';
    const [r, g, b] = m.slice(1).map(v => (v = parseInt(v, 16) / 255) <= .03928 ? v / 12.92 : ((v + .055) / 1.055) ** 2.4);
    const l = .2126 * r + .7152 * g + .0722 * b;
    return 1.05 / (l + .05) >= (l + .05) / .05 ? '#fff' : '#000';
  }

  const ICON = p => `<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${p}</svg>`;
  const STYLE = c => `:host{all:initial!important}
.w{--c:${c};--k:${ink(c)};--f:${ink(c) == '#fff' ? c : '#1f2328'};font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;text-align:left}
*,::before,::after{box-sizing:border-box}
[hidden]{display:none!important}
button,input,select,textarea{font:inherit;color:inherit;margin:0}
button{cursor:pointer}
:focus-visible{outline:3px solid var(--f);outline-offset:2px}
.hd :focus-visible{outline-color:var(--k);outline-offset:1px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.l{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:58px;height:58px;border-radius:50%;border:0;padding:0;background:var(--c);color:var(--k);box-shadow:0 4px 14px #0004;display:grid;place-items:center;transition:transform .15s}
.l:hover{transform:scale(1.06)}
.l svg{width:28px;height:28px}
.l[aria-expanded=true] .i1,.l[aria-expanded=false] .i2{display:none}
.bd{position:absolute;top:-3px;right:-3px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#c62828;color:#fff;font-size:12px;font-weight:700;line-height:22px}
.p{position:fixed;right:20px;bottom:90px;z-index:2147483001;width:370px;height:min(600px,calc(100vh - 110px));display:flex;flex-direction:column;background:#fff;border-radius:14px;box-shadow:0 10px 36px #0004;overflow:hidden;animation:in .18s ease-out}
@keyframes in{from{opacity:0;transform:translateY(12px)}}
.hd{display:flex;align-items:flex-start;gap:8px;padding:14px 10px 14px 16px;background:var(--c);color:var(--k)}
.hx{flex:1;min-width:0}
h2{margin:0;font-size:17px;font-weight:700}
.hd p{margin:3px 0 0;font-size:14px}
.hd button{background:none;border:1px solid currentColor;border-radius:6px;padding:2px 8px;font-size:13px;white-space:nowrap}
.hd .x{border:0;padding:3px}
.x svg{width:22px;height:22px;display:block}
.bo{flex:1;min-height:0;display:flex;flex-direction:column;overflow:auto}
.f{padding:8px 16px 16px;display:flex;flex-direction:column}
.f p,.ev p{margin:8px 0 0}
label,legend{font-size:14px;font-weight:600;margin:10px 0 3px;padding:0}
input,select,textarea{width:100%;padding:8px 10px;border:1px solid #6e7781;border-radius:6px;background:#fff}
textarea{resize:vertical;min-height:84px}
.pr{background:var(--c);color:var(--k);border:0;border-radius:6px;padding:9px 16px;font-weight:600;margin-top:14px}
.pr:disabled{opacity:.6;cursor:default}
.sc{background:#fff;border:1px solid #6e7781;border-radius:6px;padding:2px 8px;font-size:13px;color:#1f2328}
.e{color:#b42318;font-size:14px}
.e:empty,.ok:empty{margin:0!important;padding:0!important}
.tw{display:flex;flex-direction:column}
#rc{min-height:60px}
.ok{color:#116329;font-weight:600}
#ch{flex:1;min-height:0;display:flex;flex-direction:column}
#log{flex:1;min-height:70px;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px}
.m{display:flex;gap:8px;align-items:flex-end;max-width:88%}
.m.v{align-self:flex-end;flex-direction:row-reverse}
.m.s{align-self:center;text-align:center;color:#57606a;font-size:13px;max-width:95%}
.av{flex:none;width:30px;height:30px;border-radius:50%;background:#4b5563;color:#fff;font-size:12px;font-weight:700;display:grid;place-items:center;overflow:hidden}
.av img{width:100%;height:100%;object-fit:cover}
.b{background:#f1f3f5;border-radius:12px;padding:7px 11px;min-width:0;overflow-wrap:anywhere}
.v .b{background:var(--c);color:var(--k)}
.s .b{background:none;padding:0}
.pe .b{background:#e5e7eb;color:#1f2328}
.n{font-size:12px;font-weight:700}
.t{white-space:pre-wrap}
.dl{font-style:italic}
a{color:inherit;text-decoration:underline}
.att{margin:4px 0 0;padding:0 0 0 16px}
.mt{font-size:12px}
.a .mt,.pe .mt{color:#4b5563}
.b .e{margin-top:4px;background:#fff;border-radius:6px;padding:2px 6px}
.ty,.nt{padding:0 14px;font-size:13px;color:#57606a}
.co{display:flex;gap:8px;padding:10px;border-top:1px solid #d0d7de;align-items:flex-end}
.co textarea{min-height:44px;max-height:130px;resize:none}
.co .pr{margin:0}
.cx{padding:0 10px}
.ev{flex:none;max-height:70%;overflow:auto;padding:12px 16px 16px;border-top:1px solid #d0d7de}
.eh{font-weight:700}
.ev form{display:flex;flex-direction:column}
fieldset{border:0;margin:0;padding:0}
.st{display:flex;gap:2px}
.st button{background:none;border:0;font-size:30px;line-height:1;color:#6b7280;padding:0 3px;border-radius:4px}
.st .on{color:#b45309}
.rw{display:flex;gap:8px}
.rw .pr{margin:0;flex:none}
.ev>.sc{margin-top:14px;align-self:flex-start;padding:7px 14px;font-size:15px}
.ev{display:flex;flex-direction:column}
@media (max-width:480px){.p{inset:0;width:auto;height:auto;border-radius:0}.l[aria-expanded=true]{display:none}}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}`;

  function render() {
    const host = d.createElement('sitechat-widget');
    R = host.attachShadow({ mode: 'open' });
    const c0 = S.dataset.color, color = c0 && w.CSS && CSS.supports('color', c0) ? c0 : '#1d4ed8';
    const css = STYLE(color);
    let style = '';
    try { const sh = new CSSStyleSheet(); sh.replaceSync(css); R.adoptedStyleSheets = [sh] } catch { style = `<style>${css}</style>` }
    const e = k => esc(T[k]);
    const field = (id, k, extra = '', tag = 'input') => `<label for="${id}">${e(k)}</label><${tag} id="${id}" ${extra}>${tag == 'textarea' ? '</textarea>' : ''}`;
    R.innerHTML = style + `<div class="w">
<button class="l" id="l" type="button" aria-expanded="false" aria-label="${e('open')}">${ICON('<path class="i1" d="M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.8A8 8 0 1 1 21 12z"/><path class="i2" d="m6 9 6 6 6-6"/>')}<span class="bd" id="bd" aria-hidden="true" hidden></span></button>
<div class="sr" id="an" aria-live="polite"></div>
<div class="p" id="p" role="dialog" hidden>
<div class="hd"><div class="hx"><h2 id="ti"></h2><p id="gr"></p></div>
<button type="button" id="end" hidden>${e('end')}</button>
<button type="button" class="x" id="min" aria-label="${e('minimise')}">${ICON('<path d="M6 6l12 12M18 6 6 18"/>')}</button></div>
<div class="bo">
<form class="f" id="pre" hidden>${field('pn', 'name', `autocomplete="name" maxlength="100"${attr('data-require-name') ? ' required' : ''}`)}${field('pe', 'email', `type="email" autocomplete="email" maxlength="254"${attr('data-require-email') ? ' required' : ''}`)}<div id="tw" class="tw" hidden>${field('pt', 'topic', '', 'select')}</select></div><p class="e" id="px" role="alert"></p><button class="pr">${e('start')}</button></form>
<form class="f" id="off" hidden><p id="oi"></p>${field('on', 'name', 'autocomplete="name" maxlength="100"')}${field('oe', 'email', 'type="email" autocomplete="email" maxlength="254" required')}${field('om', 'message', 'maxlength="4000" required', 'textarea')}<p class="e" id="ox" role="alert"></p><button class="pr">${e('sendMessage')}</button><p class="ok" id="oo" tabindex="-1" hidden></p></form>
<div id="ch" hidden><div id="log" role="log" aria-live="polite" aria-label="${e('log')}" tabindex="0"></div><div class="ty" id="ty" aria-live="polite"></div><div class="nt" id="nt" role="status"></div>
<div class="ev" id="ev" hidden><p class="eh" id="eh" tabindex="-1">${e('ended')}</p>
<form id="rf"><fieldset><legend>${e('rate')}</legend><div class="st">${[1, 2, 3, 4, 5].map(n => `<button type="button" aria-pressed="false" aria-label="${esc(n == 1 ? T.star : fmt(T.stars, { n }))}">★</button>`).join('')}</div></fieldset>${field('rc', 'comment', 'maxlength="1000"', 'textarea')}<p class="e" id="rx" role="alert"></p><button class="pr">${e('sendRating')}</button></form>
<p class="ok" id="rt" tabindex="-1" hidden>${e('thanks')}</p>
<form id="tf"><label for="te">${e('transcriptEmail')}</label><div class="rw"><input id="te" type="email" autocomplete="email" required><button class="pr">${e('sendTranscript')}</button></div><p class="e" id="tx" role="status"></p></form>
<button type="button" class="sc" id="nc">${e('newChat')}</button></div>
<form class="co" id="co"><label class="sr" for="ta">${e('message')}</label><textarea id="ta" rows="1" maxlength="4000" placeholder="${e('placeholder')}"></textarea><button class="pr">${e('send')}</button></form><p class="e cx" id="cx" role="alert"></p></div>
</div></div></div>`;
    P = $('p'); L = $('l');
    P.setAttribute('aria-label', fmt(T.dialog, { site: site.name || SITE }));
    say('ti', site.name || SITE);
    say('gr', site.greeting);
    const topics = Array.isArray(site.topics) ? site.topics : [];
    if (topics.length) {
      $('tw').hidden = false;
      const sel = $('pt');
      sel.append(new Option(T.pickTopic, ''));
      for (const t of topics) sel.append(new Option(t.label || t.id, t.id));
    }

    L.onclick = () => isOpen ? closeChat() : openChat();
    $('min').onclick = () => { closeChat(); L.focus() };
    P.addEventListener('keydown', ev => { if (ev.key == 'Escape') { ev.stopPropagation(); closeChat(); L.focus() } });

    $('pre').onsubmit = async ev => {
      ev.preventDefault();
      const f = ev.target;
      if (!f.reportValidity()) return;
      say('px');
      const name = $('pn').value.trim(), email = $('pe').value.trim(), topic = $('pt').value;
      const visitor = {};
      for (const [k, v] of Object.entries({ name, email, id: vis.id, hash: vis.hash })) if (v) visitor[k] = v;
      busy(f, true);
      const r = await call(`/api/v1/sites/${SITE}/conversations`, {
        visitor, topic: topic || undefined, page: { url: location.href, title: d.title, referrer: d.referrer },
        locale: navigator.language, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
      });
      busy(f, false);
      if ((r.s != 201 && r.s != 200) || !r.j.token) return say('px', errText(r));
      Object.assign(vis, visitor);
      conv = { id: r.j.conversation.id, token: r.j.token, lastSeq: 0, status: r.j.conversation.status || 'open' };
      save();
      $('co').hidden = false; $('ev').hidden = true;
      view('ch'); connect();
      $('ta').focus();
    };
    $('off').onsubmit = async ev => {
      ev.preventDefault();
      const f = ev.target;
      if (!f.reportValidity()) return;
      say('ox');
      const name = $('on').value.trim(), email = $('oe').value.trim(), text = $('om').value.trim();
      if (!text) return say('ox', T.error);
      busy(f, true);
      const r = await call(`/api/v1/sites/${SITE}/offline-messages`, { name: name || undefined, email, text });
      busy(f, false);
      if (r.s != 202 && r.s != 200 && r.s != 201) return say('ox', errText(r));
      Object.assign(vis, name ? { name, email } : { email }); save();
      for (const x of f.children) if (x.id != 'oo') x.hidden = true;
      const ok = $('oo');
      ok.hidden = false; ok.textContent = T.offlineSent; ok.focus();
    };
    const ta = $('ta');
    $('co').onsubmit = ev => {
      ev.preventDefault();
      if (send(ta.value)) { ta.value = ''; ta.style.height = '' }
    };
    ta.onkeydown = ev => {
      if (ev.key == 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); $('co').requestSubmit() }
    };
    ta.oninput = () => {
      ta.style.height = ''; ta.style.height = Math.min(ta.scrollHeight + 2, 130) + 'px';
      if (ready && ta.value.trim() && Date.now() - lastTy > 3000) { lastTy = Date.now(); tx({ type: 'typing' }) }
    };
    $('end').onclick = async () => {
      const r = await call(`/api/v1/conversations/${conv.id}/close`, {}, 1);
      if (r.s == 200) status('closed'); else say('nt', errText(r));
    };
    R.querySelectorAll('.st button').forEach((b, i) => { b.onclick = () => { score = i + 1; stars(); say('rx') } });
    $('rf').onsubmit = async ev => {
      ev.preventDefault();
      if (!score) return say('rx', T.pickScore);
      const comment = $('rc').value.trim(), f = ev.target;
      busy(f, true);
      const r = await call(`/api/v1/conversations/${conv.id}/rating`, comment ? { score, comment } : { score }, 1);
      busy(f, false);
      if (r.s != 200 && r.s != 201 && r.s != 409) return say('rx', errText(r));
      conv.rated = 1; save();
      f.hidden = true; $('rt').hidden = false;
      if (f.contains(R.activeElement)) $('rt').focus();
    };
    $('tf').onsubmit = async ev => {
      ev.preventDefault();
      const f = ev.target;
      if (!f.reportValidity()) return;
      const email = $('te').value.trim();
      busy(f, true);
      const r = await call(`/api/v1/conversations/${conv.id}/transcript`, { email }, 1);
      busy(f, false);
      const x = $('tx');
      x.className = r.s == 202 || r.s == 200 ? 'ok' : 'e';
      x.textContent = x.className == 'ok' ? T.transcriptSent : errText(r);
    };
    $('nc').onclick = reset;

    d.body.append(host);
    if (conv) {
      view('ch');
      queue.forEach(pending);
      if (conv.status == 'closed') { status('closed'); check() } else connect();
    } else start();
    prefill();
    if (wantOpen) openChat();
  }

  // ---- page API (replays calls queued before load)
  const api = {
    v: 1,
    open: openChat,
    close: closeChat,
    identify(o) {
      o = o || {};
      for (const k of ['id', 'name', 'email', 'hash']) if (o[k] != null) vis[k] = String(o[k]);
      save(); prefill();
    },
    on(e, fn) {
      (subs[e] = subs[e] || []).push(fn);
      return () => { subs[e] = subs[e].filter(f => f != fn) };
    },
  };
  const q = w.Sitechat && Array.isArray(w.Sitechat.q) ? w.Sitechat.q : [];
  w.Sitechat = api;
  q.forEach(([m, ...a]) => { try { api[m] && api[m](...a) } catch (x) { console.error(x) } });

  // page tracking: SPA navigation included
  for (const k of ['pushState', 'replaceState']) {
    const o = history[k];
    history[k] = function () { const r = o.apply(this, arguments); setTimeout(page); return r };
  }
  w.addEventListener('popstate', page);
  w.addEventListener('hashchange', page);
  w.addEventListener('online', () => { if (!R) { bt = 0; boot() } else if (conv && !ws) { tries = 0; connect() } });

  // The site's settings. While the server cannot be reached (0) or is failing (5xx, 429), try again
  // with backoff: a page opened during an outage or a restart gets its chat once the server is back.
  let bt = 0, bT, bf;
  async function boot() {
    if (bf || site) return;
    bf = 1; clearTimeout(bT);
    const r = await call(`/api/v1/sites/${encodeURIComponent(SITE)}`);
    bf = 0;
    if (r.s != 200) {
      if (!bt) console.warn('sitechat: site unavailable', r.s);
      if ((!r.s || r.s > 499 || r.s == 429) && bt < 12) bT = setTimeout(boot, Math.min(30000, 1000 * 2 ** bt++));
      return;
    }
    site = r.j;
    if (d.body) render(); else d.addEventListener('DOMContentLoaded', render);
  }
  boot();
})();
