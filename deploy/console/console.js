/*
 * console.js - the operator console: campaigns with live stock and their redeemed and
 * held issuances, one campaign's live charts, create/PATCH forms showing the API's own
 * validation messages, and a user's issuance. Static: it only calls the JSON API of the
 * same origin.
 *
 * The admin token is typed once, kept in sessionStorage (this tab only, gone when it
 * closes) and sent as "Authorization: Bearer"; it never appears in a URL, so never in
 * an access log. Nothing is written with innerHTML: every value is set as text.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'couponAdminToken';
  const POLL_MS = 500;          // a claim is in the master's ring ~1 s after it happened
  const LIST_POLL_MS = 2000;
  const SERIES_SECONDS = 120;
  const $ = (sel) => document.querySelector(sel);

  let timer = null;
  let listTimer = null;
  let listCursor = null;        // `next` of the last page loaded, null when none
  let claimsPlot = null;
  let answersPlot = null;
  let current = null;           // the campaign document on the campaign page

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && problem.detail) || ('HTTP ' + status));
      this.status = status;
      this.problem = problem || {};
    }
  }

  async function api(method, path, body) {
    const headers = { 'Accept': 'application/json' };
    const t = token();
    if (t) headers['Authorization'] = 'Bearer ' + t;
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    let doc = null;
    try { doc = await r.json(); } catch (e) { doc = null; }
    if (!r.ok) {
      if (r.status === 401 || r.status === 403) authFailed(r.status, doc);
      throw new ApiError(r.status, doc);
    }
    return doc;
  }

  function show(section) {
    for (const id of ['auth', 'list', 'campaign']) $('#' + id).hidden = id !== section;
    $('#sign-out').hidden = section === 'auth';
  }

  function banner(text) {
    const b = $('#banner');
    b.textContent = text || '';
    b.hidden = !text;
  }

  function authFailed(status, doc) {
    sessionStorage.removeItem(TOKEN_KEY);
    stopPolling();
    const why = doc && doc.detail ? doc.detail : 'HTTP ' + status;
    $('#auth-msg').textContent = status === 403
      ? 'The admin token was refused (' + why + '). Check it and try again.'
      : 'The API asks for the admin token (' + why + ').';
    show('auth');
  }

  function stopPolling() {
    if (timer) clearInterval(timer);
    if (listTimer) clearInterval(listTimer);
    timer = listTimer = null;
  }

  function fmt(n) { return n === null || n === undefined ? '∞' : String(n); }

  function bar(issued, total) {
    const outer = document.createElement('div');
    outer.className = 'bar';
    const inner = document.createElement('div');
    inner.style.width = total ? Math.min(100, (100 * issued) / total).toFixed(1) + '%' : '0%';
    outer.appendChild(inner);
    return outer;
  }

  // ---------------------------------------------------------------- list ----
  function rowOf(c) {
    const tr = document.createElement('tr');
    tr.dataset.id = String(c.id);
    const cells = [String(c.id), null, c.startAt + ' → ' + c.endAt, fmt(c.issued),
      fmt(c.persisted), fmt(c.pending), fmt(c.remaining), fmt(c.redeemed), fmt(c.held)];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      if (i === 1) {
        const a = document.createElement('a');
        a.href = '#/coupons/' + c.id;
        a.textContent = c.title;
        td.appendChild(a);
      } else {
        td.textContent = text;
      }
      td.className = ['id', 'title', 'window', 'issued', 'persisted', 'pending', 'remaining',
        'redeemed', 'held'][i];
      tr.appendChild(td);
    });
    const td = document.createElement('td');
    td.appendChild(bar(c.issued, c.totalQuantity));
    tr.appendChild(td);
    return tr;
  }

  async function loadList(append) {
    const q = '/api/admin/coupons?limit=20' + (append && listCursor ? '&after=' + listCursor : '');
    const page = await api('GET', q);
    const body = $('#campaigns tbody');
    if (!append) body.replaceChildren();
    for (const c of page.items) body.appendChild(rowOf(c));
    listCursor = page.next;
    $('#more').hidden = !page.next;
  }

  // Refreshes the rows on screen (the first page only: older pages stay as loaded).
  async function refreshList() {
    try {
      const page = await api('GET', '/api/admin/coupons?limit=20');
      const body = $('#campaigns tbody');
      for (const c of page.items) {
        const old = body.querySelector('tr[data-id="' + c.id + '"]');
        if (old) old.replaceWith(rowOf(c)); else body.prepend(rowOf(c));
      }
      banner('');
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 403))
        banner('Could not refresh the campaigns: ' + e.message);
    }
  }

  // ---------------------------------------------------------------- forms ----
  function clearErrors(form) {
    form.querySelectorAll('.field-error, .form-error, .form-ok').forEach((p) => {
      p.textContent = '';
    });
    form.querySelectorAll('[aria-invalid]').forEach((i) => i.removeAttribute('aria-invalid'));
  }

  // The API's detail names the field first ("totalQuantity must be ..."): shown there.
  function showProblem(form, err) {
    const detail = err.message;
    const field = /^([A-Za-z]+)\b/.exec(detail);
    const slot = field && form.querySelector('.field-error[data-for="' + field[1] + '"]');
    if (slot) {
      slot.textContent = detail;
      const input = form.querySelector('[name="' + field[1] + '"]');
      if (input) input.setAttribute('aria-invalid', 'true');
    } else {
      const code = err.problem && err.problem.code ? ' (' + err.problem.code + ')' : '';
      form.querySelector('.form-error').textContent = detail + code;
    }
  }

  // A number typed as a number is sent as one; anything else as typed, for the API to judge.
  function value(input) {
    const v = input.value.trim();
    if (input.name !== 'title' && input.name !== 'code' && input.name !== 'description' &&
        /^-?\d+(\.\d+)?$/.test(v)) return Number(v);
    return v;
  }

  function rfc3339(d) { return d.toISOString().replace(/\.\d{3}Z$/, 'Z'); }

  async function onCreate(ev) {
    ev.preventDefault();
    const form = ev.target;
    clearErrors(form);
    const doc = {};
    for (const input of form.querySelectorAll('input, select')) {
      const v = value(input);
      if (v === '' && (input.name === 'code' || input.name === 'description')) continue;
      doc[input.name] = v;
    }
    try {
      const c = await api('POST', '/api/coupons', doc);
      form.reset();
      defaults();
      location.hash = '#/coupons/' + c.id;
    } catch (e) {
      if (e instanceof ApiError) showProblem(form, e); else banner(e.message);
    }
  }

  async function onPatch(ev) {
    ev.preventDefault();
    const form = ev.target;
    clearErrors(form);
    const patch = {};
    for (const input of form.querySelectorAll('input')) {
      const v = value(input);
      const was = current[input.name] === null || current[input.name] === undefined
        ? '' : current[input.name];
      if (String(v) !== String(was)) patch[input.name] = v === '' ? null : v;
    }
    if (Object.keys(patch).length === 0) {
      form.querySelector('.form-error').textContent = 'Nothing changed.';
      return;
    }
    try {
      current = await api('PATCH', '/api/coupons/' + current.id, patch);
      fillPatch();
      showCampaignDoc();
      form.querySelector('.form-ok').textContent = 'Saved.';
    } catch (e) {
      if (e instanceof ApiError) showProblem(form, e); else banner(e.message);
    }
  }

  async function onLookup(ev) {
    ev.preventDefault();
    const form = ev.target;
    clearErrors(form);
    $('#lookup-result').hidden = true;
    const user = form.userId.value.trim();
    if (!/^[1-9]\d{0,18}$/.test(user)) {
      form.querySelector('.field-error[data-for="userId"]').textContent =
        'userId must be a positive integer';
      return;
    }
    try {
      const r = await api('GET', '/api/coupons/' + current.id + '/issues/' + user);
      $('#l-status').textContent = r.status;
      $('#l-sequence').textContent = String(r.sequence);
      $('#l-issued-at').textContent = r.issuedAt;
      $('#lookup-result').hidden = false;
    } catch (e) {
      form.querySelector('.form-error').textContent = e.message;
    }
  }

  function defaults() {
    const f = $('#create-form');
    const now = new Date();
    f.startAt.value = rfc3339(now);
    f.endAt.value = rfc3339(new Date(now.getTime() + 24 * 3600 * 1000));
  }

  // -------------------------------------------------------------- campaign ----
  function fillPatch() {
    const f = $('#patch-form');
    for (const name of ['title', 'description', 'endAt', 'totalQuantity']) {
      const v = current[name];
      f[name].value = v === null || v === undefined ? '' : String(v);
    }
  }

  function showCampaignDoc() {
    $('#c-id').textContent = '#' + current.id;
    $('#c-title').textContent = current.title;
    $('#c-window').textContent = current.couponType + ', ' + current.startAt + ' → ' +
      current.endAt + ', total ' + fmt(current.totalQuantity);
  }

  function plot(el, title, names, colors) {
    const series = [{}].concat(names.map((n, i) => ({
      label: n, stroke: colors[i % colors.length], width: 2, points: { show: false },
    })));
    return new uPlot({
      title, width: Math.max(320, el.clientWidth || 720), height: 220, series,
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(5, hi)] } },
      axes: [{}, { label: 'per second' }],
    }, [[]].concat(names.map(() => [])), el);
  }

  const STATUS_COLORS = { '201': '#2a9d4b', '202': '#7fbf7f', '409': '#e9a23b',
    '410': '#8a6fdf', '422': '#4a90d9', '429': '#d98f4a', '503': '#d9534f' };

  function updateCharts(s) {
    const end = s.endEpochSeconds || Math.floor(Date.now() / 1000) - 1;
    const xs = s.claims.map((_, i) => end - s.seconds + 1 + i);
    const claimsEl = $('#claims-chart');
    if (!claimsPlot) claimsPlot = plot(claimsEl, null, ['claims/s'], ['#2a6fdb']);
    claimsPlot.setData([xs, s.claims]);
    claimsEl.dataset.total = String(s.claims.reduce((a, b) => a + b, 0));
    claimsEl.dataset.tracked = String(s.tracked);

    const names = s.answers.map((a) => a.status);
    const ansEl = $('#answers-chart');
    if (!answersPlot || answersPlot.series.length - 1 !== names.length ||
        names.some((n, i) => answersPlot.series[i + 1].label !== n)) {
      if (answersPlot) answersPlot.destroy();
      answersPlot = plot(ansEl, null, names.length ? names : ['none'],
        names.map((n) => STATUS_COLORS[n] || '#888'));
    }
    answersPlot.setData([xs].concat(names.length ? s.answers.map((a) => a.values)
      : [xs.map(() => 0)]));
    ansEl.dataset.total = String(s.answers.reduce(
      (a, b) => a + b.values.reduce((x, y) => x + y, 0), 0));
  }

  async function refreshCampaign(id) {
    try {
      const [st, s] = await Promise.all([
        api('GET', '/api/admin/coupons/' + id + '/stats'),
        api('GET', '/api/admin/coupons/' + id + '/series?seconds=' + SERIES_SECONDS),
      ]);
      const total = current ? current.totalQuantity : null;
      $('#s-issued').textContent = String(st.issued);
      $('#s-persisted').textContent = String(st.persisted);
      $('#s-pending').textContent = String(st.pending);
      $('#s-remaining').textContent = total === null ? '∞'
        : String(Math.max(0, total - st.issued));
      $('#s-bar').style.width = total ? Math.min(100, (100 * st.issued) / total) + '%' : '0%';
      $('#s-redeemed').textContent = String(st.redeemed);
      $('#s-held').textContent = String(st.held);
      updateCharts(s);
      banner('');
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 403))
        banner('Could not refresh the campaign: ' + e.message);
    }
  }

  async function openCampaign(id) {
    show('campaign');
    if (claimsPlot) { claimsPlot.destroy(); claimsPlot = null; }
    if (answersPlot) { answersPlot.destroy(); answersPlot = null; }
    $('#lookup-result').hidden = true;
    clearErrors($('#patch-form'));
    current = await api('GET', '/api/coupons/' + id);
    showCampaignDoc();
    fillPatch();
    await refreshCampaign(id);
    timer = setInterval(() => refreshCampaign(id), POLL_MS);
  }

  // ---------------------------------------------------------------- routes ----
  async function route() {
    stopPolling();
    banner('');
    if (!token()) { show('auth'); return; }
    const m = /^#\/coupons\/([1-9]\d{0,18})$/.exec(location.hash);
    try {
      if (m) {
        await openCampaign(m[1]);
      } else {
        show('list');
        await loadList(false);
        listTimer = setInterval(refreshList, LIST_POLL_MS);
      }
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 403))
        banner(e.message);
    }
  }

  async function onToken(ev) {
    ev.preventDefault();
    const input = $('#token');
    const t = input.value.trim();
    input.value = '';
    $('#auth-msg').textContent = '';
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    await route();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('#token-form').addEventListener('submit', onToken);
    $('#create-form').addEventListener('submit', onCreate);
    $('#patch-form').addEventListener('submit', onPatch);
    $('#lookup-form').addEventListener('submit', onLookup);
    $('#more').addEventListener('click', () => loadList(true).catch((e) => banner(e.message)));
    $('#sign-out').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      stopPolling();
      location.hash = '#/';
      show('auth');
    });
    window.addEventListener('hashchange', route);
    defaults();
    route();
  });
})();
