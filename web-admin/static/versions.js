/* proxyd admin: policy versions, newest first: who changed the policy, when and why; a
 * rule-level comparison of two versions, with the lists that differ; a rollback (itself a
 * new version). */
'use strict';

(() => {
  const {el, $, api, fmtTime} = PX;
  let nextBefore = null;
  let current = null;
  let picked = null; /* the first version picked for a comparison */
  /* The list (a rollback reloads it while "older" may be on its way) and the comparison
   * shown (the one asked for last, not the one answered last). */
  const listed = PX.latest();
  const compared = PX.latest();

  const MARK = {added: '+', removed: '-', changed: '~', moved: '\u2195'};

  function ruleCells(mark, kind, r, note) {
    return el('tr', {class: 'diff-' + kind, 'data-testid': 'diff-row', 'data-change': kind},
      el('td', {class: 'mono', text: mark}),
      el('td', {class: 'num', text: r.id}),
      el('td', {text: r.enabled ? 'on' : 'off'}),
      el('td', {class: 'mono url', text: r.text + (note ? '  (' + note + ')' : '')}),
      el('td', {text: r.comment}));
  }

  async function compare(from, to) {
    const asked = compared.ask();
    const res = await api('GET', '/api/versions/diff' + PX.query({from, to}));
    if (compared.stale(asked)) return;
    $('diff-title').textContent = 'Changes from version ' + from + ' to version ' + to;
    const body = $('diff');
    body.replaceChildren();
    for (const c of res.changes) {
      if (c.change === 'changed') {
        body.append(ruleCells('-', 'removed', c.before));
        body.append(ruleCells('+', 'added', c));
      } else if (c.change === 'moved') {
        body.append(ruleCells(MARK.moved, 'moved', c,
          'moved from position ' + c.from_position + ' to ' + c.position));
      } else {
        body.append(ruleCells(MARK[c.change] || '?', c.change, c));
      }
    }
    if (!res.changes.length)
      body.append(el('tr', {}, el('td', {colspan: 5, class: 'muted', text: 'The rules are the same.'})));
    /* The lists whose entries differ (null: one side is from before versions kept lists). */
    for (const l of res.lists || []) {
      const what = l.change === 'added' ? 'list ' + l.name + ' added (' + l.entries_to + ' entries)'
        : l.change === 'removed' ? 'list ' + l.name + ' removed (' + l.entries_from + ' entries)'
        : 'list ' + l.name + ': ' + l.entries_from + ' \u2192 ' + l.entries_to + ' entries (' +
          l.added + ' added, ' + l.removed + ' removed)';
      body.append(el('tr', {class: 'diff-' + l.change, 'data-testid': 'diff-list', 'data-change': l.change},
        el('td', {class: 'mono', text: MARK[l.change]}), el('td', {}), el('td', {}),
        el('td', {class: 'mono url', text: what}), el('td', {})));
    }
    if (res.lists && !res.lists.length)
      body.append(el('tr', {}, el('td', {colspan: 5, class: 'muted', text: 'The lists are the same.'})));
  }

  function pick(v) {
    if (picked === null || picked === v) {
      picked = v;
      PX.flash('Version ' + v + ' picked: click "Compare" on another version.');
      return;
    }
    const [a, b] = [Math.min(picked, v), Math.max(picked, v)];
    picked = null;
    PX.flash('');
    compare(a, b).catch(PX.showError);
  }

  /* Shows what the rollback changed: the version in force before it against the new one. */
  async function rollback(v) {
    const was = current;
    const message = $('v-message').value.trim();
    const res = await api('POST', '/api/versions/' + v + '/rollback' + PX.query({message}));
    /* lists is null for a version from before versions kept lists: the lists stayed. */
    const lists = res.lists === null ? ' (lists unchanged: that version did not keep them)'
      : res.lists === 0 ? ' with no lists' : ' with its ' + res.lists + (res.lists === 1 ? ' list' : ' lists');
    PX.flash('The rules of version ' + res.restored + ' are in force again' + lists +
             ': now version ' + res.version + '.');
    $('v-message').value = '';
    await reload();
    await compare(was, res.version);
  }

  function row(r, previous) {
    const actions = el('td', {class: 'actions'},
      el('button', {type: 'button', class: 'small secondary', 'data-testid': 'v-compare',
                    text: 'Compare', onclick: () => pick(r.version)}));
    if (previous !== null)
      actions.append(' ', el('button', {type: 'button', class: 'small secondary',
        'data-testid': 'v-changes', text: 'Changes',
        onclick: () => compare(previous, r.version).catch(PX.showError)}));
    if (r.version !== current)
      actions.append(' ', el('span', {'data-needs': 'admin'}, PX.confirmButton('Roll back to this',
        'v-rollback', () => rollback(r.version).catch(PX.showError))));
    return el('tr', {'data-testid': 'version-row', 'data-version': r.version},
      el('td', {class: 'num', text: r.version + (r.version === current ? ' (in force)' : '')}),
      el('td', {text: fmtTime(r.time_ms)}),
      el('td', {text: r.actor}),
      el('td', {class: 'num', text: r.rules}),
      el('td', {class: 'url', text: r.message}),
      actions);
  }

  /* The rows from the start (before ''), or the next page. */
  async function page(before) {
    const mine = before ? listed.now() : listed.ask();
    /* One page at a time, and none from the cursor of a list being replaced. */
    $('v-older').disabled = true;
    const res = await api('GET', '/api/versions' + PX.query({before, limit: 50}));
    if (listed.stale(mine)) return;
    if (!before) $('versions').replaceChildren();
    current = res.current;
    /* "Changes" compares with the version listed below it: the one before. */
    for (let i = 0; i < res.rows.length; i++) {
      const prev = i + 1 < res.rows.length ? res.rows[i + 1].version : null;
      $('versions').append(row(res.rows[i], prev));
    }
    nextBefore = res.next_before;
    $('v-older').disabled = nextBefore === null || nextBefore === undefined;
  }

  async function reload() {
    await page('');
  }

  PX.start(async () => {
    $('v-older').addEventListener('click', () => page(nextBefore).catch(PX.showError));
    await reload();
  });
})();
