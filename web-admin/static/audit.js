/* proxyd admin: the audit trail, newest first, paged with "older", filtered by who and by
 * text in the action or detail. */
'use strict';

(() => {
  const {el, $, api, fmtTime} = PX;
  let nextBefore = null;
  /* The filters' generation: the page's first, unfiltered answer (or an "older" sent under
   * the last filters) arriving after a new search would add rows the filters leave out. */
  const view = PX.latest();

  /* The rows from the start (before ''), or the next page under the same filters. */
  async function page(before) {
    const mine = before ? view.now() : view.ask();
    /* One page at a time, and none from the cursor of a list being replaced. */
    $('audit-older').disabled = true;
    const res = await api('GET', '/api/audit' + PX.query({before, limit: 100,
      actor: $('audit-actor').value.trim(), q: $('audit-q').value.trim()}));
    if (view.stale(mine)) return;
    if (!before) $('audit').replaceChildren();
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
      page('').catch(PX.showError);
    });
    $('audit-older').addEventListener('click', () => page(nextBefore).catch(PX.showError));
    await page('');
  });
})();
