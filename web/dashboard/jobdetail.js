// The job detail panel: where a job ran. Opened from a job row's Details button, it reads
// GET /v1/jobs/{id} and shows the job's state, model, node (the one running it, or that ran its
// last attempt), times and error, and one row per attempt: number, node, start, end, outcome and
// the reason a run ended otherwise than completed. It reads the job again when a snapshot shows
// it changed (state, attempt or node), never on every snapshot.
import { getJson } from './api.js';
import { h, setAttr, setText, syncChildren } from './dom.js';
import { clock, duration } from './format.js';

function cell(label, ...children) {
  return h('td', { 'data-label': label }, ...children);
}

// "14:03:09" for a unix-ms time; "—" for none.
function timeText(ms) {
  return ms ? clock(ms) : '—';
}

// An attempt's outcome as shown: "running" while it has none.
export function outcomeText(a) {
  return a.outcome || 'running';
}

// How long an attempt ran (until `now` while it runs): "3.2 s".
export function attemptDuration(a, now) {
  if (!a.started_ms) return '—';
  return duration(((a.ended_ms || now) - a.started_ms) / 1000);
}

function createAttemptRow() {
  return h('tr', { 'data-testid': 'attempt-row' },
    cell('Attempt', h('span', { class: 'attempt-no' })),
    cell('Node', h('span', { class: 'attempt-node' })),
    cell('Started', h('span', { class: 'attempt-start' })),
    cell('Ended', h('span', { class: 'attempt-end' })),
    cell('Ran', h('span', { class: 'attempt-took' })),
    cell('Outcome', h('span', { class: 'state-badge attempt-outcome', 'data-testid': 'attempt-outcome' })),
    cell('Reason', h('span', { class: 'attempt-reason' })));
}

function updateAttemptRow(row, a, now) {
  setAttr(row, 'data-attempt', a.attempt);
  setAttr(row, 'data-node', a.node);
  setText(row.querySelector('.attempt-no'), `#${a.attempt}`);
  setText(row.querySelector('.attempt-node'), a.node || '—');
  setText(row.querySelector('.attempt-start'), timeText(a.started_ms));
  setText(row.querySelector('.attempt-end'), timeText(a.ended_ms));
  setText(row.querySelector('.attempt-took'), attemptDuration(a, now));
  const outcome = row.querySelector('.attempt-outcome');
  setText(outcome, outcomeText(a));
  setAttr(outcome, 'data-state', a.outcome || 'processing');
  setText(row.querySelector('.attempt-reason'), a.error ? (a.error.message || a.error.code) : '');
}

export class JobDetailPanel {
  // els: {section, title, fields: {state, model, node, attempt, created, finished, error},
  // attempts (tbody), empty, close}; onError(err) for a failed read.
  constructor(els, { onError, now }) {
    this.els = els;
    this.onError = onError;
    this.now = now;
    this.job = null;
    this.seen = '';
    els.close.addEventListener('click', () => this.close());
  }

  shownId() {
    return this.job ? this.job.id : null;
  }

  async open(id) {
    this.job = { id };
    this.seen = '';
    this.els.section.hidden = false;
    await this.load(id);
    this.els.section.scrollIntoView({ block: 'nearest' });
    this.els.title.focus();
  }

  close() {
    this.job = null;
    this.els.section.hidden = true;
  }

  // A snapshot's row for the shown job: read it again when it moved on.
  onSnapshotJob(job) {
    if (!this.job || job.id !== this.job.id) return;
    const key = `${job.state}/${job.attempt}/${job.node || ''}`;
    if (key !== this.seen) this.load(job.id);
  }

  async load(id) {
    let job;
    try {
      job = await getJson(`/v1/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      this.onError(err);
      return;
    }
    if (!this.job || this.job.id !== id) return;  // closed or another job opened meanwhile
    this.job = job;
    this.seen = `${job.state}/${job.attempt}/${job.node || ''}`;
    this.render(job);
  }

  render(job) {
    const { section, title, fields, attempts, empty } = this.els;
    setAttr(section, 'data-job-id', job.id);
    setAttr(section, 'data-state', job.state);
    setText(title, `Job ${job.filename || job.id}`);
    setText(fields.id, job.id);
    setText(fields.state, job.state);
    setAttr(fields.state, 'data-state', job.state);
    setText(fields.model, job.model || '—');
    setText(fields.node, job.node || 'not run yet');
    setText(fields.attempt, String(job.attempt ?? '—'));
    setText(fields.created, timeText(job.created_ms));
    setText(fields.finished, timeText(job.finished_ms));
    setText(fields.error, job.error ? (job.error.message || job.error.code) : '—');
    const runs = Array.isArray(job.attempts) ? job.attempts : [];
    const now = this.now();
    syncChildren(attempts, runs, (a) => a.attempt, createAttemptRow, (row, a) => updateAttemptRow(row, a, now));
    empty.hidden = runs.length > 0;
    attempts.closest('.table-wrap').hidden = runs.length === 0;
  }
}
