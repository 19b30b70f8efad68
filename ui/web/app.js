// The dstream web UI: one page whose views (streaming, a batch, receivers,
// workers, the stream graph) are routed by the URL's hash and drawn from the
// JSON API, polled every second. No library: the charts are SVG built here.
'use strict';

(function () {
  const POLL_MS = 1000;
  const CHART_BATCHES = 300; // the timelines show at most the last 300 batches
  const TABLE_STEP = 50; // completed batches shown, and added by "show more"
  const TASK_ROWS = 1000; // task rows drawn per stage at most
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    timer: 0,
    generation: 0, // bumped on every route change: stale answers are ignored
    shown: TABLE_STEP,
    receivers: new Map(), // streamId -> {records, at}: the rate's previous sample
    openStages: new Set(), // "job/stage" whose task table is open
    batchText: '', // the batch view's last answers, to redraw only on change
    batchSame: 0,
  };

  // ---- DOM helpers ----

  // el builds an element: attrs may hold text, class, on* handlers and other
  // attributes; kids are nodes, strings or arrays of them (null skipped).
  function el(tag, attrs, ...kids) {
    return build(document.createElement(tag), attrs, kids);
  }

  function svg(tag, attrs, ...kids) {
    return build(document.createElementNS(SVG_NS, tag), attrs, kids);
  }

  function build(node, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = String(v);
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    append(node, kids);
    return node;
  }

  function append(node, kids) {
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      if (Array.isArray(k)) append(node, k);
      else node.append(k instanceof Node ? k : String(k));
    }
  }

  // ---- formatting ----

  function pad(n, w) { return String(n).padStart(w || 2, '0'); }

  // clock formats Unix ms as local HH:MM:SS.mmm.
  function clock(ms) {
    const d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
  }

  function dateTime(ms) {
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + clock(ms);
  }

  function stampText(s) { return s ? dateTime(Date.parse(s)) : '-'; }

  function dur(ms) {
    if (ms === null || ms === undefined) return '-';
    if (ms < 10 && !Number.isInteger(ms)) return ms.toFixed(1) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
    const m = Math.floor(ms / 60000);
    if (m < 60) return m + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  function num(n) {
    if (n === null || n === undefined) return '-';
    if (Math.abs(n) >= 100 || Number.isInteger(n)) return Math.round(n).toLocaleString('en-US');
    return n.toFixed(n < 10 ? 2 : 1);
  }

  function bytes(n) {
    if (n === null || n === undefined) return '-';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
  }

  // ---- fetching ----

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function fetchText(path) {
    const r = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
    const text = await r.text();
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = JSON.parse(text).error || msg; } catch (e) { /* not JSON */ }
      throw new HttpError(r.status, msg);
    }
    return text;
  }

  async function getJSON(path) { return JSON.parse(await fetchText(path)); }

  function setStatus(text, bad) {
    const s = document.getElementById('status');
    s.textContent = text;
    s.className = bad ? 'status bad' : 'status';
  }

  // ---- routing and polling ----

  function route() {
    const h = location.hash.replace(/^#\/?/, '');
    const m = /^batch\/(-?\d+)$/.exec(h);
    if (m) return { page: 'batch', batch: m[1] };
    if (h === 'receivers' || h === 'workers' || h === 'graph') return { page: h };
    return { page: 'streaming' };
  }

  const views = { streaming: streamingView, batch: batchView, receivers: receiversView, workers: workersView, graph: graphView };

  function navigate() {
    clearTimeout(state.timer);
    state.generation++;
    state.batchText = '';
    state.batchSame = 0;
    const r = route();
    for (const a of document.querySelectorAll('nav a')) {
      a.classList.toggle('active', a.dataset.page === r.page || (r.page === 'batch' && a.dataset.page === 'streaming'));
    }
    document.getElementById('main').replaceChildren(el('p', { class: 'muted', text: 'Loading...' }));
    tick(r, state.generation);
  }

  // refresh polls the current view now, keeping what is shown meanwhile.
  function refresh() {
    clearTimeout(state.timer);
    state.generation++;
    tick(route(), state.generation);
  }

  // tick draws the view once and schedules the next poll unless the view
  // says it is final (a finished batch, the graph). A view returns
  // {node, done}: the content to show (null: keep what is shown) and
  // whether to stop polling.
  async function tick(r, gen) {
    let again = true;
    try {
      const v = await views[r.page](r);
      if (gen !== state.generation) return;
      if (v.node) document.getElementById('main').replaceChildren(v.node);
      again = !v.done;
      setStatus('updated ' + clock(Date.now()), false);
    } catch (err) {
      if (gen !== state.generation) return;
      if (err instanceof HttpError && err.status === 404 && r.page === 'batch') {
        document.getElementById('main').replaceChildren(section('Batch ' + r.batch, el('p', { text: err.message }), el('p', {}, el('a', { href: '#/', text: 'Back to the streaming page' }))));
        setStatus('updated ' + clock(Date.now()), false);
        again = false;
      } else {
        setStatus('cannot reach the application: ' + err.message, true);
      }
    }
    if (again && gen === state.generation) {
      state.timer = setTimeout(function () { tick(r, gen); }, POLL_MS);
    }
  }

  function section(title, ...kids) {
    return el('section', {}, el('h2', { text: title }), kids);
  }

  // table builds a table of rows under headers; a column whose cells are
  // numbers (class n) in the first row has its header aligned with them.
  function table(id, headers, rows, empty) {
    if (rows.length === 0) return el('p', { class: 'muted', id: id, text: empty });
    const cells = rows[0].children;
    return el('table', { id: id },
      el('thead', {}, el('tr', {}, headers.map(function (x, i) {
        return el('th', { class: cells[i] && cells[i].classList.contains('n') ? 'n' : null, text: x });
      }))),
      el('tbody', {}, rows));
  }

  function batchLink(id) { return el('a', { href: '#/batch/' + id, text: clock(id) }); }

  // ---- the streaming page ----

  async function streamingView() {
    const [stats, batches, failed] = await Promise.all([
      getJSON('api/v1/statistics'),
      getJSON('api/v1/batches?limit=' + CHART_BATCHES),
      getJSON('api/v1/batches?status=failed&limit=100'),
    ]);
    const page = el('div', { id: 'streaming' });
    page.append(statsHeader(stats));
    page.append(charts(stats, batches));
    const active = batches.filter(function (b) { return b.status === 'queued' || b.status === 'processing'; });
    page.append(section('Active batches (' + active.length + ')', table('active-batches',
      ['Batch time', 'Status', 'Input size', 'Scheduling delay', 'Output ops: done / failed'],
      active.map(function (b) {
        return el('tr', { 'data-batch': b.batchId },
          el('td', {}, batchLink(b.batchId)), el('td', {}, el('span', { class: 'pill ' + b.status, text: b.status })),
          el('td', { class: 'n', text: num(b.inputSize) }), el('td', { class: 'n', text: dur(b.schedulingDelay) }),
          el('td', { class: 'n', text: b.numCompletedOutputOps + ' / ' + b.numFailedOutputOps }));
      }), 'No batch is queued or processing.')));
    const completed = batches.filter(function (b) { return b.status === 'completed'; });
    const shown = completed.slice(0, state.shown);
    const more = completed.length > shown.length ? el('button', {
      class: 'more', text: 'Show ' + Math.min(TABLE_STEP, completed.length - shown.length) + ' more',
      onclick: function () { state.shown += TABLE_STEP; refresh(); },
    }) : null;
    page.append(section('Completed batches (last ' + shown.length + ' of ' + stats.numRetainedCompletedBatches + ' retained)',
      table('completed-batches', ['Batch time', 'Input size', 'Scheduling delay', 'Processing time', 'Total delay', 'Output ops'],
        shown.map(function (b) {
          return el('tr', { 'data-batch': b.batchId },
            el('td', {}, batchLink(b.batchId)), el('td', { class: 'n', text: num(b.inputSize) }),
            el('td', { class: 'n', text: dur(b.schedulingDelay) }), el('td', { class: 'n', text: dur(b.processingTime) }),
            el('td', { class: 'n', text: dur(b.totalDelay) }), el('td', { class: 'n', text: String(b.numCompletedOutputOps) }));
        }), 'No batch has completed yet.'), more));
    page.append(section('Failed batches (' + failed.length + ')', table('failed-batches',
      ['Batch time', 'Input size', 'Processing time', 'Output ops: done / failed', 'Error'],
      failed.map(function (b) {
        return el('tr', { 'data-batch': b.batchId, class: 'failed' },
          el('td', {}, batchLink(b.batchId)), el('td', { class: 'n', text: num(b.inputSize) }),
          el('td', { class: 'n', text: dur(b.processingTime) }),
          el('td', { class: 'n', text: b.numCompletedOutputOps + ' / ' + b.numFailedOutputOps }),
          el('td', {}, el('pre', { class: 'error', text: b.firstFailureReason || '' })));
      }), 'No batch has failed.')));
    return { node: page, done: false };
  }

  function statsHeader(st) {
    const items = [
      ['Batch interval', dur(st.batchDuration)],
      ['Started', st.startTime ? stampText(st.startTime) : 'not yet'],
      ['Running for', st.startTime ? dur(Date.now() - Date.parse(st.startTime)) : '-'],
      ['Completed batches', num(st.numTotalCompletedBatches)],
      ['Failed batches', num(st.numTotalFailedBatches)],
      ['Active batches', num(st.numActiveBatches)],
      ['Retained', num(st.numRetainedBatches) + ' of ' + num(st.maxRetainedBatches) + (st.numDroppedBatches ? ' (' + num(st.numDroppedBatches) + ' dropped)' : '')],
      ['Records received', num(st.numReceivedRecords)],
      ['Records processed', num(st.numProcessedRecords)],
    ];
    return el('section', { class: 'stats', id: 'stats' }, items.map(function (it) {
      return el('div', { class: 'stat' }, el('span', { class: 'label', text: it[0] }), el('span', { class: 'value', text: it[1] }));
    }));
  }

  // charts draws, for the batches (newest first), a timeline and a
  // histogram of each of the four measures.
  function charts(st, batches) {
    const ordered = batches.slice().reverse();
    const interval = st.batchDuration > 0 ? st.batchDuration : 1000;
    const series = [
      { key: 'input-rate', title: 'Input rate', unit: 'records/s', avg: st.avgInputRate, fmt: num, floor: 10,
        value: function (b) { return b.inputSize * 1000 / interval; } },
      { key: 'scheduling-delay', title: 'Scheduling delay', unit: '', avg: st.avgSchedulingDelay, fmt: dur, floor: 10,
        value: function (b) { return b.schedulingDelay; } },
      { key: 'processing-time', title: 'Processing time', unit: '', avg: st.avgProcessingTime, fmt: dur, floor: 10,
        value: function (b) { return b.processingTime; } },
      { key: 'total-delay', title: 'Total delay', unit: '', avg: st.avgTotalDelay, fmt: dur, floor: 10,
        value: function (b) { return b.totalDelay; } },
    ];
    const x0 = ordered.length ? ordered[0].batchId : 0;
    const x1 = ordered.length ? ordered[ordered.length - 1].batchId : 1;
    const grid = el('section', { class: 'charts' });
    grid.append(el('h2', { text: 'Timelines (last ' + ordered.length + ' batches) and histograms' }));
    for (const s of series) {
      const points = [];
      for (const b of ordered) {
        const v = s.value(b);
        if (v !== null && v !== undefined) points.push({ x: b.batchId, y: v, failed: b.status === 'failed' });
      }
      const ymax = niceMax(Math.max(s.floor, ...points.map(function (p) { return p.y; })));
      grid.append(el('div', { class: 'chart-label' },
        el('div', { class: 'chart-title', text: s.title }),
        el('div', { class: 'chart-avg', text: 'avg ' + (s.avg === null || s.avg === undefined ? '-' : s.fmt(s.avg) + (s.unit ? ' ' + s.unit : '')) })));
      grid.append(timeline(s, points, x0, Math.max(x1, x0 + 1), ymax));
      grid.append(histogram(s, points, ymax));
    }
    return grid;
  }

  // niceMax rounds v up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  const CW = 600, CH = 150, ML = 64, MR = 10, MT = 10, MB = 22, HW = 220;

  function timeline(s, points, x0, x1, ymax) {
    const w = CW - ML - MR, hgt = CH - MT - MB;
    const sx = function (x) { return ML + (x - x0) / (x1 - x0) * w; };
    const sy = function (y) { return MT + hgt - y / ymax * hgt; };
    const g = svg('svg', { class: 'timeline', id: 'timeline-' + s.key, viewBox: '0 0 ' + CW + ' ' + CH, 'data-points': points.length, role: 'img', 'aria-label': s.title + ' timeline' });
    for (const f of [0, 0.5, 1]) {
      g.append(svg('line', { class: 'grid', x1: ML, x2: CW - MR, y1: sy(ymax * f), y2: sy(ymax * f) }));
      g.append(svg('text', { class: 'axis', x: ML - 6, y: sy(ymax * f) + 4, 'text-anchor': 'end', text: s.fmt(ymax * f) }));
    }
    if (points.length) {
      g.append(svg('text', { class: 'axis', x: ML, y: CH - 6, text: clock(x0) }));
      g.append(svg('text', { class: 'axis', x: CW - MR, y: CH - 6, 'text-anchor': 'end', text: clock(x1) }));
      g.append(svg('polyline', { class: 'line', points: points.map(function (p) { return sx(p.x).toFixed(1) + ',' + sy(p.y).toFixed(1); }).join(' ') }));
      const r = points.length > 120 ? 1.5 : 3;
      for (const p of points) {
        const c = svg('circle', { class: p.failed ? 'dot failed' : 'dot', cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: r, 'data-batch': p.x,
          onclick: function () { location.hash = '#/batch/' + p.x; } });
        c.append(svg('title', { text: clock(p.x) + ': ' + s.fmt(p.y) + (s.unit ? ' ' + s.unit : '') }));
        g.append(c);
      }
    } else {
      g.append(svg('text', { class: 'axis', x: ML + w / 2, y: MT + hgt / 2, 'text-anchor': 'middle', text: 'no batch yet' }));
    }
    return g;
  }

  // histogram counts the values in 10 bins over [0, ymax], drawn as
  // horizontal bars on the timeline's vertical scale.
  function histogram(s, points, ymax) {
    const bins = new Array(10).fill(0);
    for (const p of points) bins[Math.min(9, Math.max(0, Math.floor(p.y / ymax * 10)))]++;
    const most = Math.max(1, ...bins);
    const hgt = CH - MT - MB, w = HW - 40;
    const g = svg('svg', { class: 'histogram', id: 'histogram-' + s.key, viewBox: '0 0 ' + HW + ' ' + CH, 'data-points': points.length, role: 'img', 'aria-label': s.title + ' histogram' });
    g.append(svg('line', { class: 'grid', x1: 4, x2: 4, y1: MT, y2: MT + hgt }));
    bins.forEach(function (n, i) {
      const y = MT + hgt - (i + 1) * hgt / 10;
      const r = svg('rect', { class: 'bar', x: 4, y: (y + 1).toFixed(1), width: (n / most * w).toFixed(1), height: (hgt / 10 - 2).toFixed(1) });
      r.append(svg('title', { text: s.fmt(ymax * i / 10) + ' .. ' + s.fmt(ymax * (i + 1) / 10) + ': ' + n + ' batches' }));
      g.append(r);
      if (n > 0) g.append(svg('text', { class: 'axis', x: 8 + n / most * w, y: y + hgt / 20 + 4, text: String(n) }));
    });
    g.append(svg('text', { class: 'axis', x: 4, y: CH - 6, text: 'batches per bin' }));
    return g;
  }

  // ---- a batch ----

  async function batchView(r) {
    const base = 'api/v1/batches/' + r.batch;
    const texts = await Promise.all([fetchText(base), fetchText(base + '/operations'), fetchText(base + '/tasks')]);
    const joined = texts.join('\n');
    const b = JSON.parse(texts[0]);
    const finished = b.status === 'completed' || b.status === 'failed';
    if (joined === state.batchText) {
      // Nothing new: a finished batch that answered the same twice is final.
      state.batchSame++;
      return { node: null, done: finished && state.batchSame >= 2 };
    }
    state.batchText = joined;
    state.batchSame = 0;
    const ops = JSON.parse(texts[1]);
    const tasks = JSON.parse(texts[2]);
    const page = el('div', { id: 'batch', 'data-batch': b.batchId });
    page.append(el('p', {}, el('a', { href: '#/', text: '\u2190 Streaming' })));
    page.append(el('h2', { text: 'Batch ' + clock(b.batchId) }, ' ', el('span', { class: 'pill ' + b.status, text: b.status })));
    const facts = [
      ['Batch time', stampText(b.batchTime) + ' (batchId ' + b.batchId + ')'],
      ['Batch interval', dur(b.batchDuration)],
      ['Input size', num(b.inputSize) + ' records'],
      ['Submitted', stampText(b.submissionTime)],
      ['Processing start', stampText(b.processingStartTime)],
      ['Processing end', stampText(b.processingEndTime)],
      ['Scheduling delay', dur(b.schedulingDelay)],
      ['Processing time', dur(b.processingTime)],
      ['Total delay', dur(b.totalDelay)],
    ];
    page.append(el('dl', { class: 'facts' }, facts.map(function (f) { return [el('dt', { text: f[0] }), el('dd', { text: f[1] })]; })));
    if (b.firstFailureReason) page.append(el('pre', { class: 'error', id: 'batch-error', text: b.firstFailureReason }));
    if (b.offsetRanges && b.offsetRanges.length > 0) {
      // A Kafka stream's input: the offsets each partition's range took.
      page.append(section('Kafka offset ranges (' + b.offsetRanges.length + ')', table('offset-ranges',
        ['Stream', 'Topic', 'Partition', 'From offset', 'Until offset', 'Records'],
        b.offsetRanges.map(function (o) {
          return el('tr', {}, el('td', { class: 'n', text: String(o.stream) }), el('td', { text: o.topic }),
            el('td', { class: 'n', text: String(o.partition) }), el('td', { class: 'n', text: num(o.fromOffset) }),
            el('td', { class: 'n', text: num(o.untilOffset) }), el('td', { class: 'n', text: num(o.untilOffset - o.fromOffset) }));
        }), '')));
    }

    if (b.eventTimeOperators && b.eventTimeOperators.length > 0) {
      // Event-time windows: the watermark each operator ran the batch with,
      // and the records it dropped as late.
      page.append(section('Event time (' + b.eventTimeOperators.length + ')', table('event-time',
        ['Stream', 'Operator', 'Watermark', 'Late records'],
        b.eventTimeOperators.map(function (o) {
          return el('tr', {}, el('td', { class: 'n', text: String(o.stream) }), el('td', { text: o.name }),
            el('td', { text: o.watermark === null ? 'none yet' : stampText(o.watermark) }),
            el('td', { class: 'n', text: o.lateRecords === null ? '-' : num(o.lateRecords) }));
        }), '')));
    }

    const jobsByOp = new Map();
    for (const j of tasks.jobs) {
      const k = j.outputOpId === null ? -1 : j.outputOpId;
      if (!jobsByOp.has(k)) jobsByOp.set(k, []);
      jobsByOp.get(k).push(j.jobId);
    }
    page.append(section('Output operations (' + ops.length + ')', table('output-ops',
      ['Id', 'Name', 'Status', 'Duration', 'Jobs', 'Error'],
      ops.map(function (o) {
        return el('tr', { class: o.status === 'failed' ? 'failed' : null },
          el('td', { class: 'n', text: String(o.outputOpId) }), el('td', { text: o.name }),
          el('td', {}, el('span', { class: 'pill ' + o.status, text: o.status })), el('td', { class: 'n', text: dur(o.duration) }),
          el('td', { text: (jobsByOp.get(o.outputOpId) || []).join(', ') || '-' }),
          el('td', {}, o.failureReason ? el('pre', { class: 'error', text: o.failureReason }) : '-'));
      }), finished ? 'No output operation reported.' : 'No output operation has finished yet.')));

    const jobs = section('Jobs (' + tasks.jobs.length + '), ' + num(tasks.numTasks) + ' task attempts');
    jobs.id = 'jobs';
    if (tasks.numDroppedTasks > 0 || tasks.numDroppedJobs > 0) {
      jobs.append(el('p', { class: 'muted', text: 'Not kept, to bound memory: ' + num(tasks.numDroppedTasks) + ' task attempts, ' + num(tasks.numDroppedJobs) + ' jobs.' }));
    }
    if (tasks.jobs.length === 0) {
      jobs.append(el('p', { class: 'muted', text: 'No job or task reported for this batch.' }));
    }
    for (const j of tasks.jobs) jobs.append(jobView(j));
    page.append(jobs);
    return { node: page, done: false };
  }

  function jobView(j) {
    const head = el('h3', {}, 'Job ' + j.jobId + (j.name ? ' \u00b7 ' + j.name : '') + (j.outputOpId !== null ? ' (output ' + j.outputOpId + ')' : '') + ' ',
      el('span', { class: 'pill ' + j.status, text: j.status }),
      el('span', { class: 'muted', text: ' ' + dur(j.duration) + ', ' + j.numTasks + ' tasks' + (j.numFailedTasks ? ', ' + j.numFailedTasks + ' failed' : '') }));
    const box = el('div', { class: 'job', 'data-job': j.jobId }, head);
    if (j.failureReason) box.append(el('pre', { class: 'error', text: j.failureReason }));
    box.append(table('stages-' + j.jobId,
      ['Stage', 'Kind', 'Tasks', 'Failed', 'Duration', 'Task time min / median / max', 'Records read', 'Records written', 'Shuffle read', 'Shuffle write', 'Workers'],
      j.stages.map(function (s) {
        return el('tr', {},
          el('td', { class: 'n', text: String(s.stageId) }), el('td', { text: s.kind }),
          el('td', { class: 'n', text: String(s.numTasks) + (s.numSpeculativeTasks ? ' (' + s.numSpeculativeTasks + ' speculative)' : '') }),
          el('td', { class: 'n', text: String(s.numFailedTasks) }), el('td', { class: 'n', text: dur(s.duration) }),
          el('td', { class: 'n', text: dur(s.taskDurationMin) + ' / ' + dur(s.taskDurationMedian) + ' / ' + dur(s.taskDurationMax) }),
          el('td', { class: 'n', text: num(s.recordsRead) }), el('td', { class: 'n', text: num(s.records) }),
          el('td', { class: 'n', text: bytes(s.shuffleReadBytes) }),
          el('td', { class: 'n', text: bytes(s.shuffleWriteBytes) }), el('td', { text: s.workers.join(', ') }));
      }), 'No task reported.'));
    for (const s of j.stages) box.append(stageTasks(j, s));
    return box;
  }

  // stageTasks is a stage's task table, folded when it is long; its rows
  // are drawn when it opens.
  function stageTasks(j, s) {
    const key = j.jobId + '/' + s.stageId;
    const open = state.openStages.has(key) || s.tasks.length <= 50;
    const d = el('details', { class: 'tasks', 'data-stage': key, open: open });
    const fill = function () {
      if (d.dataset.filled) return;
      d.dataset.filled = '1';
      d.append(taskChart(s));
      const rows = s.tasks.slice(0, TASK_ROWS).map(function (t) {
        return el('tr', { class: t.status === 'failed' ? 'failed task' : 'task' },
          el('td', { class: 'n', text: String(t.partition) }), el('td', { class: 'n', text: String(t.attempt) + (t.speculative ? ' (spec.)' : '') }),
          el('td', { text: t.worker }), el('td', {}, el('span', { class: 'pill ' + t.status, text: t.status })),
          el('td', { text: clock(Date.parse(t.launchTime)) }), el('td', { class: 'n', text: dur(t.duration) }),
          el('td', { class: 'n', text: num(t.recordsRead) }), el('td', { class: 'n', text: num(t.records) }),
          el('td', { class: 'n', text: bytes(t.shuffleReadBytes) }),
          el('td', { class: 'n', text: bytes(t.shuffleWriteBytes) }),
          el('td', {}, t.failureReason ? el('pre', { class: 'error', text: t.failureReason }) : ''));
      });
      d.append(table('tasks-' + j.jobId + '-' + s.stageId,
        ['Partition', 'Attempt', 'Worker', 'Status', 'Launched', 'Duration', 'Records read', 'Records written', 'Shuffle read', 'Shuffle write', 'Error'], rows, 'No task.'));
      if (s.tasks.length > TASK_ROWS) d.append(el('p', { class: 'muted', text: 'The first ' + TASK_ROWS + ' of ' + s.tasks.length + ' attempts are shown; the API has them all.' }));
    };
    d.append(el('summary', { text: 'Stage ' + s.stageId + ' (' + s.kind + '): ' + s.tasks.length + ' task attempts' }));
    d.addEventListener('toggle', function () {
      if (d.open) { state.openStages.add(key); fill(); } else state.openStages.delete(key);
    });
    if (open) fill();
    return d;
  }

  // taskChart draws when each attempt ran: bars placed in time from the
  // stage's first launch to its last finish, in lanes by worker (attempts
  // that overlap on a worker take separate lanes, as its slots did).
  function taskChart(s) {
    const ts = s.tasks.slice(0, TASK_ROWS).map(function (t) {
      return { t: t, a: Date.parse(t.launchTime), b: Date.parse(t.finishTime) };
    }).sort(function (x, y) { return x.a - y.a || x.b - y.b; });
    const MAX_LANES = 16;
    const lanes = new Map(); // worker -> the end time of each lane's last bar
    for (const x of ts) {
      if (!lanes.has(x.t.worker)) lanes.set(x.t.worker, []);
      const ends = lanes.get(x.t.worker);
      let i = ends.findIndex(function (e) { return e <= x.a; });
      if (i < 0) i = ends.length < MAX_LANES ? ends.length : ends.length - 1;
      ends[i] = Math.max(ends[i] || 0, x.b);
      x.lane = i;
    }
    const workers = Array.from(lanes.keys()).sort();
    const first = new Map();
    let rowsUsed = 0;
    for (const w of workers) { first.set(w, rowsUsed); rowsUsed += lanes.get(w).length; }
    const t0 = Date.parse(s.firstLaunchTime), t1 = Math.max(Date.parse(s.lastFinishTime), t0 + 1);
    const W = 800, L = 110, R = 10, row = 14, H = Math.max(1, rowsUsed) * row + 22;
    const g = svg('svg', { class: 'taskchart', viewBox: '0 0 ' + W + ' ' + H, 'data-tasks': ts.length });
    for (const w of workers) {
      g.append(svg('text', { class: 'axis', x: L - 6, y: first.get(w) * row + 11, 'text-anchor': 'end', text: clip(w, 16) }));
      if (first.get(w) > 0) g.append(svg('line', { class: 'grid', x1: 4, x2: W - R, y1: first.get(w) * row, y2: first.get(w) * row }));
    }
    for (const x of ts) {
      const px = L + (x.a - t0) / (t1 - t0) * (W - L - R);
      const bar = svg('rect', { class: x.t.status === 'failed' ? 'span failed' : 'span', x: px.toFixed(1), y: (first.get(x.t.worker) + x.lane) * row + 2,
        width: Math.max(1.5, (x.b - x.a) / (t1 - t0) * (W - L - R) - 1).toFixed(1), height: row - 4 });
      bar.append(svg('title', { text: 'partition ' + x.t.partition + ' attempt ' + x.t.attempt + ' on ' + x.t.worker + ': ' + dur(x.t.duration) + (x.t.status === 'failed' ? ' (failed)' : '') }));
      g.append(bar);
    }
    g.append(svg('text', { class: 'axis', x: L, y: H - 5, text: clock(t0) }));
    g.append(svg('text', { class: 'axis', x: W - R, y: H - 5, 'text-anchor': 'end', text: clock(t1) + ' (' + dur(t1 - t0) + ')' }));
    return g;
  }

  // ---- receivers ----

  async function receiversView() {
    const rs = await getJSON('api/v1/receivers');
    const now = Date.now();
    const hasBlocks = rs.some(function (r) { return r.blocks !== undefined; });
    const rows = rs.map(function (r) {
      const prev = state.receivers.get(r.streamId);
      let rate = null;
      if (prev && now > prev.at && r.records >= prev.records) rate = (r.records - prev.records) * 1000 / (now - prev.at);
      state.receivers.set(r.streamId, { records: r.records, at: now });
      return el('tr', { class: r.lastError ? 'failed' : null },
        el('td', { class: 'n', text: String(r.streamId) }), el('td', { text: r.streamName }), el('td', { text: r.address || '-' }),
        el('td', { text: r.worker || 'this process' }),
        el('td', {}, el('span', { class: 'pill ' + (r.isActive ? 'succeeded' : 'failed'), text: r.isActive ? 'active' : 'inactive' })),
        el('td', { class: 'n', text: num(r.records) }), el('td', { class: 'n', text: rate === null ? '-' : num(rate) }),
        el('td', { class: 'n' + (r.droppedRecords > 0 ? ' failed' : ''), text: num(r.droppedRecords || 0) }),
        hasBlocks ? el('td', { class: 'n', text: num(r.blocks) }) : null,
        el('td', {}, r.lastError ? el('pre', { class: 'error', text: r.lastError }) : '-'),
        el('td', { text: stampText(r.lastErrorTime) }));
    });
    const headers = ['Stream', 'Name', 'Address', 'Worker', 'State', 'Records', 'Rate (records/s)', 'Dropped'];
    if (hasBlocks) headers.push('Blocks');
    headers.push('Last error', 'Error time');
    return { node: section('Receivers (' + rs.length + ')', table('receivers', headers, rows, 'This application has no receiver (queue and file inputs are not receivers).')), done: false };
  }

  // ---- workers ----

  async function workersView() {
    const ws = await getJSON('api/v1/workers');
    const rows = ws.map(function (w) {
      const meter = w.memoryLimit > 0 ? el('meter', { min: 0, max: w.memoryLimit, value: w.memoryUsed }) : null;
      return el('tr', { class: w.state === 'alive' ? null : 'failed' },
        el('td', { text: w.id }), el('td', { text: w.address || 'this process' }), el('td', { class: 'n', text: String(w.pid) }),
        el('td', {}, el('span', { class: 'pill ' + (w.state === 'alive' ? 'succeeded' : 'failed'), text: w.state })),
        el('td', { class: 'n', text: (w.slots - w.freeSlots) + ' busy of ' + w.slots }),
        el('td', { class: 'n' }, bytes(w.memoryUsed) + (w.memoryLimit > 0 ? ' of ' + bytes(w.memoryLimit) + ' ' : ' '), meter),
        el('td', { class: 'n', text: num(w.blocks) }), el('td', { text: stampText(w.lastHeartbeat) }));
    });
    return { node: section('Workers (' + ws.length + ')', table('workers', ['Id', 'Address', 'PID', 'State', 'Slots', 'Memory', 'Blocks', 'Last heartbeat'], rows, 'No worker.')), done: false };
  }

  // ---- the stream graph ----

  async function graphView() {
    const nodes = await getJSON('api/v1/graph');
    const byId = new Map(nodes.map(function (n) { return [n.id, n]; }));
    // Layers: a node sits one below its lowest parent.
    const layer = new Map();
    const depth = function (n, seen) {
      if (layer.has(n.id)) return layer.get(n.id);
      if (seen.has(n.id)) return 0; // a cycle: not in a graph of streams
      seen.add(n.id);
      let d = 0;
      for (const p of n.parents) if (byId.has(p)) d = Math.max(d, depth(byId.get(p), seen) + 1);
      layer.set(n.id, d);
      return d;
    };
    for (const n of nodes) depth(n, new Set());
    const rows = [];
    for (const n of nodes) {
      const d = layer.get(n.id);
      while (rows.length <= d) rows.push([]);
      rows[d].push(n);
    }
    // Within a layer, order by the mean position of the parents.
    const pos = new Map();
    for (const row of rows) {
      row.sort(function (a, b) { return mean(a) - mean(b) || a.id - b.id; });
      row.forEach(function (n, i) { pos.set(n.id, i - (row.length - 1) / 2); });
    }
    function mean(n) {
      const ps = n.parents.filter(function (p) { return pos.has(p); });
      return ps.length ? ps.reduce(function (s, p) { return s + pos.get(p); }, 0) / ps.length : 0;
    }
    const BW = 190, BH = 50, GX = 30, GY = 46;
    const cols = Math.max(1, ...rows.map(function (r) { return r.length; }));
    const W = cols * (BW + GX) + GX, H = rows.length * (BH + GY) + GY;
    const at = function (id) { return { x: W / 2 + pos.get(id) * (BW + GX), y: GY + layer.get(id) * (BH + GY) }; };
    const g = svg('svg', { class: 'graph', id: 'graph', viewBox: '0 0 ' + W + ' ' + Math.max(H, 60), 'data-nodes': nodes.length, width: W, height: Math.max(H, 60) });
    g.append(svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
      svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));
    for (const n of nodes) {
      for (const p of n.parents) {
        if (!byId.has(p)) continue;
        const a = at(p), b = at(n.id);
        const y0 = a.y + BH, y1 = b.y, my = (y0 + y1) / 2;
        g.append(svg('path', { class: 'edge', d: 'M' + a.x + ',' + y0 + ' C' + a.x + ',' + my + ' ' + b.x + ',' + my + ' ' + b.x + ',' + (y1 - 2), 'marker-end': 'url(#arrow)' }));
      }
    }
    for (const n of nodes) {
      const c = at(n.id);
      const box = svg('g', { class: 'node ' + n.kind + (n.state ? ' state' : ''), 'data-id': n.id });
      box.append(svg('rect', { x: c.x - BW / 2, y: c.y, width: BW, height: BH, rx: 6 }));
      box.append(svg('text', { class: 'name', x: c.x, y: c.y + 20, 'text-anchor': 'middle', text: clip(n.name, 24) }));
      const sub = clip('#' + n.id + ' \u00b7 ' + clip(n.type, 14) + (n.slide !== null ? ' \u00b7 ' + dur(n.slide) : ''), 30);
      box.append(svg('text', { class: 'sub', x: c.x, y: c.y + 38, 'text-anchor': 'middle', text: sub }));
      box.append(svg('title', { text: n.kind + ' ' + n.id + ': ' + n.name + ' of ' + n.type + (n.slide !== null ? ', sliding ' + dur(n.slide) : '') + (n.parents.length ? ', from ' + n.parents.join(', ') : '') }));
      g.append(box);
    }
    const content = section('Stream graph (' + nodes.length + ' operators)',
      nodes.length ? el('div', { class: 'graph-wrap' }, g) : el('p', { class: 'muted', text: 'The graph is empty.' }),
      el('p', { class: 'muted', text: 'Streams top to bottom, each below the streams it reads; outputs are drawn in green, state streams with a thick border.' }));
    return { node: content, done: true }; // the graph does not change once the application runs
  }

  function clip(s, n) { return s.length > n ? s.slice(0, n - 1) + '\u2026' : s; }

  window.addEventListener('hashchange', navigate);
  navigate();
})();
