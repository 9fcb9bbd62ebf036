/* proxyd admin: domain lists (import by upload or paste with its summary, view, delete). */
'use strict';

(() => {
  const {el, $, api, fmtNum, fmtTime} = PX;
  let viewEntries = [];

  function renderView() {
    const f = $('list-filter').value.trim().toLowerCase();
    const shown = f ? viewEntries.filter((d) => d.includes(f)) : viewEntries;
    const max = 2000;
    $('list-view').textContent = shown.slice(0, max).join('\n');
    $('list-view-count').textContent = fmtNum(shown.length) + ' entries' +
      (shown.length > max ? ' (first ' + max + ' shown)' : '');
  }

  async function view(name) {
    const res = await api('GET', '/api/lists/' + encodeURIComponent(name));
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
      const del = PX.confirmButton('Delete', 'list-delete', async () => {
        try {
          await api('DELETE', '/api/lists/' + encodeURIComponent(l.name));
          PX.flash('Deleted list ' + l.name);
          $('list-view-panel').hidden = true;
          await load();
        } catch (e) {
          PX.showError(e);
        }
      });
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

  /* Sends the list; replacing one that exists needs the admin's say-so first (the server
   * answers 409 with field "replace"). */
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
      const ask = e.status === 409 && e.field === 'replace';
      out.append(el('p', {class: 'error-text', 'data-testid': 'list-error',
        text: ask ? 'A list named ' + name + ' exists: importing again replaces its entries.'
                  : e.message}));
      if (ask)
        out.append(el('p', null, PX.confirmButton('Replace list ' + name, 'list-replace',
                                                  () => send(name, text, true))));
    }
  }

  async function importList(ev) {
    ev.preventDefault();
    const name = $('list-name').value.trim();
    const file = $('list-file').files[0];
    const text = file ? await file.text() : $('list-text').value;
    await send(name, text, false);
  }

  PX.start(async () => {
    $('list-form').addEventListener('submit', importList);
    $('list-filter').addEventListener('input', renderView);
    await load();
  });
})();
