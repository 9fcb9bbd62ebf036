/* proxyd admin: settings stored in the database (every key the server knows), the PAC URL
 * for browsers, and proxyd's version and database size. */
'use strict';

(() => {
  const {el, $, api} = PX;
  let keys = [];

  async function load() {
    const res = await api('GET', '/api/settings');
    const box = $('settings-fields');
    box.replaceChildren();
    keys = Object.keys(res.settings);
    for (const k of keys) {
      box.append(el('div', {class: 'row'},
        el('label', null, k,
          el('input', {id: 'set-' + k, 'data-testid': 'setting-' + k, class: 'wide',
                       value: res.settings[k] === null ? '' : res.settings[k]})),
        el('span', {class: 'muted', text: (res.help && res.help[k]) || ''})));
    }
    /* Only a URL other machines can reach: this page's own (often 127.0.0.1) is not one. */
    const r = await fetch('/proxy.pac', {credentials: 'same-origin'});
    const pac = await r.text();
    $('pac-text').textContent = pac;
    const proxy = (/PROXY ([^"]+)"/.exec(pac) || [])[1] || '';
    $('pac-url').textContent = res.pac_url || '';
    $('pac-url').hidden = !res.pac_url;
    $('pac-none').hidden = !!res.pac_url;
    $('pac-proxy-addr').textContent = proxy;
    $('about-version').textContent = res.version;
    $('about-db').textContent = PX.fmtBytes(res.db_bytes);
  }

  PX.start(async () => {
    $('settings-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = {};
      for (const k of keys) body[k] = $('set-' + k).value.trim();
      try {
        await api('PUT', '/api/settings', body);
        PX.flash('Saved');
        await load();
      } catch (e) {
        PX.showError(e);
      }
    });
    await load();
  });
})();
