/* proxyd admin: the audit trail, newest first, paged with "older", filtered by who and by
 * text in the action or detail. */
'use strict';

(() => {
  const {el, $, api, fmtTime} = PX;
  let nextBefore = null;

  async function page(before) {
    const res = await api('GET', '/api/audit' + PX.query({before, limit: 100,
      actor: $('audit-actor').value.trim(), q: $('audit-q').value.trim()}));
    for (const r of res.rows)
      $('audit').append(el('tr', {'data-testid': 'audit-row'},
        el('td', {text: fmtTime(r.time_ms)}),
        el('td', {text: r.actor}),
        el('td', {class: 'mono', text: r.action}),
        el('td', {class: 'url', text: r.detail})));
    nextBefore = res.next_before;
    $('audit-older').disabled = nextBefore === null || nextBefore === undefined;
  }

  PX.start(async () => {
    $('audit-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      $('audit').replaceChildren();
      page('').catch(PX.showError);
    });
    $('audit-older').addEventListener('click', () => page(nextBefore).catch(PX.showError));
    await page('');
  });
})();
