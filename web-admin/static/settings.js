/* proxyd admin: the settings an admin changes on the running proxy, as a form grouped the
 * way the server's table groups them (GET /api/settings "fields"), each with its help and
 * where its value comes from; the PAC URL for browsers; proxyd's version and database size. */
'use strict';

(() => {
  const {el, $, api} = PX;
  let fields = [];
  let logoData = null; /* a chosen file as a data: URI, until saved */

  /* Where the value in force comes from, in words. */
  function source(f) {
    const shown = (v) => '“' + v + '”';
    if (f.value !== null) {
      if (!f.config_option) return 'Set here. Clear it for the default.';
      if (f.config_value === '')
        return 'Set here (the config file has no ' + f.config_option + '). Clear it for the default.';
      return 'Set here: overrides the config file’s ' + f.config_option + ' (' +
        shown(f.config_value) + '). Clear it to go back to that.';
    }
    if (!f.config_option || f.config_value === '')
      return 'Not set here' + (f.config_option ? ' nor in the config file (' + f.config_option + ')' : '') +
        ': the default applies' + (f.in_force === '' ? '.' : ', ' + shown(f.in_force) + '.');
    return 'Not set here: the config file’s ' + f.config_option + ' is in force: ' +
      shown(f.config_value) + '.';
  }

  function control(f, id, describedby) {
    const common = {id, 'data-testid': 'setting-' + f.key, name: f.key, 'aria-describedby': describedby};
    const v = f.value === null ? '' : f.value;
    if (f.kind === 'switch') {
      return el('select', common,
        el('option', {value: '', text: f.config_option ? 'As in the config file' : 'Default'}),
        el('option', {value: 'on', text: 'on', selected: v === 'on'}),
        el('option', {value: 'off', text: 'off', selected: v === 'off'}));
    }
    if (f.kind === 'number')
      return el('input', {...common, type: 'number', min: '0', step: '1', inputmode: 'numeric', value: v});
    if (f.kind === 'networks') {
      const t = el('textarea', {...common, rows: '4', spellcheck: 'false'});
      t.value = v.split(',').join('\n');
      return t;
    }
    if (f.kind === 'image') {
      return el('input', {...common, type: 'file', accept: 'image/png,image/jpeg,image/svg+xml'});
    }
    return el('input', {...common, type: 'text', value: v, maxlength: f.key === 'block_contact' ? '200' : null,
                        spellcheck: 'false'});
  }

  function render() {
    const box = $('settings-fields');
    box.replaceChildren();
    const groups = new Map();
    for (const f of fields) {
      if (!groups.has(f.group)) {
        const fs = el('fieldset', {class: 'settings-group', 'data-testid': 'settings-group'},
          el('legend', {text: f.group}));
        groups.set(f.group, fs);
        box.append(fs);
      }
      const id = 'set-' + f.key;
      const help = el('p', {class: 'help muted', id: id + '-help', text: f.help});
      const src = el('p', {class: 'source muted', id: id + '-source', 'data-testid': 'source-' + f.key,
                           text: source(f)});
      const error = el('p', {class: 'field-error error-text', id: id + '-error', 'data-testid': 'error-' + f.key,
                             hidden: true});
      const div = el('div', {class: 'setting', 'data-testid': 'field-' + f.key},
        el('label', {for: id, class: 'field-label', text: f.label}));
      if (f.kind === 'image') {
        const img = el('img', {class: 'logo-preview', id: id + '-preview', 'data-testid': 'logo-preview',
                               alt: 'The block pages’ logo', src: f.value || null, hidden: !f.value});
        const remove = el('label', {class: 'inline'},
          el('input', {type: 'checkbox', id: id + '-remove', 'data-testid': 'logo-remove', disabled: !f.value}),
          'Remove the logo');
        const input = control(f, id, `${id}-help ${id}-source ${id}-error`);
        input.addEventListener('change', () => readLogo(input, img));
        div.append(img, input, remove);
      } else {
        div.append(control(f, id, `${id}-help ${id}-source ${id}-error`));
      }
      div.append(help, src, error);
      groups.get(f.group).append(div);
    }
  }

  function readLogo(input, img) {
    logoData = null;
    const file = input.files && input.files[0];
    if (!file) return;
    const r = new FileReader();
    r.onload = () => {
      logoData = String(r.result);
      img.src = logoData;
      img.hidden = false;
    };
    r.readAsDataURL(file);
  }

  function clearErrors() {
    for (const f of fields) {
      const c = $('set-' + f.key);
      if (c) c.removeAttribute('aria-invalid');
      const e = $('set-' + f.key + '-error');
      if (e) { e.hidden = true; e.textContent = ''; }
    }
  }

  function body() {
    const out = {};
    for (const f of fields) {
      const c = $('set-' + f.key);
      if (f.kind === 'image') {
        if ($('set-' + f.key + '-remove').checked) out[f.key] = '';
        else if (logoData) out[f.key] = logoData;
      } else if (f.kind === 'networks') {
        out[f.key] = c.value.split(/[\s,]+/).filter(Boolean).join(',');
      } else {
        out[f.key] = c.value.trim();
      }
    }
    return out;
  }

  async function load(res) {
    res = res || await api('GET', '/api/settings');
    fields = res.fields;
    logoData = null;
    render();
    /* Only a URL other machines can reach: this page's own (often 127.0.0.1) is not one. */
    const r = await fetch('/proxy.pac', {credentials: 'same-origin'});
    const pac = await r.text();
    $('pac-text').textContent = pac;
    const proxy = (/PROXY ([^"]+)"/.exec(pac) || /HTTPS ([^"]+)"/.exec(pac) || [])[1] || '';
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
      clearErrors();
      try {
        const res = await api('PUT', '/api/settings', body());
        await load(res);
        PX.flash(['Saved.', ...(res.warnings || [])].join(' '));
      } catch (e) {
        const c = e.field && $('set-' + e.field);
        if (c) {
          c.setAttribute('aria-invalid', 'true');
          const msg = $('set-' + e.field + '-error');
          msg.textContent = e.message;
          msg.hidden = false;
          c.focus();
        }
        PX.showError(e);
      }
    });
    await load();
  });
})();
