/* proxyd admin: domain lists (import by upload or paste with its summary, view, delete) and
 * list subscriptions (subscribe, refresh, unsubscribe, each with how its last fetch went). */
'use strict';

(() => {
  const {el, $, api, fmtNum, fmtTime} = PX;
  let viewEntries = [];
  const viewAsked = PX.latest();  /* the list last asked to View is the one shown */

  function renderView() {
    const f = $('list-filter').value.trim().toLowerCase();
    const shown = f ? viewEntries.filter((d) => d.includes(f)) : viewEntries;
    const max = 2000;
    $('list-view').textContent = shown.slice(0, max).join('\n');
    $('list-view-count').textContent = fmtNum(shown.length) + ' entries' +
      (shown.length > max ? ' (first ' + max + ' shown)' : '');
  }

  async function view(name) {
    const asked = viewAsked.ask();
    const res = await api('GET', '/api/lists/' + encodeURIComponent(name));
    if (viewAsked.stale(asked)) return;
    viewEntries = res.entries;
    $('list-view-title').textContent = 'List ' + res.name;
    $('list-view-panel').hidden = false;
    renderView();
  }

  async function load() {
    const res = await api('GET', '/api/lists');
    const body = $('lists');
    body.replaceChildren();
    for (const l of res.lists) {
      const del = el('span', {'data-needs': 'operator'}, PX.confirmButton('Delete', 'list-delete', async () => {
        try {
          await api('DELETE', '/api/lists/' + encodeURIComponent(l.name));
          PX.flash('Deleted list ' + l.name);
          viewAsked.ask();  /* a View still on its way is of a list now gone */
          $('list-view-panel').hidden = true;
          await load();
        } catch (e) {
          PX.showError(e);
        }
      }));
      body.append(el('tr', {'data-name': l.name, 'data-testid': 'list-row'},
        el('td', {class: 'mono', text: l.name}),
        el('td', {class: 'num', text: fmtNum(l.entries)}),
        el('td', {text: fmtTime(l.updated_ms)}),
        el('td', {class: 'actions'},
          el('button', {type: 'button', class: 'small secondary', text: 'View', 'data-testid': 'list-view-btn',
                        onclick: () => view(l.name).catch(PX.showError)}), ' ', del)));
    }
    if (!res.lists.length)
      body.append(el('tr', null, el('td', {colspan: 4, class: 'muted', text: 'No lists yet.'})));
  }

  /* Asks in the page's dialog (not confirm(): that blocks the page and automation) whether
   * to go ahead; resolves true for the OK button, false for Cancel or Escape. */
  function ask(title, text, okLabel) {
    const d = $('list-confirm');
    $('list-confirm-title').textContent = title;
    $('list-confirm-text').textContent = text;
    $('list-confirm-ok').textContent = okLabel;
    return new Promise((resolve) => {
      const done = (yes) => {
        $('list-confirm-ok').onclick = $('list-confirm-cancel').onclick = d.oncancel = null;
        if (d.open) d.close();
        resolve(yes);
      };
      $('list-confirm-ok').onclick = () => done(true);
      $('list-confirm-cancel').onclick = () => done(false);
      d.oncancel = () => done(false);
      d.showModal();
    });
  }

  /* Sends the list. Text without domains, or a name in use, needs the admin's say-so first:
   * the server answers 409 with field "replace" and says which, and nothing changes until
   * the list is sent again with replace=1. */
  async function send(name, text, replace) {
    const out = $('list-summary');
    out.replaceChildren();
    try {
      const s = await api('PUT', '/api/lists/' + encodeURIComponent(name) +
                          (replace ? '?replace=1' : ''), text, true);
      out.append(el('p', {class: 'flash ok', text: 'List ' + s.name + ': ' + fmtNum(s.added) +
        ' domains, ' + fmtNum(s.duplicates) + ' duplicates, ' + fmtNum(s.skipped) + ' lines skipped.'}));
      if (s.skipped)
        out.append(el('p', {class: 'muted', text: 'First skipped: line ' + s.first_skipped_line +
          ': ' + s.first_skipped_reason}));
      $('list-file').value = '';
      await load();
    } catch (e) {
      if (!(e.status === 409 && e.field === 'replace')) {
        out.append(el('p', {class: 'error-text', 'data-testid': 'list-error', text: e.message}));
        return;
      }
      /* The server's words, less the API parameter that the OK button stands for. */
      const why = e.message.replace(/: confirm with replace=1$/, '.');
      const empty = /no domains in the text|the text is empty/.test(why);
      const yes = await ask(empty ? 'Import a list without domains?' : 'Replace list ' + name + '?',
                            why, empty ? 'Import it empty' : 'Replace list ' + name);
      if (yes)
        await send(name, text, true);
      else
        out.append(el('p', {class: 'muted', 'data-testid': 'list-error', text: why}));
    }
  }

  function everyText(s) {
    if (s % 86400 === 0) return (s / 86400) + (s === 86400 ? ' day' : ' days');
    if (s % 3600 === 0) return (s / 3600) + (s === 3600 ? ' hour' : ' hours');
    if (s % 60 === 0) return (s / 60) + ' min';
    return s + ' s';
  }

  /* A refresh is answered at once (202) and fetched by proxyd's thread: the subscription
   * once its row no longer says "fetching" (null when it is gone, or after five minutes:
   * a download may take the list-fetch-timeout, and others asked for may come first). */
  async function untilFetched(name) {
    for (let waited = 0; waited < 300000; waited += 1000) {
      const s = (await api('GET', '/api/subscriptions')).subscriptions.find((x) => x.name === name);
      if (!s || !s.fetching) return s || null;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return null;
  }

  /* The subscriptions, each with how its last fetch went. */
  async function loadSubs() {
    const res = await api('GET', '/api/subscriptions');
    const body = $('subs');
    body.replaceChildren();
    for (const s of res.subscriptions) {
      const refresh = el('button', {type: 'button', class: 'small secondary', text: 'Refresh',
        'data-testid': 'sub-refresh', 'data-needs': 'operator', disabled: s.fetching, onclick: async () => {
          try {
            const asked = await api('POST', '/api/subscriptions/' + encodeURIComponent(s.name) + '/refresh');
            await loadSubs(); /* the row says "fetching…" */
            const r = await untilFetched(s.name);
            if (!r) PX.flash('List ' + s.name + ': no outcome yet (it is no longer subscribed, or still fetching)', true);
            else if (r.checked_ms === asked.checked_ms)
              PX.flash('List ' + s.name + ': the fetch ended but its outcome was not recorded (the database did not take it)', true);
            else if (r.error) PX.flash('List ' + r.name + ': ' + r.error, true);
            else PX.flash('List ' + r.name + ': ' + (r.status === 304 ? 'not modified, ' : '') +
                          fmtNum(r.entries) + ' entries');
            await Promise.all([load(), loadSubs()]);
          } catch (e) {
            PX.showError(e);
          }
        }});
      const del = el('span', {'data-needs': 'operator'}, PX.confirmButton('Unsubscribe', 'sub-delete', async () => {
        try {
          await api('DELETE', '/api/subscriptions/' + encodeURIComponent(s.name));
          PX.flash('List ' + s.name + ' is no longer fetched; the list stays');
          await loadSubs();
        } catch (e) {
          PX.showError(e);
        }
      }));
      body.append(el('tr', {'data-name': s.name, 'data-testid': 'sub-row'},
        el('td', {class: 'mono', text: s.name}),
        el('td', {class: 'mono url', 'data-testid': 'sub-row-url', text: s.url}),
        el('td', {class: 'time', text: everyText(s.every_s)}),
        el('td', {class: 'time', 'data-testid': 'sub-row-checked',
                  text: s.fetching ? 'fetching…' : s.checked_ms ? fmtTime(s.checked_ms) : 'not yet'}),
        el('td', {class: 'num', 'data-testid': 'sub-row-status', text: s.status ? String(s.status) : '–'}),
        el('td', {class: 'num', 'data-testid': 'sub-row-entries', text: s.entries >= 0 ? fmtNum(s.entries) : '–'}),
        el('td', {class: s.error ? 'error-text' : 'muted', 'data-testid': 'sub-row-error', text: s.error || 'none'}),
        el('td', {class: 'actions'}, refresh, ' ', del)));
    }
    if (!res.subscriptions.length)
      body.append(el('tr', null, el('td', {colspan: 8, class: 'muted', text: 'No subscriptions yet.'})));
  }

  /* Subscribing over a list that exists replaces it at every fetch: the server answers 409
   * with field "replace", and the page asks before sending it again with replace=1. */
  async function subscribe(ev, replace) {
    if (ev) ev.preventDefault();
    const name = $('sub-name').value.trim();
    const body = {url: $('sub-url').value.trim(), every_s: Number($('sub-every').value)};
    try {
      await api('PUT', '/api/subscriptions/' + encodeURIComponent(name) + (replace ? '?replace=1' : ''), body);
      PX.flash('Subscribed list ' + name + '; the first fetch follows within a second');
      $('sub-name').value = $('sub-url').value = '';
      await loadSubs();
      /* Show the first fetch's outcome once it is in. */
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 500));
        const all = (await api('GET', '/api/subscriptions')).subscriptions;
        const s = all.find((x) => x.name === name);
        if (!s || s.checked_ms) break;
      }
      await Promise.all([load(), loadSubs()]);
    } catch (e) {
      if (!(e.status === 409 && e.field === 'replace') || replace)
        return PX.showError(e);
      const why = e.message.replace(/: confirm with replace=1$/, '.');
      if (await ask('Subscribe over list ' + name + '?', why, 'Replace list ' + name + ' at each fetch'))
        await subscribe(null, true);
      else
        PX.flash(why, true);
    }
  }

  async function importList() {
    const name = $('list-name').value.trim();
    const file = $('list-file').files[0];
    const text = file ? await file.text() : $('list-text').value;
    await send(name, text, false);
  }

  PX.start(async () => {
    /* Once at a time: a second Import while the first is answered would ask to replace the
     * list the first just made. */
    PX.onSubmit($('list-form'), importList);
    $('list-filter').addEventListener('input', renderView);
    PX.onSubmit($('sub-form'), () => subscribe(null, false));
    await Promise.all([load(), loadSubs()]);
  });
})();
