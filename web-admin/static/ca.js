/* proxyd admin: the local CA (what it is, its certificate cache, "Create CA" for admins) and
 * how to install it on clients. Every value shown goes in as text. */
'use strict';

(() => {
  const {el, $, api} = PX;

  async function load() {
    const ca = await api('GET', '/api/ca');
    const ok = ca.present && !ca.error;
    $('ca-none').hidden = ca.present;
    $('ca-info').hidden = !ok;
    $('ca-error').hidden = !ca.error;
    $('ca-error').textContent = ca.error ? 'The CA files cannot be used: ' + ca.error : '';
    const admin = PX.role === 'admin';
    $('ca-create').hidden = !admin;
    $('ca-create-note').hidden = admin;
    if (!ok) return;
    $('ca-subject').textContent = ca.subject;
    $('ca-sha256').textContent = ca.sha256;
    $('ca-valid').textContent = PX.fmtTime(ca.not_before_ms) + ' to ' + PX.fmtTime(ca.not_after_ms);
    const c = ca.cache || {entries: 0, bytes: 0, hits: 0, misses: 0, evictions: 0};
    $('ca-cache').replaceChildren(
      el('span', {'data-testid': 'ca-cache-entries', text: PX.fmtNum(c.entries)}),
      ' (' + PX.fmtBytes(c.bytes) + '); ' + PX.fmtNum(c.misses) + ' signed, ' +
      PX.fmtNum(c.hits) + ' from the cache, ' + PX.fmtNum(c.evictions) + ' pushed out');
  }

  PX.start(async () => {
    $('ca-create').addEventListener('click', async () => {
      try {
        const ca = await api('POST', '/api/ca', {});
        PX.flash('Created the CA ' + ca.subject + ': proxyd uses it within a second');
        await load();
      } catch (e) {
        PX.showError(e);
      }
    });
    await load();
  });
})();
