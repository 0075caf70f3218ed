// The runners table (model and its runner kind, device, VRAM, streams, live caption sessions,
// keep-alive countdown, unload) and the jobs table (state, priority, progress, real-time factor,
// durations, follow, details, cancel). Rows are keyed and updated in place; buttons call back
// into the app (actions.unload / follow / details / cancel).
// Every cell carries data-label: on narrow screens the CSS shows rows as stacked cards with it.
import { h, setAttr, setText, syncChildren } from './dom.js';
import { FINAL_STATES, bytes, countdown, duration, percent, rtf } from './format.js';

function cell(label, ...children) {
  return h('td', { 'data-label': label }, ...children);
}

// ---- runners ----------------------------------------------------------------------------------

function createRunnerRow(r, actions) {
  const button = h('button', { type: 'button', class: 'button small secondary', text: 'Unload' });
  button.addEventListener('click', () => actions.unload(button.closest('tr').runner.model, button));
  return h('tr', { 'data-testid': 'runner-row' },
    cell('Model', h('span', { class: 'model-name' }), ' ',
      h('span', { class: 'runner-kind muted', 'data-testid': 'runner-kind' })),
    cell('Device', h('span', { class: 'device' })),
    cell('State', h('span', { class: 'state' })),
    cell('VRAM', h('span', { class: 'vram' })),
    cell('Streams', h('span', { class: 'streams' })),
    cell('Live', h('span', { class: 'live-sessions', 'data-testid': 'runner-live-sessions' })),
    cell('Unloads in', h('span', { class: 'countdown', 'data-testid': 'runner-countdown' })),
    cell('Actions', button));
}

function updateRunnerRow(row, r) {
  row.runner = r;
  setAttr(row, 'data-model', r.model);
  setAttr(row, 'data-device', r.device);
  setAttr(row, 'data-state', r.state);
  setText(row.querySelector('.model-name'), r.model);
  // A whisper model may have two runners: one timing words by DTW (asked for words), one not.
  const words = r.word_timing === 'dtw' ? ', DTW words' : '';
  setText(row.querySelector('.runner-kind'), r.kind ? `(${r.kind}${words})` : '');
  setText(row.querySelector('.device'), r.device);
  setText(row.querySelector('.state'), r.state);
  const vram = row.querySelector('.vram');
  setText(vram, r.device === 'cpu' ? `— (RAM ${bytes(r.bytes)})` : bytes(r.vram_bytes));
  setAttr(vram, 'data-bytes', r.vram_bytes ?? 0);
  setText(row.querySelector('.streams'), `${r.busy_streams ?? 0} / ${r.streams ?? 0} busy`);
  const live = row.querySelector('.live-sessions');
  setText(live, String(r.live_sessions ?? 0));
  setAttr(live, 'data-count', r.live_sessions ?? 0);
  setAttr(live, 'title', `${r.live_sessions ?? 0} live caption sessions on this runner`);
  const button = row.querySelector('button');
  setAttr(button, 'aria-label', `Unload ${r.model} from ${r.device}`);
}

// The countdown text of a runner at server time `now` (unix ms).
export function keepAliveText(r, now) {
  if (r.expires_at_ms !== null && r.expires_at_ms !== undefined) return countdown(r.expires_at_ms - now);
  if ((r.busy_streams || 0) > 0) return 'in use';
  return (r.keep_alive_s ?? -1) < 0 ? 'never (pinned)' : 'pinned';
}

export function renderRunners(tbody, runners, actions, now) {
  syncChildren(tbody, runners, (r) => r.id || `${r.model}@${r.device}`,
    (r) => createRunnerRow(r, actions), updateRunnerRow);
  tickRunners(tbody, now);
}

// Every second, between snapshots: the countdowns move on.
export function tickRunners(tbody, now) {
  for (const row of tbody.children) {
    if (row.runner) setText(row.querySelector('.countdown'), keepAliveText(row.runner, now));
  }
}

// ---- jobs -------------------------------------------------------------------------------------

function createJobRow(job, actions) {
  const follow = h('button', { type: 'button', class: 'button small secondary follow', text: 'Follow' });
  follow.addEventListener('click', () => actions.follow(follow.closest('tr').job));
  const details = h('button', { type: 'button', class: 'button small secondary details', text: 'Details' });
  details.addEventListener('click', () => actions.details(details.closest('tr').job.id));
  const cancel = h('button', { type: 'button', class: 'button small danger', text: 'Cancel' });
  cancel.addEventListener('click', () => actions.cancel(cancel.closest('tr').job.id, cancel));
  const bar = h('progress', { max: 100 });
  return h('tr', { 'data-testid': 'job-row' },
    cell('File', h('span', { class: 'file-cell' }, h('span', { class: 'file' }), h('span', { class: 'job-id' }))),
    cell('State', h('span', { class: 'state-badge', 'data-testid': 'job-state' })),
    cell('Priority', h('span', { class: 'priority' })),
    cell('Progress', h('span', { class: 'progress' }, bar, h('span', { class: 'progress-text' }))),
    cell('RTF', h('span', { class: 'rtf' })),
    cell('Audio', h('span', { class: 'audio' })),
    cell('Took', h('span', { class: 'took' })),
    cell('Actions', h('span', { class: 'actions' }, follow, details, cancel)));
}

function jobProgress(job) {
  if (job.state === 'completed') return 100;
  return typeof job.progress === 'number' ? job.progress : null;
}

function updateJobRow(row, job, now) {
  row.job = job;
  setAttr(row, 'data-job-id', job.id);
  setAttr(row, 'data-state', job.state);
  const name = job.filename || job.id;
  setText(row.querySelector('.file'), name);
  setAttr(row.querySelector('.file'), 'title', name);
  // Second line: the model and the id (the id is what the API and curl users need).
  const sub = `${job.model || '—'} · ${job.id}`;
  setText(row.querySelector('.job-id'), sub);
  setAttr(row.querySelector('.job-id'), 'title', sub);
  const badge = row.querySelector('.state-badge');
  setText(badge, job.state);
  setAttr(badge, 'data-state', job.state);
  if (job.error && job.error.message) setAttr(badge, 'title', job.error.message);
  setText(row.querySelector('.priority'), job.priority || 'normal');
  const p = jobProgress(job);
  const bar = row.querySelector('progress');
  // Indeterminate only while work is under way without a figure; a waiting or ended job shows 0.
  if (p === null && (job.state === 'loading' || job.state === 'processing')) bar.removeAttribute('value');
  else bar.value = p ?? 0;
  setAttr(bar, 'aria-label', `Progress of ${name}`);
  setText(row.querySelector('.progress-text'), p === null ? (bar.hasAttribute('value') ? '—' : '…') : percent(p));
  setText(row.querySelector('.rtf'), rtf(job.rtf));
  setText(row.querySelector('.audio'), duration(job.audio_seconds));
  let took = job.processing_s;
  if ((took === null || took === undefined) && job.started_ms && !job.finished_ms) took = (now - job.started_ms) / 1000;
  setText(row.querySelector('.took'), duration(took));
  const cancel = row.querySelector('.danger');
  cancel.hidden = FINAL_STATES.has(job.state);
  setAttr(cancel, 'aria-label', `Cancel ${name}`);
  setAttr(row.querySelector('.follow'), 'aria-label', `Follow ${name}: show its segments`);
  setAttr(row.querySelector('.details'), 'aria-label', `Details of ${name}: where it ran`);
}

export function renderJobs(tbody, jobs, actions, now) {
  syncChildren(tbody, jobs, (j) => j.id, (j) => createJobRow(j, actions), (row, j) => updateJobRow(row, j, now));
}
