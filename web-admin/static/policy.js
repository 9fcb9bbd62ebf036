/* proxyd admin: the policy editor (rules table, add with live checking, edit, enable,
 * move, delete, test a URL, import/export of the policy file). */
'use strict';

(() => {
  const {el, $, api, fmtNum} = PX;
  let rules = [];
  /* Answers can cross: the rules as last asked for are drawn (two quick changes each reload
   * them), and the test result of the URL tested last. */
  const loaded = PX.latest();
  const tested = PX.latest();

  function editCell(rule, key, label) {
    /* A name in punycode reads in Unicode; the punycode is the tooltip and what is edited. */
    const shown = key === 'text' && rule.text_display ? rule.text_display : rule[key];
    const td = el('td', {class: key === 'text' ? 'text mono url' : 'comment', text: shown,
                         title: shown !== rule[key] ? rule[key] : null});
    const edit = el('button', {type: 'button', class: 'small secondary', text: 'Edit',
                               'data-testid': 'edit-' + key, title: 'Edit ' + label,
                               'data-needs': 'admin'});
    edit.addEventListener('click', () => {
      const input = el('input', {class: 'wide' + (key === 'text' ? ' mono' : ''), value: rule[key],
                                 'aria-label': label + ' of rule ' + rule.id,
                                 'data-testid': 'edit-' + key + '-input'});
      const err = el('div', {class: 'error-text', 'data-testid': 'edit-error'});
      const save = el('button', {type: 'button', class: 'small', text: 'Save', 'data-testid': 'edit-save'});
      const cancel = el('button', {type: 'button', class: 'small secondary', text: 'Cancel'});
      save.addEventListener('click', async () => {
        try {
          await api('PATCH', '/api/rules/' + rule.id, {[key]: input.value});
          await load();
        } catch (e) {
          err.textContent = e.message;
        }
      });
      cancel.addEventListener('click', () => render());
      /* Enter saves, Escape puts the row back as it was. */
      input.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') {
          ev.preventDefault();
          save.click();
        } else if (ev.key === 'Escape') {
          ev.preventDefault();
          render();
        }
      });
      input.setAttribute('aria-label', label);
      td.replaceChildren(input, ' ', save, ' ', cancel, err);
      input.focus();
    });
    td.append(' ', edit);
    return td;
  }

  /* Moves rule id one place up (-1) or down (+1) from where the rules last drawn have it.
   * Clicks queue up, each run from the order its predecessor's answer drew: an arrow clicked
   * twice before the first answer moves the rule two places, not once to where the page's
   * old order put it. */
  let moves = Promise.resolve();
  function move(id, step) {
    moves = moves.then(async () => {
      const i = rules.findIndex((x) => x.id === id);
      const j = i + step;
      if (i < 0 || j < 0 || j >= rules.length) return;
      const before = step < 0 ? rules[j].id : j + 1 < rules.length ? rules[j + 1].id : 0;
      const asked = loaded.ask();
      const res = await api('POST', '/api/rules/' + id + '/move', {before});
      if (loaded.stale(asked)) return;
      rules = res.rules;
      render();
    }).catch(PX.showError);
  }

  function render(highlight) {
    const body = $('rules');
    body.replaceChildren();
    rules.forEach((r, i) => {
      const on = el('input', {type: 'checkbox', 'data-testid': 'rule-enabled', checked: r.enabled,
                              title: 'enabled', 'aria-label': 'rule ' + r.id + ' on',
                              disabled: PX.role !== 'admin'});
      on.addEventListener('change', async () => {
        try {
          await api('PATCH', '/api/rules/' + r.id, {enabled: on.checked});
          await load();
        } catch (e) {
          on.checked = !on.checked;
          PX.showError(e);
        }
      });
      const up = el('button', {type: 'button', class: 'small secondary', text: '\u2191', title: 'move up',
                               'data-testid': 'rule-up', disabled: i === 0,
                               onclick: () => move(r.id, -1)});
      const down = el('button', {type: 'button', class: 'small secondary', text: '\u2193', title: 'move down',
                                 'data-testid': 'rule-down', disabled: i === rules.length - 1,
                                 onclick: () => move(r.id, +1)});
      const del = PX.confirmButton('Delete', 'rule-delete', async () => {
        try {
          await api('DELETE', '/api/rules/' + r.id);
          await load();
        } catch (e) {
          PX.showError(e);
        }
      });
      /* deny <-> report rewrites only the action word: the rule keeps its id and hits. */
      const action = r.text.split(/\s/, 1)[0];
      let mode = null;
      if (action === 'deny' || action === 'report') {
        const to = action === 'deny' ? 'report' : 'deny';
        mode = el('button', {type: 'button', class: 'small secondary',
                             text: to === 'report' ? 'Report only' : 'Enforce',
                             'data-testid': 'rule-' + (to === 'report' ? 'report' : 'enforce'),
                             title: to === 'report' ? 'Let matching requests through and mark them in the log'
                                                    : 'Deny matching requests again'});
        mode.addEventListener('click', async () => {
          try {
            await api('PATCH', '/api/rules/' + r.id, {text: to + r.text.slice(action.length)});
            await load(r.id);
          } catch (e) {
            PX.showError(e);
          }
        });
      }
      const cls = (r.enabled ? '' : 'disabled') + (action === 'report' ? ' report' : '') +
                  (r.expired ? ' expired' : '') + (r.id === highlight ? ' highlight' : '');
      /* The server says whether the rule's `expires` time has passed (it then never matches
       * and is deleted after the retention period). */
      const textCell = editCell(r, 'text', 'rule');
      if (r.expires !== null && r.expires !== undefined)
        textCell.append(' ', el('span', {class: 'badge' + (r.expired ? ' expired' : ''),
          'data-testid': r.expired ? 'rule-expired' : 'rule-expires',
          title: PX.fmtTime(r.expires),
          text: r.expired ? 'expired' : 'expires ' + PX.fmtTime(r.expires)}));
      body.append(el('tr', {class: cls.trim() || null, id: 'rule-' + r.id, 'data-id': r.id,
                            'data-testid': 'rule-row'},
        el('td', {class: 'num', text: r.position}),
        el('td', {class: 'num', text: r.id}),
        el('td', null, on),
        textCell,
        editCell(r, 'comment', 'comment'),
        el('td', {class: 'num'}, el('a', {href: '/log?rule=' + r.id, text: fmtNum(r.hits),
                                           'data-testid': 'rule-hits',
                                           title: 'the logged requests rule ' + r.id + ' decided'}),
          r.undecided ? el('br') : null,
          r.undecided ? el('span', {class: 'undecided', 'data-testid': 'rule-undecided',
            title: 'Requests its regex could not decide (match limit): a deny rule denied them, ' +
                   'an allow rule did not allow them. Simplify the regex.',
            text: fmtNum(r.undecided) + ' undecided'}) : null),
        el('td', {class: 'actions', 'data-needs': 'admin'}, up, ' ', down, ' ', mode, mode ? ' ' : null, del)));
    });
    if (!rules.length)
      body.append(el('tr', null, el('td', {colspan: 7, class: 'muted',
        text: 'No rules: the default action decides (allow for local clients).'})));
  }

  async function load(highlight) {
    const asked = loaded.ask();
    const res = await api('GET', '/api/rules');
    if (loaded.stale(asked)) return;
    rules = res.rules;
    render(highlight);
  }

  /* Live check of the rule being typed, against the same parser the server uses. "Add" is
   * enabled only for text the check has passed. */
  let checkTimer = null;
  function liveCheck() {
    clearTimeout(checkTimer);
    const text = $('rule-text').value.trim();
    $('rule-add').disabled = true;
    if (!text) { $('rule-error').textContent = ''; return; }
    checkTimer = setTimeout(async () => {
      try {
        await PX.check('/api/rules/check', {text});
        if ($('rule-text').value.trim() !== text) return;
        $('rule-error').textContent = '';
        $('rule-add').disabled = false;
      } catch (e) {
        if ($('rule-text').value.trim() === text) $('rule-error').textContent = e.message;
      }
    }, 250);
  }

  /* "expires <UTC time>" for the duration field, or '' when it is empty. */
  function expiresClause() {
    const n = Number($('rule-for').value);
    if (!$('rule-for').value.trim() || !(n > 0)) return '';
    const at = new Date(Date.now() + n * Number($('rule-for-unit').value) * 1000);
    return ' expires ' + at.toISOString().slice(0, 19) + 'Z';
  }

  async function add(ev) {
    ev.preventDefault();
    try {
      const res = await api('POST', '/api/rules', {
        text: $('rule-text').value.trim() + expiresClause(),
        comment: $('rule-comment').value,
        before: Number($('rule-where').value),
      });
      $('rule-text').value = '';
      $('rule-comment').value = '';
      $('rule-for').value = '';
      $('rule-error').textContent = '';
      $('rule-add').disabled = true;
      PX.flash('Added rule ' + res.rule.id);
      await load(res.rule.id);
    } catch (e) {
      $('rule-error').textContent = e.message;
    }
  }

  async function test(ev) {
    ev.preventDefault();
    const body = {url: $('test-url').value.trim()};
    for (const k of ['client', 'user', 'method']) {
      const v = $('test-' + k).value.trim();
      if (v) body[k] = v;
    }
    const out = $('test-result');
    const asked = tested.ask();
    try {
      const res = await api('POST', '/api/test', body);
      if (tested.stale(asked)) return;
      out.textContent = res.action.toUpperCase() + ' by ' +
        (res.rule_id ? 'rule ' + res.rule_id + (res.rule ? ' (' + res.rule.text + ')' : '') : 'the default action') +
        (res.report_rule_id ? '\nrule ' + res.report_rule_id + ' (report) would deny it' : '') +
        '\n' + res.reason;
      out.setAttribute('data-action', res.action);
      out.setAttribute('data-rule-id', String(res.rule_id));
      render(res.rule_id);
    } catch (e) {
      if (tested.stale(asked)) return;
      out.textContent = e.message;
      out.removeAttribute('data-action');
    }
  }

  async function exportPolicy() {
    $('policy-text').value = await api('GET', '/api/policy');
  }

  function download() {
    const blob = new Blob([$('policy-text').value], {type: 'text/plain'});
    const a = el('a', {href: URL.createObjectURL(blob), download: 'policy.txt'});
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  async function importPolicy() {
    const out = $('import-result');
    out.textContent = '';
    out.className = '';
    try {
      const res = await api('PUT', '/api/policy', $('policy-text').value, true);
      out.textContent = 'Imported ' + res.rules + ' rules.';
      out.className = 'flash ok';
      await load();
    } catch (e) {
      out.textContent = e.message;
      out.className = 'error-text';
    }
  }

  PX.start(async () => {
    /* Once at a time: Add clicked twice (or Enter pressed twice) before the answer would add
     * the same rule twice (the server takes duplicates: rules are matched in order). */
    PX.onSubmit($('add-rule'), add);
    $('rule-text').addEventListener('input', liveCheck);
    $('rule-add').disabled = true;
    $('test-form').addEventListener('submit', test);
    $('export').addEventListener('click', () => exportPolicy().catch(PX.showError));
    $('download').addEventListener('click', download);
    $('import').addEventListener('click', importPolicy);
    $('policy-file').addEventListener('change', async () => {
      const f = $('policy-file').files[0];
      if (f) $('policy-text').value = await f.text();
    });
    const m = /^#rule-(\d+)$/.exec(location.hash);
    await load(m ? Number(m[1]) : undefined);
    if (m && $('rule-' + m[1])) $('rule-' + m[1]).scrollIntoView({block: 'center'});
  });
})();
