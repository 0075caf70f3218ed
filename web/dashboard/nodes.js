// The nodes table: on a server that shares its job queue with others (serve --store postgres://),
// one row per node as the snapshot's `nodes` lists them (GET /v1/cluster): its name (this node
// marked), whether it is live and when it last published, its URL, its GPUs with their memory,
// its runners and its jobs. Like tables.js, every cell carries data-label for the stacked cards
// of narrow screens.
import { h, setAttr, setText, syncChildren } from './dom.js';
import { bytes, duration } from './format.js';

function cell(label, ...children) {
  return h('td', { 'data-label': label }, ...children);
}

function createNodeRow() {
  return h('tr', { 'data-testid': 'node-row' },
    cell('Node', h('span', { class: 'node-name' },
      h('span', { class: 'node-id' }), h('span', { class: 'badge node-self', text: 'this node' }))),
    cell('Status', h('span', { class: 'state-badge node-status', 'data-testid': 'node-status' })),
    cell('URL', h('a', { class: 'node-url' })),
    cell('GPUs', h('span', { class: 'node-gpus' })),
    cell('Runners', h('span', { class: 'node-runners' })),
    cell('Jobs', h('span', { class: 'node-jobs' })));
}

// "live · 2.0 s ago", "not live · 3 min 05 s ago".
export function nodeStatusText(node) {
  const ago = `${duration((node.age_ms ?? 0) / 1000)} ago`;
  return `${node.live ? 'live' : 'not live'} · ${ago}`;
}

// "1 GPU · 2.1 GiB / 8.0 GiB used"; "none" without GPUs.
export function nodeGpusText(devices) {
  if (!devices.length) return 'none';
  let used = 0;
  let total = 0;
  for (const d of devices) {
    used += d.used_bytes ?? 0;
    total += d.total_bytes ?? 0;
  }
  return `${devices.length} GPU${devices.length === 1 ? '' : 's'} · ${bytes(used)} / ${bytes(total)} used`;
}

function updateNodeRow(row, node) {
  const devices = Array.isArray(node.devices) ? node.devices : [];
  const runners = Array.isArray(node.runners) ? node.runners : [];
  const ledger = node.ledger || {};
  setAttr(row, 'data-node', node.id);
  setAttr(row, 'data-self', node.self ? 'true' : 'false');
  setAttr(row, 'data-live', node.live ? 'true' : 'false');
  setText(row.querySelector('.node-id'), node.id);
  row.querySelector('.node-self').hidden = !node.self;
  const status = row.querySelector('.node-status');
  setText(status, nodeStatusText(node));
  setAttr(status, 'data-state', node.live ? 'live' : 'not-live');
  // A link only to a web address (the URL is what the node published about itself).
  const link = row.querySelector('.node-url');
  const url = typeof node.url === 'string' ? node.url : '';
  setText(link, url || '—');
  setAttr(link, 'href', /^https?:\/\//i.test(url) ? url : null);
  setText(row.querySelector('.node-gpus'), nodeGpusText(devices));
  setText(row.querySelector('.node-runners'), String(runners.length));
  setText(row.querySelector('.node-jobs'), `${ledger.running ?? 0} running · ${ledger.queued ?? 0} queued`);
}

export function renderNodes(tbody, nodes) {
  syncChildren(tbody, nodes, (n) => n.id, createNodeRow, updateNodeRow);
}
