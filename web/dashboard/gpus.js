// The device cards: one per GPU (ledger figures, stacked usage bar, 15-minute memory chart) or,
// on a machine without GPUs, one for the CPU. The chart's samples are seeded from the stream's
// `hello` (the server's history) and extended by each `snapshot`.
import { drawMemoryChart } from './chart.js';
import { h, setAttr, setText, syncChildren } from './dom.js';
import { bytes, percent } from './format.js';

// The bar's parts, bottom to top / left to right, and their legend names.
const PARTS = [
  ['reserved', 'Reserved'],
  ['steno', 'steno'],
  ['other', 'Other tenants'],
  ['available', 'Available'],
];
const SVG = 'http://www.w3.org/2000/svg';

// A <dt>/<dd> pair; `swatch` names the bar part whose colour it shows (none when null).
function ledgerItem(field, label, swatch) {
  return h('div', { class: 'ledger-item' },
    h('dt', {}, swatch ? h('span', { class: `swatch ${swatch}`, 'aria-hidden': 'true' }) : null, label),
    h('dd', { dataset: { field } }, '—'));
}

// The compute limit (--max-concurrency-per-device) beside memory: "3 of 4 jobs (learned)",
// with what the device delivered in its latest measured window as the tooltip.
function updateCompute(dd, compute) {
  if (!dd) return;
  if (!compute) {
    setText(dd, '—');
    return;
  }
  const how = { auto: 'learned', fixed: 'fixed', off: 'no limit' }[compute.mode] || compute.mode;
  const limit = compute.limit == null ? '∞' : compute.limit;
  setText(dd, `${compute.running} of ${limit} jobs (${how})`);
  setAttr(dd, 'data-limit', compute.limit ?? '');
  setAttr(dd, 'data-mode', compute.mode);
  const rate = compute.throughput_audio_s_per_s || 0;
  setAttr(dd, 'title', rate > 0
    ? `${rate.toFixed(2)} audio s per s with ${(compute.mean_running || 0).toFixed(1)} jobs running `
      + `(real-time factor ${(compute.real_time_factor || 0).toFixed(3)})`
    : 'not measured yet');
}

function createGpuCard(gpu, panel) {
  const id = `gpu-${String(gpu.device).replace(/[^a-z0-9]/gi, '-')}`;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'memory-chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-labelledby', `${id}-chart-title`);
  svg.setAttribute('width', '100%');
  const title = document.createElementNS(SVG, 'title');
  title.id = `${id}-chart-title`;
  svg.append(title);
  const chartBox = h('div', { class: 'chart-box' }, svg);
  const card = h('article', { class: 'card gpu-card', 'data-testid': 'gpu-card', 'aria-labelledby': `${id}-title` },
    h('div', { class: 'card-head' },
      h('h3', { id: `${id}-title` }, h('span', { class: 'device-name' }), h('span', { class: 'gpu-model' })),
      h('span', { class: 'badge usage' })),
    h('div', { class: 'usage-bar', role: 'img' },
      PARTS.map(([field]) => h('span', { class: `seg ${field}` }))),
    h('dl', { class: 'ledger' },
      PARTS.map(([field, label]) => ledgerItem(field, label, field)),
      ledgerItem('total', 'Total', null),
      ledgerItem('allocatable', 'Allocatable', null),
      ledgerItem('usage_percent', 'steno of allocatable', null),
      ledgerItem('compute', 'Compute', null)),
    h('figure', { class: 'chart' },
      h('figcaption', {}, 'Memory, last 15 minutes'),
      chartBox));
  card.chartBox = chartBox;
  card.svg = svg;
  panel.observer.observe(chartBox);
  chartBox.card = card;
  return card;
}

function updateGpuCard(card, gpu, panel) {
  setAttr(card, 'data-device', gpu.device);
  setAttr(card, 'data-present', gpu.present === false ? 'false' : 'true');
  card.gpu = gpu;
  setText(card.querySelector('.device-name'), gpu.device);
  setText(card.querySelector('.gpu-model'), gpu.name || '');
  // In use on the card (steno's and other tenants'), as the memory alerts count it.
  const inUse = (100 * ((gpu.steno || 0) + (gpu.other || 0))) / Math.max(1, gpu.total || 0);
  setText(card.querySelector('.badge.usage'), gpu.present === false ? 'not present' : `${percent(inUse)} in use`);
  const total = Math.max(1, gpu.total || 0);
  // The bar spans the whole card: what is neither steno's, another tenant's nor available is
  // held back (the reserve plus the scheduler's safety margin), drawn with the reserve.
  const v = {};
  for (const [field] of PARTS) v[field] = Math.max(0, gpu[field] || 0);
  v.reserved = Math.max(v.reserved, total - v.steno - v.other - v.available);
  const parts = [];
  for (const [field, label] of PARTS) {
    card.querySelector(`.seg.${field}`).style.width = `${((v[field] / total) * 100).toFixed(2)}%`;
    parts.push(`${field === 'reserved' ? 'reserved and safety margin' : label} ${bytes(v[field])}`);
  }
  setAttr(card.querySelector('.usage-bar'), 'aria-label',
    `Memory of ${gpu.device}: ${parts.join(', ')}, of ${bytes(gpu.total)} in total`);
  for (const field of ['reserved', 'steno', 'other', 'available', 'total', 'allocatable']) {
    const dd = card.querySelector(`dd[data-field="${field}"]`);
    setText(dd, bytes(gpu[field]));
    setAttr(dd, 'data-bytes', gpu[field] ?? '');
  }
  const share = card.querySelector('dd[data-field="usage_percent"]');
  setText(share, percent(gpu.usage_percent));
  setAttr(share, 'title', 'steno\'s share of the memory it may allocate');
  updateCompute(card.querySelector('dd[data-field="compute"]'), gpu.compute);
  panel.drawChart(card);
}

