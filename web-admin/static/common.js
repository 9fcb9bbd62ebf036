/* proxyd admin: helpers shared by every page. Data from the server only ever reaches the
 * page through textContent / createTextNode (PX.el), never through innerHTML: log rows hold
 * attacker-chosen URLs. */
'use strict';

class ApiError extends Error {
  constructor(message, status, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

const PX = (() => {
  let csrf = '';
  /* Set by the logout button: a poll answered 401 after the session ended must not send the
     browser to /login?next=... ahead of the plain /login the button asked for. */
  let loggingOut = false;
  let user = '';
  let role = '';

  /* el('td', {class: 'x', text: 'y', onclick: fn, 'data-testid': 'z'}, child, ...) */
  function el(tag, attrs, ...kids) {
    const svg = ['svg', 'polyline', 'line', 'text', 'g', 'rect', 'title'].includes(tag);
    const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag)
                  : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.setAttribute('class', v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function $(id) { return document.getElementById(id); }

  /* A POST that only asks (the live rule check): it leaves the page's message alone. */
  function check(path, body) { return api('POST', path, body, false, true); }

  async function api(method, path, body, asText, quiet) {
    const headers = {};
    let payload;
    if (body !== undefined) {
      if (asText) {
        headers['Content-Type'] = 'text/plain; charset=utf-8';
        payload = body;
      } else {
        headers['Content-Type'] = 'application/json';
        payload = JSON.stringify(body);
      }
    }
    if (method !== 'GET') {
      headers['X-CSRF-Token'] = csrf;
      /* A new action: the last one's message would read as this one's answer. */
      if (!quiet) flash('');
    }
    const r = await fetch(path, {method, headers, body: payload, credentials: 'same-origin'});
    if (r.status === 401 && path !== '/api/login') {
      if (!loggingOut) location.href = '/login?next=' + encodeURIComponent(location.pathname);
      throw new ApiError('not logged in', 401);
    }
    const ct = r.headers.get('Content-Type') || '';
    const data = ct.startsWith('application/json') ? await r.json() : await r.text();
    if (!r.ok) {
      const msg = data && data.error ? data.error : 'HTTP ' + r.status;
      throw new ApiError(msg, r.status, data && data.field);
    }
    return data;
  }

  let flashTimer = null;
  const FLASH_MS = 15000;

  /* The page's one message line. A success message goes after FLASH_MS, or with the next
   * action; an error stays until the next action. undo: {label, action} adds a button that
   * takes the change back. */
  function flash(msg, isError, undo) {
    const f = $('flash');
    if (!f) return;
    clearTimeout(flashTimer);
    f.replaceChildren();
    f.className = msg ? (isError ? 'flash error' : 'flash ok') : 'flash';
    if (!msg) return;
    f.append(el('span', {'data-testid': 'flash-text', text: msg}));
    if (undo) {
      const b = el('button', {type: 'button', class: 'small secondary', 'data-testid': 'flash-undo',
                              text: undo.label || 'Undo'});
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await undo.action();
        } catch (e) {
          showError(e);
        }
      });
      f.append(' ', b);
    }
    if (!isError) flashTimer = setTimeout(() => flash(''), FLASH_MS);
  }

  function fmtTime(ms) {
    if (!ms) return '';
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' +
           p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }

  function fmtBytes(n) {
    n = Number(n) || 0;
    const u = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  }

  function fmtNum(n) { return Number(n || 0).toLocaleString('en-US'); }

  /* A length of time in the largest unit that reads well: "350 ms", "10 min", "2 h 5 min". */
  function fmtDuration(ms) {
    ms = Number(ms) || 0;
    if (ms < 1) return (ms * 1000).toFixed(0) + ' \u00b5s';
    if (ms < 1000) return (ms < 10 ? ms.toFixed(1) : ms.toFixed(0)) + ' ms';
    const s = Math.round(ms / 1000);
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    if (m < 60) return m + ' min';
    if (h < 24) return h + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
    return d + ' d' + (h % 24 ? ' ' + (h % 24) + ' h' : '');
  }

  /* The time ranges the dashboard and the log offer, with the chart's bucket for each: about
   * 60 to 170 bars, 10 minutes over a day as admins know it from Pi-hole. */
  const MIN = 60 * 1000, HOUR = 60 * MIN, DAY = 24 * HOUR;
  const RANGES = {
    '1h': {ms: HOUR, bucket: MIN, label: 'last hour'},
    '24h': {ms: DAY, bucket: 10 * MIN, label: 'last 24 hours'},
    '7d': {ms: 7 * DAY, bucket: HOUR, label: 'last 7 days'},
    '30d': {ms: 30 * DAY, bucket: 6 * HOUR, label: 'last 30 days'},
  };

  /* since/until (ms) of a range, until at the end of the bucket that holds now. */
  function rangeBounds(name) {
    const r = RANGES[name];
    const until = Math.ceil((Date.now() + 1) / r.bucket) * r.bucket;
    return {since: until - r.ms, until, bucket: r.bucket};
  }

  /* The range the address asks for (?range=7d), else def. */
  function rangeFromUrl(def) {
    const r = new URLSearchParams(location.search).get('range');
    return r && Object.prototype.hasOwnProperty.call(RANGES, r) ? r : def;
  }

  /* A button per range in box, the current one pressed; choosing one puts it in the address
   * (a reload or a shared link keeps it) and calls onchange(name). withNone adds "Any". */
  function rangeButtons(box, current, onchange, withNone) {
    const names = (withNone ? [''] : []).concat(Object.keys(RANGES));
    const buttons = names.map((name) => el('button', {
      type: 'button', class: 'small secondary', 'data-range': name, 'data-testid': 'range-' + (name || 'any'),
      'aria-pressed': String(name === current), text: name ? name.replace(/(\d+)/, '$1 ').trim() : 'any time',
      title: name ? RANGES[name].label : 'no time limit'}));
    for (const b of buttons) {
      b.addEventListener('click', () => {
        for (const o of buttons) o.setAttribute('aria-pressed', String(o === b));
        const u = new URL(location.href);
        if (b.dataset.range) u.searchParams.set('range', b.dataset.range);
        else u.searchParams.delete('range');
        history.replaceState(null, '', u);
        onchange(b.dataset.range);
      });
    }
    box.replaceChildren(el('span', {class: 'muted', text: 'Time range'}), ...buttons);
    return buttons;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params))
      if (v !== '' && v !== null && v !== undefined) q.set(k, v);
    const s = q.toString();
    return s ? '?' + s : '';
  }

  /* A button that asks "sure?" on the first click and acts on the second (no confirm()
   * dialogs: they block automation and are easy to click through). */
  function confirmButton(label, testid, action) {
    const b = el('button', {type: 'button', class: 'danger', 'data-testid': testid, text: label});
    let armed = false;
    b.addEventListener('click', async () => {
      if (!armed) {
        armed = true;
        b.textContent = 'Sure?';
        setTimeout(() => { armed = false; b.textContent = label; }, 4000);
        return;
      }
      armed = false;
      b.textContent = label;
      await action();
    });
    return b;
  }

  function showError(e) { flash(e.message || String(e), true); }

  /* Answers can cross: the page's first load can answer after the user's filtered one, the
   * entry clicked first after the one clicked next. What a page shows is asked for under a
   * latest(): ask() starts a request and gives its ticket (a new filter, range, node or
   * entry), now() the ticket of a follow-up under the same one (a poll, "older"), and
   * stale(ticket) is true when something newer was asked meanwhile: its answer is then
   * dropped, not drawn. <html data-dropped> counts the answers dropped (a test waits on it). */
  function latest() {
    let n = 0;
    return {
      ask: () => ++n,
      now: () => n,
      stale(ticket) {
        if (ticket === n) return false;
        const d = document.documentElement.dataset;
        d.dropped = String(Number(d.dropped || 0) + 1);
        return true;
      },
    };
  }

  /* fn, run once at a time: a call while the last one is being answered is dropped (a
   * double-clicked Add would add the rule twice; an Approve clicked twice gets "approved
   * already" over its success). */
  function oneAtATime(fn) {
    let busy = false;
    return async (...args) => {
      if (busy) return undefined;
      busy = true;
      try {
        return await fn(...args);
      } finally {
        busy = false;
      }
    };
  }

  /* A form's submit runs fn(ev) once at a time (oneAtATime), the form marked aria-busy
   * meanwhile; the browser's own submission never happens. */
  function onSubmit(form, fn) {
    const once = oneAtATime(async (ev) => {
      form.setAttribute('aria-busy', 'true');
      try {
        await fn(ev);
      } finally {
        form.removeAttribute('aria-busy');
      }
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      once(ev).catch(showError);
    });
  }

  /* The number of pending access requests beside "Requests" in the navigation (the page's
   * first refresh can still be on its way when an approval refreshes again). */
  const badgeAsked = latest();
  async function refreshBadge() {
    const b = $('req-badge');
    if (!b) return;
    const asked = badgeAsked.ask();
    const res = await api('GET', '/api/requests?limit=1');
    if (badgeAsked.stale(asked)) return;
    b.textContent = res.pending ? String(res.pending) : '';
    b.hidden = !res.pending;
  }

  /* Takes the user and CSRF token of a session (the login page's, which has no start()). */
  function useSession(s) {
    csrf = s.csrf;
    user = s.user;
    role = s.role || '';
  }

  /* On a phone the navigation folds behind its Menu button; Escape folds it again and gives
   * the focus back to the button. */
  function navToggle() {
    const b = $('nav-toggle');
    if (!b) return;
    const header = b.closest('header');
    const set = (open) => {
      header.classList.toggle('nav-open', open);
      b.setAttribute('aria-expanded', String(open));
    };
    b.addEventListener('click', () => set(b.getAttribute('aria-expanded') !== 'true'));
    header.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && header.classList.contains('nav-open')) {
        set(false);
        b.focus();
      }
    });
  }

  /* Each cell of a table with a header row carries its column's name (data-label), so a
   * phone can show the rows as cards. Rows come and go: a new row is labelled as it is added. */
  function labelCells(root) {
    for (const table of root.querySelectorAll('table')) {
      const head = table.tHead && table.tHead.rows[0];
      if (!head) continue;
      table.classList.add('as-cards');
      const names = [...head.cells].map((th) => th.textContent.trim());
      for (const body of table.tBodies)
        for (const tr of body.rows)
          [...tr.cells].forEach((td, i) => {
            if (!td.hasAttribute('data-label') && names[i] && td.colSpan === 1) td.setAttribute('data-label', names[i]);
          });
    }
  }

  function watchTables() {
    const main = document.querySelector('main');
    if (!main) return;
    labelCells(main);
    let queued = false;
    new MutationObserver(() => {
      if (queued) return;
      queued = true;
      queueMicrotask(() => { queued = false; labelCells(main); });
    }).observe(main, {childList: true, subtree: true});
  }

  async function start(main) {
    navToggle();
    watchTables();
    try {
      const s = await api('GET', '/api/session');
      if (s.must_change_password) {
        location.href = '/login';
        return;
      }
      useSession(s);
      refreshBadge().catch(() => { /* the badge is a hint; the page works without it */ });
      const who = $('whoami');
      if (who) who.textContent = user + (role ? ' (' + role + ')' : '');
      document.body.setAttribute('data-role', role);
      const out = $('logout');
      if (out) {
        out.addEventListener('click', async () => {
          loggingOut = true;
          try { await api('POST', '/api/logout'); } catch (e) { /* going anyway */ }
          location.href = '/login';
        });
      }
      await main();
    } catch (e) {
      if (e.status !== 401) showError(e);
    }
  }

  return {el, $, api, check, flash, fmtTime, fmtBytes, fmtNum, fmtDuration, RANGES, rangeBounds,
          rangeFromUrl, rangeButtons, query, confirmButton, showError, start, latest, oneAtATime,
          onSubmit,
          useSession, refreshBadge, get user() { return user; }, get role() { return role; }};
})();
