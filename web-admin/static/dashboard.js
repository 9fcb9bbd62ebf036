/* proxyd admin: the dashboard (totals, 24 h chart, top tables, proxy counters). */
'use strict';

(() => {
  const {el, $, api, fmtNum, fmtBytes, fmtTime} = PX;
  const HOUR = 3600 * 1000;

  function fillTop(id, rows) {
    const body = $(id);
    body.replaceChildren();
    if (!rows.length) body.append(el('tr', null, el('td', {colspan: 3, class: 'muted', text: 'nothing yet'})));
    for (const r of rows)
      body.append(el('tr', null, el('td', {class: 'url', text: (r.key_display || r.key) +
                                                                  (r.key_name ? ' ' + r.key_name : ''),
                                            title: r.key_display !== r.key ? r.key : null}),
                     el('td', {class: 'num', text: fmtNum(r.requests)}),
                     el('td', {class: 'num', text: fmtBytes(r.bytes)})));
  }

  function line(points, key, x, y, cls) {
    const pts = points.map((p, i) => x(i) + ',' + y(p[key])).join(' ');
    return el('polyline', {class: cls, points: pts});
  }

  let drawn = null;  /* the points last drawn, to redraw at a new width */

  /* The drawing is as wide as the chart is on screen: with a fixed 800-unit viewBox and
   * preserveAspectRatio="none", a phone squeezed the axis labels to a third of their width. */
  function drawChart(points) {
    const svg = $('chart');
    const H = 220, L = 48, B = 24, T = 8, R = 8;
    const W = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 800);
    drawn = points;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.replaceChildren();
    const max = Math.max(1, ...points.map((p) => p.requests));
    const n = Math.max(points.length, 2);
    const x = (i) => (L + (W - L - R) * i / (n - 1)).toFixed(1);
    const y = (v) => (T + (H - T - B) * (1 - v / max)).toFixed(1);
    svg.append(el('line', {class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B}));
    svg.append(el('line', {class: 'axis', x1: L, y1: T, x2: L, y2: H - B}));
    svg.append(el('text', {x: 4, y: T + 10, text: fmtNum(max)}));
    svg.append(el('text', {x: 4, y: H - B, text: '0'}));
    for (let i = 0; i < points.length; i += 6)
      svg.append(el('text', {x: x(i), y: H - 6, text: fmtTime(points[i].t).slice(11, 16)}));
    if (points.length) {
      svg.append(line(points, 'requests', x, y, 'requests'));
      svg.append(line(points, 'blocked', x, y, 'blocked'));
    }
    svg.setAttribute('data-points', String(points.length));
  }

  /* The store returns only buckets with traffic: fill the quiet hours with zeros. */
  function densify(points, since, until) {
    const by = new Map(points.map((p) => [p.t, p]));
    const out = [];
    for (let t = since; t < until; t += HOUR)
      out.push(by.get(t) || {t, requests: 0, blocked: 0, bytes: 0});
    return out;
  }

  async function load() {
    const until = Math.ceil(Date.now() / HOUR) * HOUR;
    const since = until - 24 * HOUR;
    const [stats, series, hosts, clients, blocked, reported] = await Promise.all([
      api('GET', '/api/stats'),
      api('GET', '/api/series' + PX.query({since, until, bucket: HOUR})),
      api('GET', '/api/top?kind=hosts&limit=10'),
      api('GET', '/api/top?kind=clients&limit=10'),
      api('GET', '/api/top?kind=blocked&limit=10'),
      api('GET', '/api/top?kind=reported&limit=10'),
    ]);
    const t = stats.totals;
    $('card-requests').textContent = fmtNum(t.requests);
    $('card-blocked').textContent = fmtNum(t.blocked);
    $('card-clients').textContent = fmtNum(t.clients);
    $('card-hosts').textContent = fmtNum(t.hosts);
    $('card-bytes').textContent = fmtBytes(t.bytes_up + t.bytes_down);
    drawChart(densify(series.points, since, until));
    fillTop('top-hosts', hosts.rows);
    fillTop('top-clients', clients.rows);
    fillTop('top-blocked', blocked.rows);
    fillTop('top-reported', reported.rows);
    const ps = $('proxy-stats');
    ps.replaceChildren();
    const flat = (obj, prefix) => {
      for (const [k, v] of Object.entries(obj || {})) {
        if (v && typeof v === 'object') { flat(v, prefix + k + '.'); continue; }
        let shown = v;
        if (k === 'started_ms') shown = fmtTime(v);
        else if (k.startsWith('bytes')) shown = fmtBytes(v);
        ps.append(el('tr', {'data-key': prefix + k}, el('th', {text: prefix + k}),
                       el('td', {class: 'num', text: String(shown)})));
      }
    };
    if (stats.proxy) flat(stats.proxy, '');
    else ps.append(el('tr', null, el('td', {class: 'muted', text: 'no counters from the proxy'})));
  }

  PX.start(async () => {
    window.addEventListener('resize', () => { if (drawn) drawChart(drawn); });
    await load();
    setInterval(() => load().catch(PX.showError), 30000);
  });
})();