function createCpuCard() {
  return h('article', { class: 'card cpu-card', 'data-testid': 'cpu-card', 'aria-labelledby': 'cpu-title' },
    h('div', { class: 'card-head' }, h('h3', { id: 'cpu-title' }, 'CPU'), h('span', { class: 'badge usage' })),
    h('div', { class: 'usage-bar', role: 'img' },
      h('span', { class: 'seg steno' }), h('span', { class: 'seg available' })),
    h('dl', { class: 'ledger' },
      ledgerItem('cores', 'Cores', null),
      ledgerItem('used_threads', 'Threads held', 'steno'),
      ledgerItem('computing_threads', 'Threads computing', null),
      ledgerItem('available_threads', 'Threads free', 'available'),
      ledgerItem('compute', 'Compute', null)));
}

function updateCpuCard(card, cpu) {
  const cores = Math.max(1, cpu.cores || 0);
  const used = cpu.used_threads || 0;
  setText(card.querySelector('.badge.usage'), `${cpu.computing_threads ?? 0} of ${cpu.cores} threads computing`);
  card.querySelector('.seg.steno').style.width = `${Math.min(100, (used / cores) * 100).toFixed(1)}%`;
  card.querySelector('.seg.available').style.width = `${Math.max(0, 100 - (used / cores) * 100).toFixed(1)}%`;
  setAttr(card.querySelector('.usage-bar'), 'aria-label', `CPU: ${used} threads in use of ${cpu.cores} cores`);
  for (const f of ['cores', 'used_threads', 'computing_threads', 'available_threads']) {
    setText(card.querySelector(`dd[data-field="${f}"]`), cpu[f] ?? '—');
  }
  updateCompute(card.querySelector('dd[data-field="compute"]'), cpu.compute);
}

export class DevicePanel {
  constructor(container, emptyNote) {
    this.container = container;
    this.emptyNote = emptyNote;
    this.samples = new Map();  // device → [{t, total, reserved, steno, other, available}]
    this.windowMs = 900_000;
    this.now = Date.now();
    this.observer = new ResizeObserver((entries) => {
      for (const e of entries) if (e.target.card) this.drawChart(e.target.card);
    });
  }

  // From the stream's hello: the server's recent history, replacing what the page had.
  seed(history) {
    if (!history) return;
    if (history.window_s) this.windowMs = history.window_s * 1000;
    this.samples.clear();
    for (const [device, list] of Object.entries(history.devices || {})) {
      this.samples.set(device, list.slice().sort((a, b) => a.t - b.t));
    }
  }

  update(snapshot) {
    this.now = snapshot.time_ms;
    const gpus = snapshot.gpus || [];
    for (const g of gpus) {
      const list = this.samples.get(g.device) || [];
      if (list.length === 0 || list[list.length - 1].t < snapshot.time_ms) {
        list.push({ t: snapshot.time_ms, total: g.total, reserved: g.reserved, steno: g.steno,
                    other: g.other, available: g.available });
      }
      const cutoff = snapshot.time_ms - this.windowMs - 10_000;
      while (list.length > 0 && list[0].t < cutoff) list.shift();
      this.samples.set(g.device, list);
    }
    const cards = gpus.map((g) => ({ kind: 'gpu', key: `gpu:${g.device}`, data: g }));
    if (gpus.length === 0 && snapshot.cpu) cards.push({ kind: 'cpu', key: 'cpu', data: snapshot.cpu });
    syncChildren(this.container, cards, (c) => c.key,
      (c) => (c.kind === 'gpu' ? createGpuCard(c.data, this) : createCpuCard()),
      (node, c) => (c.kind === 'gpu' ? updateGpuCard(node, c.data, this) : updateCpuCard(node, c.data)));
    this.emptyNote.hidden = cards.length > 0;
  }

  drawChart(card) {
    if (!card.gpu || !card.chartBox.isConnected) return;
    const samples = this.samples.get(card.gpu.device) || [];
    const width = card.chartBox.clientWidth;
    if (width <= 0) return;
    drawMemoryChart(card.svg, samples, { now: this.now, windowMs: this.windowMs, width });
    const last = samples[samples.length - 1];
    setText(card.svg.firstElementChild, last
      ? `Memory of ${card.gpu.device} over the last ${Math.round(this.windowMs / 60_000)} minutes; now steno ${bytes(last.steno)}, other tenants ${bytes(last.other)}, reserved ${bytes(last.reserved)} of ${bytes(last.total)}`
      : `Memory of ${card.gpu.device}: no samples yet`);
  }
}
