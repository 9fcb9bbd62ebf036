/* proxyd admin: named groups of clients and users. A group is a `group NAME MEMBERS` line of
 * the policy (a rule that never matches), so it is added, edited and deleted through the rules
 * API: compiled before it is stored, versioned and audited like any rule. */
'use strict';

(() => {
  const {el, $, api} = PX;

  /* "group NAME MEMBERS" -> {name, members}; null for any other rule. */
  function parse(text) {
    const m = /^group\s+(\S+)\s+(.*)$/.exec(text);
    return m ? {name: m[1], members: m[2].trim()} : null;
  }

  function usedBy(rules, name) {
    const ref = new RegExp('(^|[\\s,])@' + name.replace(/[.]/g, '\\.') + '(?=$|[\\s,])');
    return rules.filter((r) => !parse(r.text) && ref.test(r.text)).map((r) => r.id);
  }

  function render(rules) {
    const body = $('groups');
    body.replaceChildren();
    const groups = rules.map((r) => ({rule: r, g: parse(r.text)})).filter((x) => x.g);
    for (const {rule, g} of groups) {
      const members = el('td', {class: 'mono', text: g.members, 'data-testid': 'group-members-cell'});
      const edit = el('button', {type: 'button', class: 'small secondary', text: 'Edit',
                                 'data-testid': 'group-edit'});
      edit.addEventListener('click', () => {
        const input = el('input', {class: 'wide mono', value: g.members, 'data-testid': 'group-edit-input',
                                   'aria-label': 'members of group ' + g.name});
        const err = el('div', {class: 'error-text', 'data-testid': 'group-edit-error'});
        const save = el('button', {type: 'button', class: 'small', text: 'Save', 'data-testid': 'group-save'});
        save.addEventListener('click', async () => {
          try {
            await api('PATCH', '/api/rules/' + rule.id, {text: 'group ' + g.name + ' ' + input.value.trim()});
            PX.flash('Group ' + g.name + ' changed');
            await load();
          } catch (e) {
            err.textContent = e.message;
          }
        });
        members.replaceChildren(input, ' ', save, err);
        input.focus();
      });
      const del = PX.confirmButton('Delete', 'group-delete', async () => {
        try {
          await api('DELETE', '/api/rules/' + rule.id);
          PX.flash('Group ' + g.name + ' deleted');
          await load();
        } catch (e) {
          PX.showError(e);
        }
      });
      const users = usedBy(rules, g.name);
      body.append(el('tr', {'data-testid': 'group-row', 'data-name': g.name, 'data-id': rule.id,
                            class: rule.enabled ? null : 'disabled'},
        el('td', {class: 'mono', text: g.name}),
        members,
        el('td', {class: 'num', 'data-testid': 'group-used-by', text: users.length ? users.join(', ') : 'none'}),
        el('td', {class: 'actions'}, edit, ' ', del)));
    }
    if (!groups.length)
      body.append(el('tr', null, el('td', {colspan: 4, class: 'muted', text: 'No groups yet.'})));
  }

  async function load() {
    render((await api('GET', '/api/rules')).rules);
  }

  PX.start(async () => {
    /* Once at a time: a second Add before the answer would send the group line twice. */
    PX.onSubmit($('group-form'), async () => {
      const name = $('group-name').value.trim();
      try {
        await api('POST', '/api/rules', {text: 'group ' + name + ' ' + $('group-members').value.trim(),
                                         before: 0});
        $('group-name').value = '';
        $('group-members').value = '';
        $('group-error').textContent = '';
        PX.flash('Added group ' + name);
        await load();
      } catch (e) {
        $('group-error').textContent = e.message;
      }
    });
    await load();
  });
})();
