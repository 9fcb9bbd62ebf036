/* proxyd admin: access requests sent from block pages, newest first; approve (an allow rule
 * for that client or user and host) or deny (with a reason). */
'use strict';

(() => {
  const {el, $, api, fmtTime} = PX;
  let nextBefore = null;
  /* What the list shows ("pending" or all): the first load answering after the box was
   * ticked, or an "older" sent before, would add rows of the other choice, or twice. */
  const view = PX.latest();

  async function decide(r, action, text, length) {
    const body = action === 'approve' ? {note: text, for: length} : {reason: text};
    const res = await api('POST', '/api/requests/' + r.id + '/' + action, body);
    await reload();
    await PX.refreshBadge();
    PX.flash(action === 'approve'
      ? 'Approved: rule ' + res.rule.id + ' (' + res.rule.text + ') is in force.'
      : 'Denied the request for ' + r.host + '.');
  }

  function decision(r) {
    if (r.status === 'pending') return r.status;
    let s = r.status + ' by ' + r.decided_by;
    if (r.granted_rule_id) s += ' (rule ' + r.granted_rule_id + ')';
    if (r.note) s += ': ' + r.note;
    return s;
  }

  function row(r) {
    const actions = el('td', {class: 'actions'});
    if (r.status === 'pending') {
      /* Approve and Deny act once: a second click would be answered "approved already". */
      const act = PX.oneAtATime((action, text, length) => decide(r, action, text, length));
      const text = el('input', {'data-testid': 'req-note', maxlength: 500, size: 16,
                                placeholder: 'note / reason', 'aria-label': 'note or reason for request ' + r.id});
      const length = el('select', {'data-testid': 'req-for', title: 'how long the rule lasts',
                                   'aria-label': 'how long the rule for request ' + r.id + ' lasts'},
        el('option', {value: '1h', text: '1 hour'}),
        el('option', {value: '1d', text: '1 day', selected: true}),
        el('option', {value: '1w', text: '1 week'}),
        el('option', {value: 'permanent', text: 'permanent'}));
      actions.append(el('span', {'data-needs': 'operator'}, text, ' ', length, ' ',
        el('button', {type: 'button', class: 'small', 'data-testid': 'req-approve',
                      text: 'Approve', onclick: () => act('approve', text.value.trim(),
                                                         length.value).catch(PX.showError)}),
        ' ',
        el('button', {type: 'button', class: 'small danger', 'data-testid': 'req-deny',
                      text: 'Deny', onclick: () => act('deny', text.value.trim())
                        .catch(PX.showError)})));
    }
    return el('tr', {'data-testid': 'request-row', 'data-id': r.id, class: 'req-' + r.status},
      el('td', {text: fmtTime(r.time_ms)}),
      el('td', {text: r.client}),
      el('td', {text: r.user}),
      el('td', {class: 'url', text: r.host + ':' + r.port}),
      el('td', {text: r.name}),
      el('td', {class: 'url reason', text: r.reason}),
      el('td', {'data-testid': 'req-status', text: decision(r)}),
      actions);
  }

  /* The rows from the start (before ''), or the next page of the same choice. */
  async function page(before) {
    const mine = before ? view.now() : view.ask();
    /* One page at a time, and none from the cursor of a list being replaced. */
    $('req-older').disabled = true;
    const status = $('req-all').checked ? 'all' : 'pending';
    const res = await api('GET', '/api/requests' + PX.query({status, before, limit: 100}));
    if (view.stale(mine)) return;
    if (!before) $('requests').replaceChildren();
    for (const r of res.rows) $('requests').append(row(r));
    nextBefore = res.next_before;
    $('req-older').disabled = nextBefore === null || nextBefore === undefined;
  }

  async function reload() {
    await page('');
  }

  PX.start(async () => {
    $('req-older').addEventListener('click', () => page(nextBefore).catch(PX.showError));
    $('req-all').addEventListener('change', () => reload().catch(PX.showError));
    await reload();
  });
})();
