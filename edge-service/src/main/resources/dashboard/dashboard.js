// tokenmeter dashboard (ADR 0082). Reads only the usage API (GET /admin/usage, GET /v1/usage) and the read-only
// /admin/pipeline and /admin/alerts. The token lives in this page's memory only: taken from the address's fragment
// (never sent to a server) or typed in, sent in an Authorization header, never put in a URL, never logged.
// Money is shown from the API's exact decimal strings; where a sum is needed it is done on BigInt nano-dollars.
'use strict';
(function () {
  const ADMIN = location.pathname.startsWith('/admin/');
  const DAY = 86400;
  let secret = null;
  let timer = null;

  const $ = (sel, root) => (root || document).querySelector(sel);
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
    return e;
  }

  // Exact money: "12.345000000" <-> BigInt nano-USD.
  function nano(s) {
    const neg = s.startsWith('-');
    const [w, f = ''] = (neg ? s.slice(1) : s).split('.');
    const v = BigInt(w) * 1000000000n + BigInt((f + '000000000').slice(0, 9));
    return neg ? -v : v;
  }
  function usd(n) {
    const neg = n < 0n;
    const a = neg ? -n : n;
    return (neg ? '-' : '') + (a / 1000000000n).toString() + '.' + (a % 1000000000n).toString().padStart(9, '0');
  }
  // Per mille of used/credit, as an integer (exact), for the thresholds; null without a credit.
  function permille(used, credit) { return credit > 0n ? Number((used * 1000n) / credit) : null; }
  function pctText(pm) { return pm == null ? 'no credit' : (pm / 10).toFixed(1) + ' %'; }

  async function api(path) {
    const res = await fetch(path, { headers: { Authorization: 'Bearer ' + secret, Accept: 'application/json' },
      cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' });
    const body = await res.json().catch(() => null);
    if (res.status === 401) { signOut('The ' + (ADMIN ? 'admin token' : 'API key') + ' was refused.'); throw new Error('unauthorized'); }
    if (!res.ok) throw new Error((body && body.error && body.error.message) || ('HTTP ' + res.status));
    return body;
  }
  function q(params) { return new URLSearchParams(params).toString(); }

  function monthStart(now) { return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) / 1000; }
  function monthName(now) { return now.toISOString().slice(0, 7); }

  function showError(key, err) {
    const p = document.querySelector('[data-error="' + key + '"]');
    if (p) p.textContent = err ? String(err.message || err) : '';
  }

  // --- spend per day: hand-written SVG bars ---
  function chart(target, days) {
    target.replaceChildren();
    const W = 900, H = 220, left = 70, bottom = 24, top = 10;
    const max = days.reduce((m, d) => (d.nano > m ? d.nano : m), 0n);
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('role', 'img');
    const mk = (tag, a, text) => { const e = document.createElementNS(ns, tag); for (const k in a) e.setAttribute(k, a[k]); if (text != null) e.textContent = text; svg.append(e); return e; };
    mk('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, class: 'axis' });
    mk('text', { x: left - 6, y: top + 8, 'text-anchor': 'end' }, '$' + usd(max));
    mk('text', { x: left - 6, y: H - bottom, 'text-anchor': 'end' }, '$0');
    const slot = (W - left) / Math.max(days.length, 1);
    days.forEach((d, i) => {
      // Geometry only: the height may be approximate, the label is the exact string.
      const h = max > 0n ? Number((d.nano * 10000n) / max) / 10000 * (H - bottom - top) : 0;
      const bar = mk('rect', { x: left + i * slot + 2, y: H - bottom - h, width: Math.max(slot - 4, 1), height: h, class: 'bar',
        'data-day': d.day, 'data-usd': d.usd });
      const t = document.createElementNS(ns, 'title'); t.textContent = d.day + ': $' + d.usd; bar.append(t);
      if (i % 5 === 0 || i === days.length - 1) mk('text', { x: left + i * slot + slot / 2, y: H - 8, 'text-anchor': 'middle' }, d.day.slice(5));
    });
    target.append(svg);
  }

  // Buckets of an OpenAI-shaped page -> [{day, nano, usd}] (a bucket may hold several results: billed and realtime).
  function perDay(page) {
    return page.data.map(b => {
      const n = b.results.reduce((s, r) => s + nano(r.amount.value), 0n);
      return { day: new Date(b.start_time * 1000).toISOString().slice(0, 10), nano: n, usd: usd(n) };
    });
  }
  function last30() { const today = Math.floor(Date.now() / 1000 / DAY) * DAY; return today - 29 * DAY; }

  function meter(pm) {
    const m = el('span', { class: 'meter' });
    const w = pm == null ? 0 : Math.min(pm / 10, 100);
    m.append(el('span', { class: 'fill ' + (pm >= 1000 ? 't100' : pm >= 800 ? 't80' : pm >= 500 ? 't50' : '') }));
    m.firstChild.style.width = w + '%';
    for (const t of [50, 80, 100]) { const k = el('span', { class: 'mark', title: t + ' %' }); k.style.left = 'calc(' + t + '% - 1px)'; m.append(k); }
    return el('span', {}, m, el('span', { class: 'pct' }, pctText(pm)));
  }

  // --- the one-user view: the month's answer (credit, real time, billed by model) and 30 days per day ---
  async function userView(root, monthPath, dailyPath) {
    root.replaceChildren(el('p', { class: 'note' }, 'Loading…'));
    const [m, daily] = await Promise.all([api(monthPath), api(dailyPath)]);
    const credit = nano(m.monthly_credit_usd);
    const used = m.realtime ? nano(m.realtime.settled_usd) : nano(m.billed.total_cost_usd);
    const kv = el('dl', { class: 'kv' });
    const add = (k, v, id) => kv.append(el('dt', {}, k), el('dd', id ? { 'data-field': id } : {}, v));
    add('User', m.user_id, 'user');
    add('Month', m.month);
    add('Monthly credit (USD)', m.monthly_credit_usd, 'credit');
    add('Used now (USD, real time)', m.realtime ? m.realtime.settled_usd : 'unknown (engine unavailable)', 'used');
    add('Remaining (USD)', m.realtime ? m.realtime.remaining_usd : '', 'remaining');
    add('Billed so far (USD)', m.billed.total_cost_usd, 'billed');
    const mv = el('dd', {}, meter(permille(used, credit)));
    kv.append(el('dt', {}, 'Credit used (50 / 80 / 100 %)'), mv);
    if (m.limits) {
      const models = (l) => (l == null ? 'every model' : l.join(', '));
      add('Models allowed (plan)', models(m.limits.plan_allowed_models !== undefined ? m.limits.plan_allowed_models : null));
      add('Models allowed (key)', models(m.limits.key_allowed_models !== undefined ? m.limits.key_allowed_models : null));
    }
    const table = el('table', { class: 'billed' }, el('thead', {}, el('tr', {}, el('th', {}, 'Model'), el('th', {}, 'Key source'),
      el('th', { class: 'num' }, 'Requests'), el('th', { class: 'num' }, 'Prompt tokens'), el('th', { class: 'num' }, 'Completion tokens'),
      el('th', { class: 'num' }, 'Cost (USD)'))));
    const tb = el('tbody');
    for (const r of m.billed.data) {
      tb.append(el('tr', { 'data-model': r.model, 'data-key-source': r.key_source }, el('td', {}, r.model), el('td', {}, r.key_source),
        el('td', { class: 'num' }, r.event_count), el('td', { class: 'num' }, r.prompt_tokens), el('td', { class: 'num' }, r.completion_tokens),
        el('td', { class: 'num cost' }, r.cost_usd)));
    }
    table.append(tb);
    const c = el('div', { class: 'chart' });
    root.replaceChildren(kv, el('h2', {}, 'Spend per day ', el('small', {}, 'billed, plus what is settled but not billed yet today')), c,
      el('h2', {}, 'Billed this month'), table);
    chart(c, perDay(daily));
  }

  // --- the operators' view ---
  async function adminView() {
    const now = new Date();
    const ms = monthStart(now);
    const month = monthName(now);
    $('#month').textContent = month;
    const tasks = [];
    tasks.push(api('/admin/usage?' + q({ start_time: last30(), bucket_width: '1d', limit: 30 })).then(p => {
      chart($('#daily-chart'), perDay(p)); showError('daily');
    }).catch(e => showError('daily', e)));
    tasks.push(api('/admin/usage?' + q({ start_time: ms, bucket_width: '1mo', group_by: 'model,key_source' })).then(p => {
      const tb = $('#by-model tbody'); tb.replaceChildren();
      const rows = (p.data[0] ? p.data[0].results : []).slice().sort((a, b) => (nano(b.amount.value) > nano(a.amount.value) ? 1 : -1));
      for (const r of rows) {
        tb.append(el('tr', { 'data-model': r.model, 'data-key-source': r.key_source }, el('td', {}, r.model), el('td', {}, r.key_source),
          el('td', { class: 'num' }, r.num_model_requests), el('td', { class: 'num' }, r.input_tokens), el('td', { class: 'num' }, r.output_tokens),
          el('td', { class: 'num cost' }, r.amount.value)));
      }
      showError('by-model');
    }).catch(e => showError('by-model', e)));
    tasks.push(api('/admin/usage?' + q({ start_time: ms, bucket_width: '1mo', group_by: 'user_id' })).then(async p => {
      const rows = (p.data[0] ? p.data[0].results : []).slice()
        .sort((a, b) => { const d = nano(b.amount.value) - nano(a.amount.value); return d > 0n ? 1 : d < 0n ? -1 : (a.user_id < b.user_id ? -1 : 1); })
        .slice(0, 10);
      const details = await Promise.all(rows.map(r => api('/admin/usage?' + q({ user: r.user_id, month })).catch(() => null)));
      const tb = $('#top-users tbody'); tb.replaceChildren();
      rows.forEach((r, i) => {
        const d = details[i];
        const credit = d ? nano(d.monthly_credit_usd) : 0n;
        const used = d && d.realtime ? nano(d.realtime.settled_usd) : nano(r.amount.value);
        const link = el('a', { class: 'user' }, r.user_id);
        link.addEventListener('click', () => openUser(r.user_id));
        tb.append(el('tr', { 'data-user': r.user_id }, el('td', {}, link), el('td', { class: 'num cost' }, r.amount.value),
          el('td', { class: 'num used' }, d && d.realtime ? d.realtime.settled_usd : ''), el('td', { class: 'num credit' }, d ? d.monthly_credit_usd : ''),
          el('td', {}, meter(d ? permille(used, credit) : null))));
      });
      showError('top-users');
    }).catch(e => showError('top-users', e)));
    tasks.push(api('/admin/usage?' + q({ start_time: ms, bucket_width: '1mo', group_by: 'project_id' })).then(p => {
      const tb = $('#top-projects tbody'); tb.replaceChildren();
      const rows = (p.data[0] ? p.data[0].results : []).slice().sort((a, b) => (nano(b.amount.value) > nano(a.amount.value) ? 1 : -1)).slice(0, 10);
      for (const r of rows) {
        tb.append(el('tr', { 'data-project': r.project_id }, el('td', {}, r.project_id), el('td', { class: 'num' }, r.num_model_requests),
          el('td', { class: 'num cost' }, r.amount.value)));
      }
      if (!rows.length) tb.append(el('tr', {}, el('td', { colSpan: 3, class: 'note' }, 'No rollups this month yet.')));
      showError('top-projects');
    }).catch(e => showError('top-projects', e)));
    tasks.push(api('/admin/alerts?' + q({ limit: 20 })).then(p => {
      const tb = $('#alerts tbody'); tb.replaceChildren();
      for (const a of p.data) {
        tb.append(el('tr', { 'data-alert': a.alert_id }, el('td', {}, a.crossed_at.replace('T', ' ').replace('Z', '')), el('td', {}, a.user_id),
          el('td', {}, a.tenant_id), el('td', { class: 'num' }, a.kind === 'credit_threshold' ? a.threshold_percent + ' %' : a.kind), el('td', { class: 'num' }, a.cost_usd + ' / ' + a.credit_usd),
          el('td', {}, a.source)));
      }
      if (!p.data.length) tb.append(el('tr', {}, el('td', { colSpan: 6, class: 'note' }, 'No alerts.')));
      showError('alerts');
    }).catch(e => showError('alerts', e)));
    tasks.push(api('/admin/pipeline?' + q({ month })).then(p => {
      const r = p.reconciliation;
      const box = $('#reconciliation');
      box.replaceChildren(el('p', {}, el('span', { class: 'badge ' + (r.status === 'reconciled' ? 'ok' : 'bad'), 'data-field': 'reconciliation' }, r.status),
        ' ' + r.users + ' users, ' + r.ledger_events + ' ledger events, $' + r.ledger_cost_usd + ' in the ledger; ' + r.users_with_differences + ' with differences.'));
      for (const d of r.differences) {
        box.append(el('p', { class: 'error' }, d.user_id + ': monthly − ledger ' + d.monthly_minus_ledger_events + ' events / $' + d.monthly_minus_ledger_cost_usd
          + ', hourly − ledger ' + d.hourly_minus_ledger_events + ' events / $' + d.hourly_minus_ledger_cost_usd));
      }
      const lag = $('#lag tbody'); lag.replaceChildren();
      for (const g of p.consumer_lag) {
        lag.append(el('tr', { 'data-group': g.consumer_group }, el('td', {}, g.consumer_group),
          el('td', { class: 'num' }, g.lag_records == null ? (g.error || 'unknown') : g.lag_records), el('td', {}, g.last_write_at)));
      }
      if (!p.consumer_lag.length) lag.append(el('tr', {}, el('td', { colSpan: 3, class: 'note' }, 'The billing sink has stored no offsets yet.')));
      const dl = $('#dead-letters tbody'); dl.replaceChildren();
      const dead = p.dead_letters;
      for (const [name, v] of [['billing sink', dead.billing_sink], ['alert notifier', dead.alert_notifier], ['aggregator (' + dead.aggregator.topic + ')', dead.aggregator]]) {
        dl.append(el('tr', {}, el('td', {}, name), el('td', { class: 'num' }, v.count == null ? (v.error || 'unknown') : v.count), el('td', {}, v.latest_at || '')));
      }
      showError('pipeline');
    }).catch(e => showError('pipeline', e)));
    await Promise.all(tasks);
  }

  function openUser(userId) {
    const box = $('#user-detail');
    box.hidden = false;
    $('#detail-user').textContent = userId;
    const month = monthName(new Date());
    userView($('.user-view', box), '/admin/usage?' + q({ user: userId, month }),
      '/admin/usage?' + q({ start_time: last30(), bucket_width: '1d', limit: 30, user_id: userId }))
      .catch(e => $('.user-view', box).replaceChildren(el('p', { class: 'error' }, e.message)));
    box.scrollIntoView();
  }

  async function refresh() {
    const root = document.body;
    root.removeAttribute('data-loaded');
    try {
      if (ADMIN) await adminView();
      else {
        $('#month').textContent = monthName(new Date());
        await userView($('#user .user-view'), '/v1/usage?' + q({ month: monthName(new Date()) }),
          '/v1/usage?' + q({ start_time: last30(), bucket_width: '1d', limit: 30 }));
      }
      $('#updated').textContent = 'updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
    } catch (e) {
      if (e.message !== 'unauthorized') $('#updated').textContent = 'error: ' + e.message;
    }
    root.setAttribute('data-loaded', String(Date.now()));
  }

  function signIn(value) {
    secret = value;
    $('#login').hidden = true;
    $(ADMIN ? '#admin' : '#user').hidden = false;
    $('#refresh').hidden = false;
    $('#signout').hidden = false;
    refresh();
    clearInterval(timer);
    timer = setInterval(refresh, 30000);
  }

  function signOut(message) {
    secret = null;
    clearInterval(timer);
    $('#admin').hidden = true;
    $('#user').hidden = true;
    $('#refresh').hidden = true;
    $('#signout').hidden = true;
    $('#login').hidden = false;
    $('#login-error').textContent = message || '';
    $('#secret').value = '';
  }

  $('#mode').textContent = ADMIN ? 'operators' : 'your usage';
  $('#secret-label').textContent = ADMIN ? 'Admin token' : 'Your API key (tm_…)';
  $('#login-hint').textContent = 'Kept in this page only, sent in the Authorization header. You may also open this page with #'
    + (ADMIN ? 'token' : 'key') + '=… after its address; the fragment never leaves the browser and is removed at once.';
  $('#login-form').addEventListener('submit', ev => { ev.preventDefault(); const v = $('#secret').value.trim(); if (v) signIn(v); });
  $('#refresh').addEventListener('click', refresh);
  $('#signout').addEventListener('click', () => signOut(''));
  $('#detail-close').addEventListener('click', () => { $('#user-detail').hidden = true; });

  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromFragment = fragment.get(ADMIN ? 'token' : 'key');
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  if (fromFragment) signIn(fromFragment); else signOut('');
})();
