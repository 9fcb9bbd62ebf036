/* proxyd admin: settings stored in the database (every key the server knows), and the
 * PAC URL for browsers. */
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
    const pacUrl = location.origin + '/proxy.pac';
    $('pac-url').textContent = pacUrl;
    const r = await fetch('/proxy.pac', {credentials: 'same-origin'});
    $('pac-text').textContent = await r.text();
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
