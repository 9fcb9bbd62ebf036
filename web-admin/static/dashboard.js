/* proxyd admin: the dashboard (cards, the chart, top lists that open the log filtered to
 * their entry, who visited a domain, the proxyd nodes on the database with lagging ones
 * marked, the proxy's counters under Diagnostics) for a chosen time range and for every
 * node or one (the address keeps both), and what to do when no browser uses the proxy yet. */
'use strict';

(() => {
  const {el, $, api, fmtNum, fmtBytes, fmtTime} = PX;

  let range = PX.rangeFromUrl('24h');
  let node = new URLSearchParams(location.search).get('node') || '';  /* '': every node */
  let drawn = null;  /* {points, bucket}: the chart last drawn, to redraw at a new width */
  let visitorsHost = null;
  /* Answers can cross: what the user chose last (a range, a node, the host of "Who") is
   * what is drawn, not what answered last. */
  const loaded = PX.latest();
  const visitorsAsked = PX.latest();
  const nodesAsked = PX.latest();

  /* The log page showing what one entry of a top list counted, in the same time range. */
  function logLink(params, text, title) {
    return el('a', {href: '/log' + PX.query({...params, node, range}), text, title,
                    'data-testid': 'top-link'});
  }

  function fillTop(id, rows, by) {
    const body = $(id);
    const cols = by === 'host' ? 4 : 3;
    body.replaceChildren();
    if (!rows.length) body.append(el('tr', null, el('td', {colspan: cols, class: 'muted', text: 'none in this time range'})));
    for (const r of rows) {
      const blockedOnly = id === 'top-blocked' || id === 'top-blocked-clients';
      const params = by === 'host' ? {host: r.key} : {client: r.key};
      if (blockedOnly) params.decision = 'deny';
      if (id === 'top-reported') params.decision = 'report';
      const shown = (r.key_display || r.key) + (r.key_name ? ' ' + r.key_name : '');
      const tr = el('tr', null,
        el('td', {class: 'url', 'data-label': by === 'host' ? 'Domain' : 'Client'},
          logLink(params, shown, r.key_display !== r.key ? r.key : null)),
        el('td', {class: 'num', 'data-label': 'Requests', text: fmtNum(r.requests)}),
        el('td', {class: 'num', 'data-label': 'Traffic', text: fmtBytes(r.bytes)}));
      if (by === 'host')
        tr.append(el('td', {class: 'actions'},
          el('button', {type: 'button', class: 'small secondary', 'data-testid': 'who-btn',
                        text: 'Who', 'aria-label': 'Who visited ' + (r.key_display || r.key),
                        onclick: () => showVisitors(r.key).catch(PX.showError)})));
      body.append(tr);
    }
  }

  function visitorRows(id, rows, key) {
    const body = $(id);
    body.replaceChildren();
    if (!rows.length) body.append(el('tr', null, el('td', {colspan: 5, class: 'muted', text: 'none'})));
    for (const r of rows) {
      let who;
      if (key === 'client') {
        who = logLink({host: visitorsHost, client: r.client},
                      r.client + (r.client_name ? ' ' + r.client_name : ''));
      } else {
        who = r.user ? logLink({host: visitorsHost, user: r.user}, r.user)
                     : el('span', {class: 'muted', text: '(no proxy user)'});
      }
      body.append(el('tr', {'data-testid': 'visitor-row'},
        el('td', {'data-label': key === 'client' ? 'Client' : 'User'}, who),
        el('td', {class: 'num', 'data-label': 'Requests', text: fmtNum(r.requests)}),
        el('td', {class: 'num', 'data-label': 'Blocked', text: fmtNum(r.blocked)}),
        el('td', {class: 'time', 'data-label': 'First', text: fmtTime(r.first_ms)}),
        el('td', {class: 'time', 'data-label': 'Last', text: fmtTime(r.last_ms)})));
    }
  }

  async function showVisitors(host) {
    const asked = visitorsAsked.ask();
    const [r, n] = [range, node];
    const {since, until} = PX.rangeBounds(r);
    const v = await api('GET', '/api/visitors' + PX.query({host, since, until, node: n}));
    if (visitorsAsked.stale(asked)) return;
    visitorsHost = v.host;
    $('visitors-title').textContent = 'Who visited ' + v.host_display + ' (' + PX.RANGES[r].label +
                                      (n ? ', node ' + n : '') + ')';
    $('visitors-hint').hidden = true;
    visitorRows('visitors-clients', v.clients, 'client');
    visitorRows('visitors-users', v.users, 'user');
    $('visitors').hidden = false;
    $('visitors-panel').scrollIntoView({block: 'nearest'});
  }

  /* A bucket's time as the axis shows it: the hour in a day, the date over longer ranges. */
  function axisLabel(t, bucket) {
    const s = fmtTime(t);
    return bucket >= 3600 * 1000 ? s.slice(5, 10) : s.slice(11, 16);
  }

  function tipText(p, bucket) {
    const end = fmtTime(p.t + bucket);
    return fmtTime(p.t).slice(0, 16) + ' - ' + end.slice(bucket >= 24 * 3600 * 1000 ? 0 : 11, 16) +
           ': ' + fmtNum(p.requests) + ' requests, ' + fmtNum(p.blocked) + ' blocked';
  }

  /* Bars of allowed requests with the blocked ones on top, one per bucket, as wide as the
   * chart is on screen (a fixed viewBox squeezed the labels on a phone). Hovering or
   * focusing the chart and moving along it shows the bucket's time and counts. */
  function drawChart(points, bucket) {
    const svg = $('chart');
    const H = 220, L = 52, B = 24, T = 10, R = 8;
    const W = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 800);
    drawn = {points, bucket};
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.replaceChildren();
    const max = Math.max(1, ...points.map((p) => p.requests));
    const n = Math.max(points.length, 1);
    const slot = (W - L - R) / n;
    const y = (v) => (H - B) - (H - T - B) * v / max;
    svg.append(el('line', {class: 'grid', x1: L, y1: T, x2: W - R, y2: T}));
    svg.append(el('text', {x: L - 6, y: T + 4, 'text-anchor': 'end', text: fmtNum(max)}));
    /* The middle line at a whole count, where that count is: half of 1 rounded read "1"
     * halfway up an empty chart, under the top's "1". */
    const mid = Math.floor(max / 2);
    if (mid > 0) {
      svg.append(el('line', {class: 'grid', x1: L, y1: y(mid), x2: W - R, y2: y(mid)}));
      svg.append(el('text', {x: L - 6, y: y(mid) + 4, 'text-anchor': 'end', text: fmtNum(mid)}));
    }
    svg.append(el('text', {x: L - 6, y: H - B + 4, 'text-anchor': 'end', text: '0'}));
    const bars = el('g');
    points.forEach((p, i) => {
      const x = L + slot * i;
      const w = Math.max(1, slot - (slot > 4 ? 1 : 0));
      const allowed = p.requests - p.blocked;
      if (allowed > 0)
        bars.append(el('rect', {class: 'allowed', x: x.toFixed(1), width: w.toFixed(1),
                                y: y(allowed).toFixed(1), height: (H - B - y(allowed)).toFixed(1)}));
      if (p.blocked > 0)
        bars.append(el('rect', {class: 'blocked', x: x.toFixed(1), width: w.toFixed(1),
                                y: y(p.requests).toFixed(1), height: (y(allowed) - y(p.requests)).toFixed(1)}));
    });
    svg.append(bars);
    svg.append(el('line', {class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B}));
    /* About one label per 90 px, on whole buckets. */
    const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor((W - L - R) / 90))));
    for (let i = 0; i < points.length; i += every)
      svg.append(el('text', {x: (L + slot * i).toFixed(1), y: H - 6, text: axisLabel(points[i].t, bucket)}));
    const cursor = el('rect', {class: 'cursor', x: 0, y: T, width: Math.max(1, slot), height: H - T - B, visibility: 'hidden'});
    svg.append(cursor);
    svg.setAttribute('data-points', String(points.length));
    svg.setAttribute('data-first', points.length ? String(points[0].t) : '');
    svg.setAttribute('aria-label', 'Requests per ' + PX.fmtDuration(bucket) + ', ' +
                     PX.RANGES[range].label + ': ' + fmtNum(points.reduce((a, p) => a + p.requests, 0)) +
                     ' requests, ' + fmtNum(points.reduce((a, p) => a + p.blocked, 0)) + ' blocked');

    const tip = $('chart-tip');
    const show = (i) => {
      if (i < 0 || i >= points.length) { tip.hidden = true; cursor.setAttribute('visibility', 'hidden'); return; }
      cursor.setAttribute('x', (L + slot * i).toFixed(1));
      cursor.setAttribute('visibility', 'visible');
      tip.textContent = tipText(points[i], bucket);
      tip.hidden = false;
      const left = Math.min(Math.max(0, L + slot * i - tip.offsetWidth / 2), W - tip.offsetWidth);
      tip.style.left = left + 'px';
      svg.setAttribute('data-tip-index', String(i));
    };
    svg.onmousemove = (ev) => {
      const box = svg.getBoundingClientRect();
      show(Math.floor((ev.clientX - box.left - L) / slot));
    };
    svg.onmouseleave = () => show(-1);
    /* The keyboard reaches every bucket too: arrows move along the chart. */
    let at = points.length - 1;
    svg.setAttribute('tabindex', '0');
    svg.onfocus = () => show(at);
    svg.onblur = () => show(-1);
    svg.onkeydown = (ev) => {
      if (ev.key === 'ArrowLeft') at = Math.max(0, at - 1);
      else if (ev.key === 'ArrowRight') at = Math.min(points.length - 1, at + 1);
      else if (ev.key === 'Home') at = 0;
      else if (ev.key === 'End') at = points.length - 1;
      else if (ev.key === 'Escape') { show(-1); return; }
      else return;
      ev.preventDefault();
      show(at);
    };
  }

  /* The proxy's counters with what each counts, in units people read. */
  function diagnostics(proxy, help, answering) {
    /* Counters live in each node's memory: in a fleet, say whose these are. */
    $('diagnostics-of').textContent = answering
      ? 'node ' + answering + "'s own counters since it started (the node serving this page)"
      : "the proxy's own counters since it started";
    const ps = $('proxy-stats');
    ps.replaceChildren();
    if (!proxy) {
      ps.append(el('tr', null, el('td', {class: 'muted', text: 'no counters from the proxy'})));
      return;
    }
    const shown = (k, v) => {
      if (k === 'started_ms') return fmtTime(v) + ' (up ' + PX.fmtDuration(Date.now() - v) + ')';
      if (k.startsWith('bytes')) return fmtBytes(v);
      if (k.endsWith('_seconds')) return PX.fmtDuration(v * 1000);
      if (typeof v === 'boolean') return v ? 'yes' : 'no';
      if (typeof v === 'number') return fmtNum(v);
      return String(v);
    };
    /* value: a text, or [[label, count], ...] for a counter by reason (one line each). */
    const add = (key, what, value) =>
      ps.append(el('tr', {'data-key': key},
        el('th', {scope: 'row'}, what || key, el('span', {class: 'mono muted key', text: key})),
        Array.isArray(value)
          ? el('td', {class: 'group'}, ...(value.length ? value : [['none', '']]).map(([a, b]) =>
              el('div', null, el('span', {class: 'mono', text: a}), ' ', el('b', {text: b}))))
          : el('td', {class: 'num', text: value})));
    const walk = (obj, hobj, prefix) => {
      for (const [k, v] of Object.entries(obj || {})) {
        const h = hobj && hobj[k];
        if (v && typeof v === 'object' && 'count' in v && 'sum_ns' in v) {
          const avg = v.count ? PX.fmtDuration(v.sum_ns / v.count / 1e6) : '-';
          add(prefix + k, h, fmtNum(v.count) + ', on average ' + avg);
        } else if (v && typeof v === 'object') {
          const sub = Object.entries(v);
          if (typeof h === 'object') { walk(v, h, prefix + k + '.'); continue; }
          add(prefix + k, h, sub.map(([a, b]) => [a, fmtNum(b)]));
        } else {
          add(prefix + k, typeof h === 'string' ? h : null, shown(k, v));
        }
      }
    };
    walk(proxy, help, '');
  }

  /* No requests in the range: how browsers get here (the same URL Settings offers). stale()
   * says whether the load that asked has been replaced meanwhile. */
  async function emptyState(show, stale) {
    if (!show || $('empty').dataset.filled) {
      $('empty').hidden = !show;
      return;
    }
    const res = await api('GET', '/api/settings');
    const r = await fetch('/proxy.pac', {credentials: 'same-origin'});
    const pac = await r.text();
    if (stale()) return;
    $('empty-pac').textContent = res.pac_url || '';
    $('empty-pac').hidden = !res.pac_url;
    $('empty-pac-none').hidden = !!res.pac_url;
    $('empty-proxy').textContent = (/PROXY ([^";]+)/.exec(pac) || [])[1] || '';
    $('empty').dataset.filled = '1';
    $('empty').hidden = false;  /* shown once filled: half a set-up note would mislead */
  }

  async function load() {
    const asked = loaded.ask();
    const {since, until, bucket} = PX.rangeBounds(range);
    const top = (kind) => api('GET', '/api/top' + PX.query({kind, since, until, node, limit: 10}));
    const [stats, series, hosts, clients, blocked, blockedClients, reported, lists] = await Promise.all([
      api('GET', '/api/stats' + PX.query({since, until, node})),
      api('GET', '/api/series' + PX.query({since, until, bucket, node})),
      top('hosts'), top('clients'), top('blocked'), top('blocked_clients'), top('reported'),
      api('GET', '/api/lists'),
    ]);
    if (loaded.stale(asked)) return;  /* a newer range or node was chosen meanwhile */
    const t = stats.totals;
    $('card-requests').textContent = fmtNum(t.requests);
    $('card-blocked').textContent = fmtNum(t.blocked);
    $('card-percent').textContent = t.requests ? (100 * t.blocked / t.requests).toFixed(1) + ' %' : '-';
    $('card-listed').textContent = fmtNum(lists.lists.reduce((a, l) => a + l.entries, 0));
    $('card-clients').textContent = fmtNum(t.clients);
    $('card-bytes').textContent = fmtBytes(t.bytes_up + t.bytes_down);
    $('chart-title').textContent = 'Requests and blocks, ' + PX.RANGES[range].label +
                                   ' (per ' + PX.fmtDuration(bucket) + ')' +
                                   (node ? ', node ' + node : '');
    $('node-shown').textContent = node ? 'cards, chart and top lists of node ' + node + ' only'
                                       : 'cards, chart and top lists of every node';
    drawChart(series.points, bucket);
    fillTop('top-hosts', hosts.rows, 'host');
    fillTop('top-blocked', blocked.rows, 'host');
    fillTop('top-reported', reported.rows, 'host');
    fillTop('top-clients', clients.rows, 'client');
    fillTop('top-blocked-clients', blockedClients.rows, 'client');
    diagnostics(stats.proxy, stats.proxy_help, stats.answering_node);
    /* The set-up note is for a proxy nobody uses yet, not for a quiet node. */
    await emptyState(t.requests === 0 && !node, () => loaded.stale(asked));
    if (visitorsHost && !loaded.stale(asked)) await showVisitors(visitorsHost);
  }

  /* The proxyd nodes on this database: a lagging one (an older policy version than the
   * newest, or no heartbeat for 3 intervals) is marked in words, not by colour alone. */
  async function nodes() {
    const asked = nodesAsked.ask();
    const a = await api('GET', '/api/nodes');
    if (nodesAsked.stale(asked)) return;
    const body = $('nodes');
    body.replaceChildren();
    const count = a.nodes.length;
    $('nodes-summary').textContent = count + (count === 1 ? ' node' : ' nodes') +
      ' on this database, newest policy version ' + a.newest_policy_version + '; ' +
      (a.lagging ? a.lagging + ' lagging' : 'none lagging') + '.';
    const states = {ok: 'in step', behind: 'lagging', unseen: 'lagging', stopped: 'stopped',
                    duplicate: 'name used twice'};
    for (const n of a.nodes) {
      const state = el('td', {'data-label': 'State', class: 'state', 'data-testid': 'node-state'},
                       el('strong', {text: states[n.state] || n.state}));
      if (n.why) state.append(': ' + n.why);
      const seen = n.state === 'stopped' ? 'stopped ' + PX.fmtDuration(n.stopped_ago_ms) + ' ago'
                                         : PX.fmtDuration(Math.max(n.seen_ago_ms, 0)) + ' ago';
      body.append(el('tr', {class: n.lagging ? 'lagging' : (n.state === 'stopped' ? 'stopped' : null),
                            'data-testid': 'node-row', 'data-node': n.name, 'data-state': n.state},
        el('td', {'data-label': 'Node'}, n.name,
           n.self ? el('span', {class: 'muted', text: ' (this one)'}) : null),
        state,
        el('td', {class: 'num', 'data-label': 'Policy',
                  text: n.policy_version + (n.behind ? ' (' + n.behind + ' behind)' : '')}),
        el('td', {class: 'time', 'data-label': 'Last seen', text: seen}),
        el('td', {class: 'time', 'data-label': 'Started', text: fmtTime(n.started_ms)}),
        el('td', {'data-label': 'Software', text: n.software}),
        el('td', {class: 'mono', 'data-label': 'Listens on', text: n.listen})));
    }
    if (!count)
      body.append(el('tr', null, el('td', {colspan: 7, class: 'muted', text: 'no node has reported yet'})));
    nodeChoices(a.nodes.map((n) => n.name));
  }

  /* The node selector: "All nodes", then each node on the database, and the node in the
   * address even when no node has that name (it then shows nothing, not an error). */
  function nodeChoices(names) {
    const pick = $('node');
    const want = ['', ...names];
    if (node && !names.includes(node)) want.push(node);
    const have = [...pick.options].map((o) => o.value);
    if (have.join('\n') !== want.join('\n'))
      pick.replaceChildren(...want.map((n) => el('option', {value: n, text: n || 'All nodes'})));
    pick.value = node;
  }

  PX.start(async () => {
    PX.rangeButtons($('range'), range, (r) => {
      range = r;
      visitorsAsked.ask();  /* a "Who" still on its way is of the range left */
      load().catch(PX.showError);
    });
    window.addEventListener('resize', () => { if (drawn) drawChart(drawn.points, drawn.bucket); });
    nodeChoices([]);
    $('node').addEventListener('change', () => {
      node = $('node').value;
      const u = new URL(location.href);
      if (node) u.searchParams.set('node', node);
      else u.searchParams.delete('node');
      history.replaceState(null, '', u);
      visitorsAsked.ask();
      load().catch(PX.showError);
    });
    await load();
    await nodes();
    setInterval(() => load().catch(PX.showError), 30000);
    setInterval(() => nodes().catch(PX.showError), 5000);
  });
})();
