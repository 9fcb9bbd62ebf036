/* proxyd admin: the live log (filters, also from the address: /log?host=ads.example&range=24h
 * is what the dashboard's links open; paging with "older", auto-refresh that polls
 * after=<newest id>, one-click block/allow of a row's domain, export under the filters). */
'use strict';

(() => {
  const {el, $, api, fmtTime, fmtBytes} = PX;
  const PAGE = 100;
  let newest = 0;       /* highest id shown: auto-refresh asks for rows after it */
  let nextBefore = null;
  let applied = {};  /* the filters of the rows shown: "older" and the poll page on these, not
                      * on what is typed in the fields and not yet searched */
  let timer = null;
  let shown = 0;
  let searches = 0;
  const view = PX.latest();  /* the filters' generation: an answer to an older one is dropped */
  const whyAsked = PX.latest();

  const FIELDS = ['client', 'user', 'host', 'q', 'decision', 'status', 'rule', 'node'];

  function filters() {
    const f = {};
    for (const k of FIELDS) f[k] = $('f-' + k).value.trim();
    for (const k of ['since', 'until']) {
      const v = $('f-' + k).value;
      f[k] = v ? String(new Date(v).getTime()) : '';
    }
    return f;
  }

  function url(r) {
    if (r.scheme === 'https' && !r.path) return r.host + ':' + r.port;
    const port = (r.scheme === 'http' && r.port === 80) ? '' : ':' + r.port;
    return r.scheme + '://' + (r.host_display || r.host) + port + r.path;
  }

  /* The rows' one-click actions on a domain. Each says what it did and offers to take it
   * back; a second click finds the rule the first added (the server adds nothing twice). */
  async function addDomainRule(action, host) {
    const res = await api('POST', '/api/' + action, {domain: host});
    const what = action === 'block' ? 'blocked' : 'allowed';
    if (res.existing) {
      PX.flash(host + ' is already ' + what + ' by rule ' + res.rule.id + ': ' + res.rule.text);
      return;
    }
    PX.flash('Added rule ' + res.rule.id + ': ' + res.rule.text, false, {
      label: 'Undo',
      action: async () => {
        await api('DELETE', '/api/rules/' + res.rule.id);
        PX.flash('Removed rule ' + res.rule.id + ': ' + res.rule.text);
      },
    });
  }

  async function unblock(host) {
    const res = await api('POST', '/api/unblock', {domain: host});
    PX.flash('Unblocked ' + host + ' (removed rule ' + res.deleted.join(', ') + ')', false, {
      label: 'Undo',
      action: async () => {
        const again = await api('POST', '/api/block', {domain: host});
        PX.flash('Blocked ' + host + ' again: rule ' + again.rule.id);
      },
    });
  }

  /* A button that runs fn once at a time: disabled until its answer is in. */
  function actionButton(label, cls, testid, fn) {
    /* Every row action adds or removes a rule: operators and admins only. */
    const b = el('button', {type: 'button', class: 'small ' + cls, 'data-testid': testid, text: label,
                            'data-needs': 'operator'});
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await fn();
      } catch (e) {
        PX.showError(e);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  }

  /* What a row offers: an allowed request (or one a report rule only marked) can be
   * blocked; a denied one allowed, or, when a plain "deny domain" of its own host denied it
   * (lasting or with an expiry, as Block domain and proxyctl block --until write it),
   * unblocked (that rule removed). */
  function actions(r) {
    if (!r.host) return [];
    if (r.decision === 'allow' || r.decision === 'report')
      return [actionButton('Block domain', 'danger', 'block-btn', () => addDomainRule('block', r.host))];
    if (r.decision !== 'deny') return [];
    const own = r.rule_text && /^deny\s+domain\s+(\S+)(\s+expires\s+\S+)?$/i.exec(r.rule_text.trim());
    if (own && own[1].replace(/\.$/, '').toLowerCase() === r.host)
      return [actionButton('Unblock', 'secondary', 'unblock-btn', () => unblock(r.host))];
    if (!r.rule_id) return [];
    return [actionButton('Allow domain', 'secondary', 'allow-btn', () => addDomainRule('allow', r.host))];
  }

  /* The rule that decided, by number and text (the text as the rule is now). */
  function ruleCell(r) {
    if (!r.rule_id) return el('td', {class: 'rule muted', 'data-testid': 'log-rule', text: r.decision === 'allow' ? '' : 'no rule'});
    const text = r.rule_text === null ? '(rule since deleted)' : r.rule_text;
    return el('td', {class: 'rule', 'data-testid': 'log-rule'},
      el('a', {href: '/log' + PX.query({rule: r.rule_id}), text: '#' + r.rule_id,
               title: 'every request rule ' + r.rule_id + ' decided', 'data-testid': 'log-rule-filter'}), ' ',
      el('a', {href: '/policy#rule-' + r.rule_id, class: 'mono', text: text,
               title: 'rule ' + r.rule_id + ' in the policy'}));
  }

  /* The version and rule that decided row id, as plain text (textContent). */
  async function why(id) {
    const w = await api('GET', '/api/logs/' + id + '/why');
    const lines = ['Request ' + w.id + ' at ' + fmtTime(w.time_ms) + ': ' + w.method + ' ' +
                   url(w) + ' from ' + w.client + (w.user ? ' (user ' + w.user + ')' : ''),
                   'Decision: ' + w.decision + ' (status ' + w.status + ')'];
    if (!w.version) {
      lines.push('Policy version: not recorded (logged before versions were kept)');
    } else {
      lines.push('Policy version ' + w.version.version + ', ' + fmtTime(w.version.time_ms) +
                 ' by ' + w.version.actor + ': ' + w.version.message);
      if (w.rule) lines.push('Rule ' + w.rule.id + ' (position ' + w.rule.position + '): ' + w.rule.text);
      else if (!w.rule_id) lines.push('No rule matched: the default action decided.');
      else lines.push('Rule ' + w.rule_id + ' is not in that version.');
      lines.push('Trace (first match wins):');
      for (const t of w.trace) lines.push('  ' + t.position + '  ' + t.result + '  ' + t.text);
      if (w.trace_truncated) lines.push('  ... more rules not shown');
    }
    return lines.join('\n');
  }

  /* The trace of row tr in a row of its own under it; a second click closes it. One is open
   * at a time. */
  async function toggleWhy(tr, id, button) {
    const open = $('why-row');
    const same = open && open.previousElementSibling === tr;
    if (open) open.remove();
    for (const b of document.querySelectorAll('[data-testid="why-btn"]')) b.setAttribute('aria-expanded', 'false');
    const asked = whyAsked.ask();
    if (same) return;
    const text = await why(id);
    /* Why clicked on another row meanwhile, or a search redrew the rows: one trace open,
     * the last one asked for. */
    if (whyAsked.stale(asked) || !tr.isConnected) return;
    const cols = tr.children.length;
    const row = el('tr', {id: 'why-row', class: 'why-row'},
      el('td', {colspan: cols}, el('pre', {class: 'result', id: 'why', 'data-testid': 'why', text})));
    tr.after(row);
    button.setAttribute('aria-expanded', 'true');
    row.scrollIntoView({block: 'nearest'});
  }

  function row(r) {
    return el('tr', {class: r.decision, 'data-id': r.id, 'data-testid': 'log-row'},
      el('td', {text: fmtTime(r.time_ms)}),
      el('td', {'data-testid': 'log-client'}, r.client,
        r.client_name ? el('span', {class: 'client-name', text: ' ' + r.client_name}) : null),
      el('td', {'data-testid': 'log-user', text: r.user}),
      el('td', {text: r.method}),
      el('td', {class: 'url', text: url(r),
                title: r.host_display && r.host_display !== r.host ? r.host : null}),
      el('td', {class: 'num', text: r.status}),
      el('td', {class: 'decision', text: r.decision}),
      ruleCell(r),
      el('td', {class: 'num', text: fmtBytes(r.bytes_down)}),
      el('td', {class: 'num', text: r.duration_ms}),
      el('td', {class: 'reason', 'data-testid': 'log-reason', text: r.error}),
      el('td', {class: 'actions'}, ...actions(r), ' ',
        el('button', {type: 'button', class: 'small secondary', 'data-testid': 'why-btn',
                      text: 'Why', 'aria-expanded': 'false', 'aria-label': 'Why: the rules that decided request ' + r.id,
                      onclick: (ev) => toggleWhy(ev.currentTarget.closest('tr'), r.id, ev.currentTarget)
                        .catch(PX.showError)})));
  }

  function count() {
    $('log-count').textContent = shown + (shown === 1 ? ' row shown' : ' rows shown');
    $('older').disabled = nextBefore === null;
  }

  /* A search answered after a later one (the page's first, unfiltered, can be slower than
   * the user's) would draw rows the filters do not ask for; so would a poll or "older"
   * sent under the filters it replaced. */
  async function search() {
    const mine = view.ask();
    $('older').disabled = true; /* not from the cursor of the rows being replaced */
    const asked = filters();
    const res = await api('GET', '/api/logs' + PX.query({...asked, limit: PAGE}));
    if (view.stale(mine)) return;
    applied = asked;
    const body = $('log-rows');
    body.replaceChildren();
    shown = 0;
    newest = 0;
    for (const r of res.rows) {
      body.append(row(r));
      newest = Math.max(newest, r.id);
      shown++;
    }
    nextBefore = res.next_before;
    count();
    body.dataset.searched = String(++searches);  /* a test tells this answer from the last */
  }

  async function older() {
    if (nextBefore === null) return;
    const mine = view.now();
    $('older').disabled = true; /* one page at a time */
    const res = await api('GET', '/api/logs' + PX.query({...applied, before: nextBefore, limit: PAGE}));
    if (view.stale(mine)) return;
    for (const r of res.rows) {
      $('log-rows').append(row(r));
      shown++;
    }
    nextBefore = res.next_before;
    count();
  }

  /* Rows after `newest` come oldest first: put each on top. */
  async function poll() {
    if (!searches) return; /* no search answered yet: no filters shown to poll on */
    const f = {...applied};
    delete f.until;
    const mine = view.now(), from = newest;
    const res = await api('GET', '/api/logs' + PX.query({...f, after: from, limit: 1000}));
    /* Rows drawn meanwhile (a search's answer, another poll's) may hold these already. */
    if (view.stale(mine) || newest !== from) return;
    const body = $('log-rows');
    for (const r of res.rows) {
      body.prepend(row(r));
      newest = Math.max(newest, r.id);
      shown++;
    }
    count();
  }

  function auto() {
    clearInterval(timer);
    timer = null;
    if ($('auto').checked)
      timer = setInterval(() => poll().catch((e) => { PX.showError(e); }), 2000);
  }

  /* The value a datetime-local input shows for ms, in local time. */
  function localInput(ms) {
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 16);
  }

  /* A preset fills From (and empties To): the dates stay visible and editable. */
  function useRange(name) {
    $('f-since').value = name ? localInput(Date.now() - PX.RANGES[name].ms) : '';
    $('f-until').value = '';
  }

  /* The filters in the address, so a reload, the back button or a shared link shows the
   * same rows. */
  function keepInUrl() {
    const u = new URL(location.href);
    for (const k of FIELDS) {
      const v = $('f-' + k).value.trim();
      if (v) u.searchParams.set(k, v);
      else u.searchParams.delete(k);
    }
    history.replaceState(null, '', u);
  }

  PX.start(async () => {
    const params = new URLSearchParams(location.search);
    for (const k of FIELDS) if (params.has(k)) $('f-' + k).value = params.get(k);
    const range = PX.rangeFromUrl('');
    useRange(range);
    const presets = PX.rangeButtons($('range'), range, (name) => {
      useRange(name);
      search().catch(PX.showError);
    }, true);
    /* Dates chosen by hand are no preset any more. */
    for (const id of ['f-since', 'f-until'])
      $(id).addEventListener('change', () => {
        for (const b of presets) b.setAttribute('aria-pressed', 'false');
        const u = new URL(location.href);
        u.searchParams.delete('range');
        history.replaceState(null, '', u);
      });
    $('log-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      PX.flash('');
      keepInUrl();
      search().catch(PX.showError);
    });
    $('older').addEventListener('click', () => older().catch(PX.showError));
    $('auto').addEventListener('change', auto);
    /* The server streams every matching row as a download: the page stays as it is. */
    for (const format of ['csv', 'json'])
      $('export-' + format).addEventListener('click', () => {
        window.location.href = '/api/logs/export' + PX.query({...filters(), format});
      });
    await search();
  });
})();
