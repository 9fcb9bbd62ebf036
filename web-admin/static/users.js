/* proxyd admin: proxy users and administrators (add, set password, delete). */
'use strict';

(() => {
  const {el, $, api} = PX;

  function table(kind, names) {
    const body = $(kind === 'users' ? 'users' : 'admins');
    body.replaceChildren();
    for (const name of names) {
      const pw = el('input', {type: 'password', placeholder: 'new password', autocomplete: 'new-password',
                              'data-testid': 'row-password'});
      const set = el('button', {type: 'button', class: 'small secondary', text: 'Set password',
                                'data-testid': 'row-set-password'});
      set.addEventListener('click', async () => {
        try {
          await api('PUT', '/api/' + kind + '/' + encodeURIComponent(name), {password: pw.value});
          pw.value = '';
          PX.flash('Password of ' + name + ' changed');
        } catch (e) {
          PX.showError(e);
        }
      });
      const del = PX.confirmButton('Delete', 'row-delete', async () => {
        try {
          await api('DELETE', '/api/' + kind + '/' + encodeURIComponent(name));
          PX.flash('Deleted ' + name);
          await load();
        } catch (e) {
          PX.showError(e);
        }
      });
      body.append(el('tr', {'data-name': name, 'data-testid': kind + '-row'},
        el('td', {class: 'mono', text: name}),
        el('td', {class: 'actions'}, pw, ' ', set, ' ', del)));
    }
    if (!names.length)
      body.append(el('tr', null, el('td', {colspan: 2, class: 'muted', text: 'none'})));
  }

  async function load() {
    const [u, a] = await Promise.all([api('GET', '/api/users'), api('GET', '/api/admins')]);
    table('users', u.users);
    table('admins', a.admins);
  }

  function form(id, kind) {
    $(id + '-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = $(id + '-name').value.trim();
      try {
        /* create: an existing name is refused (409), never given a new password. */
        await api('PUT', '/api/' + kind + '/' + encodeURIComponent(name),
                  {password: $(id + '-password').value, create: true});
        $(id + '-password').value = '';
        PX.flash('Added ' + name);
        await load();
      } catch (e) {
        PX.showError(e);
      }
    });
  }

  PX.start(async () => {
    form('user', 'users');
    form('admin', 'admins');
    await load();
  });
})();
