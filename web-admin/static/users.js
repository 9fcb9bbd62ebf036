/* proxyd admin: proxy users and administrators (add, set password, role, delete), the
 * caller's own password (My account), and API tokens (make, list, revoke). */
'use strict';

(() => {
  const {el, $, api} = PX;

  const ROLES = ['admin', 'operator', 'viewer'];

  /* An admin's role, changed at once (the server ends that admin's sessions). */
  function roleCell(name, role) {
    const sel = el('select', {'data-testid': 'row-role', 'aria-label': 'role of ' + name,
                              disabled: PX.role !== 'admin'});
    for (const r of ROLES) sel.append(el('option', {value: r, selected: r === role, text: r}));
    sel.addEventListener('change', async () => {
      try {
        await api('PUT', '/api/admins/' + encodeURIComponent(name) + '/role', {role: sel.value});
        PX.flash(name + ' now has the role ' + sel.value);
      } catch (e) {
        sel.value = role;
        PX.showError(e);
      }
      await load();
    });
    return el('td', null, sel);
  }

  function table(kind, names, roles) {
    const body = $(kind === 'users' ? 'users' : 'admins');
    body.replaceChildren();
    for (const name of names) {
      const pw = el('input', {type: 'password', placeholder: 'new password', autocomplete: 'new-password',
                              'data-testid': 'row-password', 'aria-label': 'new password for ' + name});
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
      pw.setAttribute('aria-label', 'new password of ' + name);
      body.append(el('tr', {'data-name': name, 'data-testid': kind + '-row'},
        el('td', {class: 'mono', text: name}),
        roles ? roleCell(name, roles[name]) : null,
        el('td', {class: 'actions', 'data-needs': 'admin'}, pw, ' ', set, ' ', del)));
    }
    if (!names.length)
      body.append(el('tr', null, el('td', {colspan: roles ? 3 : 2, class: 'muted', text: 'none'})));
  }

  /* Never a secret here: the list has names and times only. */
  function tokenTable(tokens) {
    const body = $('tokens');
    body.replaceChildren();
    for (const t of tokens) {
      const revoke = PX.confirmButton('Revoke', 'token-revoke', async () => {
        try {
          await api('DELETE', '/api/tokens/' + encodeURIComponent(t.name) +
                    '?owner=' + encodeURIComponent(t.owner));
          PX.flash('Revoked token ' + t.name + ' of ' + t.owner);
          await load();
        } catch (e) {
          PX.showError(e);
        }
      });
      body.append(el('tr', {'data-name': t.name, 'data-testid': 'tokens-row'},
        el('td', {class: 'mono', text: t.name}),
        el('td', {class: 'mono', text: t.owner}),
        el('td', {text: PX.fmtTime(t.created_ms)}),
        el('td', {text: t.last_used_ms ? PX.fmtTime(t.last_used_ms) : 'never'}),
        el('td', {class: 'actions'}, revoke)));
    }
    if (!tokens.length)
      body.append(el('tr', null, el('td', {colspan: 5, class: 'muted', text: 'none'})));
  }

  async function load() {
    const [u, a, t] = await Promise.all([api('GET', '/api/users'), api('GET', '/api/admins'),
                                         api('GET', '/api/tokens')]);
    table('users', u.users);
    table('admins', a.admins, a.roles || {});
    tokenTable(t.tokens);
  }

  async function makeToken(ev) {
    ev.preventDefault();
    try {
      const t = await api('POST', '/api/tokens', {name: $('token-name').value.trim()});
      $('token-name').value = '';
      $('token-new-name').textContent = t.name;
      $('token-secret').value = t.token;
      $('token-new').hidden = false;
      $('token-secret').select();
      PX.flash('Made token ' + t.name + '; copy it now, it is not shown again');
      await load();
    } catch (e) {
      PX.showError(e);
    }
  }

  function form(id, kind) {
    /* Once at a time: a second Add before the answer would be refused (the name exists)
     * over the first one's success. */
    PX.onSubmit($(id + '-form'), async () => {
      const name = $(id + '-name').value.trim();
      try {
        /* create: an existing name is refused (409), never given a new password. */
        const body = {password: $(id + '-password').value, create: true};
        if (kind === 'admins') body.role = $('admin-role').value;
        await api('PUT', '/api/' + kind + '/' + encodeURIComponent(name), body);
        $(id + '-password').value = '';
        PX.flash('Added ' + name);
        await load();
      } catch (e) {
        PX.showError(e);
      }
    });
  }

  async function changeMine(ev) {
    ev.preventDefault();
    if ($('account-new').value !== $('account-repeat').value) {
      PX.flash('The two new passwords differ.', true);
      return;
    }
    try {
      await api('POST', '/api/account/password',
                {current: $('account-current').value, password: $('account-new').value});
      for (const k of ['current', 'new', 'repeat']) $('account-' + k).value = '';
      PX.flash('Your password is changed');
    } catch (e) {
      PX.showError(e);
    }
  }

  PX.start(async () => {
    PX.onSubmit($('account-form'), changeMine);
    PX.onSubmit($('token-form'), makeToken);
    form('user', 'users');
    form('admin', 'admins');
    await load();
  });
})();
