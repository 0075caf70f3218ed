// The 15-minute memory chart of a GPU card, drawn as inline SVG at the size it is shown (so text
// stays legible on a phone): stacked areas for reserved, steno and other tenants' memory, a
// dashed line for the card's total, a GiB axis and a minutes axis. No library.
import { bytes } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const GAP_MS = 30_000;  // samples further apart than this are not joined (the page was offline)
const PAD = { left: 52, right: 8, top: 10, bottom: 22 };

function el(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// Runs of samples with no gap longer than GAP_MS.
function runs(samples) {
  const out = [];
  let cur = [];
  for (const s of samples) {
    if (cur.length > 0 && s.t - cur[cur.length - 1].t > GAP_MS) {
      out.push(cur);
      cur = [];
    }
    cur.push(s);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

// The area between lower(s) and upper(s) over one run, as a path.
function band(run, x, y, lower, upper) {
  const top = run.map((s) => `${x(s.t).toFixed(1)},${y(upper(s)).toFixed(1)}`);
  const bottom = run.slice().reverse().map((s) => `${x(s.t).toFixed(1)},${y(lower(s)).toFixed(1)}`);
  return `M${top.join('L')}L${bottom.join('L')}Z`;
}

// Draws `samples` ([{t, total, reserved, steno, other}], t in unix ms, oldest first) for the
// window ending at `now` into `svg` (an <svg> element whose first child is its <title>).
export function drawMemoryChart(svg, samples, { now, windowMs, width, height = 150 }) {
  const w = Math.max(200, Math.round(width));
  svg.setAttribute('viewBox', `0 0 ${w} ${height}`);
  svg.setAttribute('height', height);
  const title = svg.firstElementChild;
  while (title.nextSibling) title.nextSibling.remove();

  const from = now - windowMs;
  const shown = samples.filter((s) => s.t >= from - 5_000);
  const max = Math.max(1, ...shown.map((s) => s.total || 0));
  const plotW = w - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + ((Math.max(t, from) - from) / windowMs) * plotW;
  const y = (v) => PAD.top + plotH - (Math.min(Math.max(v, 0), max) / max) * plotH;

  const grid = el('g', { class: 'chart-grid' });
  for (const f of [0, 0.5, 1]) {
    const yy = y(max * f);
    grid.append(el('line', { x1: PAD.left, x2: w - PAD.right, y1: yy, y2: yy }));
    grid.append(el('text', { x: PAD.left - 6, y: yy + 4, 'text-anchor': 'end' }, bytes(max * f)));
  }
  const minutes = windowMs / 60_000;
  for (const m of [minutes, (minutes * 2) / 3, minutes / 3, 0]) {
    const xx = x(now - m * 60_000);
    const anchor = m === minutes ? 'start' : m === 0 ? 'end' : 'middle';
    grid.append(el('text', { x: xx, y: height - 6, 'text-anchor': anchor },
      m === 0 ? 'now' : `−${Math.round(m)} min`));
  }
  svg.append(grid);

  const reserved = (s) => s.reserved || 0;
  const steno = (s) => reserved(s) + (s.steno || 0);
  const other = (s) => steno(s) + (s.other || 0);
  for (const run of runs(shown)) {
    svg.append(el('path', { class: 'area reserved', d: band(run, x, y, () => 0, reserved) }));
    svg.append(el('path', { class: 'area steno', d: band(run, x, y, reserved, steno) }));
    svg.append(el('path', { class: 'area other', d: band(run, x, y, steno, other) }));
    const total = run.map((s) => `${x(s.t).toFixed(1)},${y(s.total || 0).toFixed(1)}`);
    svg.append(el('path', { class: 'total-line', d: `M${total.join('L')}` }));
  }
}
