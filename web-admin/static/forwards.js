/* proxyd admin: port forwards (list, add, delete). Every value shown comes through PX.el as
 * text: a stored forward's fields are the admin's input. */
'use strict';

(() => {
  const {el, $, api} = PX;

  // The listen address, and under it the TLS word when one side speaks TLS (and the name a
  // tls-target forward verifies, when given).
  function listenCell(f) {
    const td = el('td', {class: 'mono'}, el('span', {text: f.listen, 'data-testid': 'forward-row-listen'}));
    if (f.tls) td.append(el('div', {class: 'muted', text: f.tls, 'data-testid': 'forward-row-tls'}));
    if (f.tls_name) {
      td.append(el('div', {class: 'muted', text: 'name ' + f.tls_name,
                           'data-testid': 'forward-row-tls-name'}));
    }
    return td;
  }

  function render(forwards) {
    const body = $('forwards');
    body.replaceChildren();
    for (const f of forwards) {
      // A config file's forward is not the API's to delete: the row says why instead.
      if (f.source === 'config') {
        body.append(el('tr', {'data-id': f.id, 'data-testid': 'forward-row'},
          el('td', {class: 'muted', text: 'config'}),
          listenCell(f),
          el('td', {class: 'mono', text: f.target, 'data-testid': 'forward-row-target'}),
          el('td', {class: f.clients ? 'mono' : 'muted', text: f.clients || 'any the policy allows',
                    'data-testid': 'forward-row-clients'}),
          el('td', {class: 'muted', text: 'config file'}),
          el('td', {class: 'muted', text: f.note, 'data-testid': 'forward-row-config'})));
        continue;
      }
      const del = el('span', {'data-needs': 'admin'}, PX.confirmButton('Delete', 'forward-delete', async () => {
        try {
          await api('DELETE', '/api/forwards/' + encodeURIComponent(f.id));
          PX.flash('Deleted forward ' + f.id + ' (' + f.listen + '): its listener is closed');
          await load();
        } catch (e) {
          PX.showError(e);
        }
      }));
      body.append(el('tr', {'data-id': f.id, 'data-testid': 'forward-row'},
        el('td', {class: 'num', text: f.id}),
        listenCell(f),
        el('td', {class: 'mono', text: f.target, 'data-testid': 'forward-row-target'}),
        el('td', {class: f.clients ? 'mono' : 'muted', text: f.clients || 'any the policy allows',
                  'data-testid': 'forward-row-clients'}),
        el('td', {text: PX.fmtTime(f.created_ms)}),
        el('td', {class: 'actions'}, del)));
    }
    if (!forwards.length)
      body.append(el('tr', null, el('td', {colspan: 6, class: 'muted', text: 'no forwards'})));
  }

  async function load() {
    render((await api('GET', '/api/forwards')).forwards);
  }

  PX.start(async () => {
    /* Once at a time: a second Add before the answer would be refused (the port is taken)
     * over the first one's success. */
    PX.onSubmit($('forward-form'), async () => {
      const body = {listen: $('forward-listen').value.trim(),
                    target: $('forward-target').value.trim(),
                    clients: $('forward-clients').value.trim(),
                    tls: $('forward-tls').value,
                    tls_name: $('forward-tls-name').value.trim()};
      try {
        const f = await api('POST', '/api/forwards', body);
        PX.flash('Forward ' + f.id + ' listening on ' + f.listen + ', to ' + f.target);
        $('forward-form').reset();
        await load();
      } catch (e) {
        PX.showError(e);
        const input = e.field && $('forward-' + e.field.replace('_', '-'));
        if (input) input.focus();
      }
    });
    await load();
  });
})();
