// steno's live dashboard: one SSE stream (GET /v1/events, or /v1/events?job=ID while a job is
// followed) feeds every panel; actions (upload, cancel, unload, downloads) are plain fetches.
// Stream events: hello (history), snapshot (every second), and for a followed job state,
// progress and segment. The modules: sse.js (stream), api.js (requests, API key), gpus.js
// (device cards), chart.js (memory chart), tables.js (runners, jobs), nodes.js (the nodes
// sharing the job queue, when the server shares it), upload.js (form, live transcript),
// jobdetail.js (a job's node and attempts), live.js (live captions from the microphone over the
// /v1/realtime WebSocket), format.js and dom.js (helpers).
import { apiKey, listModels, setApiKey, cancelJob, unloadModel } from './api.js';
import { setAttr, setText, h, syncChildren } from './dom.js';
import { FINAL_STATES } from './format.js';
import { DevicePanel } from './gpus.js';
import { JobDetailPanel } from './jobdetail.js';
import { LiveCaptionsPanel } from './live.js';
import { renderNodes } from './nodes.js';
import { EventStream } from './sse.js';
import { renderJobs, renderRunners, tickRunners } from './tables.js';
import { UploadPanel } from './upload.js';

const $ = (id) => document.getElementById(id);

const state = {
  clockOffsetMs: 0,  // server time − browser time
  snapshot: null,
  models: [],
  keySaved: false,
};
const serverNow = () => Date.now() + state.clockOffsetMs;

// ---- notices and the API key ------------------------------------------------------------------

function notify(message, kind = 'info') {
  const el = $('notice');
  setText(el, message);
  el.dataset.kind = kind;
  clearTimeout(notify.timer);
  if (kind !== 'error') notify.timer = setTimeout(() => setText(el, ''), 8000);
}

function showKeyForm(message) {
  const form = $('key-form');
  form.hidden = false;
  $('key-toggle').setAttribute('aria-expanded', 'true');
  if (message) setText($('key-message'), message);
}

// A 401: the key field, with what to do.
function keyNeeded(message) {
  showKeyForm(apiKey()
    ? `The saved API key was refused (${message || '401'}). Enter a valid one.`
    : 'This server needs an API key. Enter one to see the dashboard.');
}

function onApiError(err) {
  if (err.status === 401) {
    keyNeeded(err.message);
    $('api-key').focus();
  }
  notify(err.message, 'error');
}

$('key-toggle').addEventListener('click', () => {
  const form = $('key-form');
  form.hidden = !form.hidden;
  $('key-toggle').setAttribute('aria-expanded', String(!form.hidden));
  if (!form.hidden) $('api-key').focus();
});
$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setApiKey($('api-key').value.trim());
  $('api-key').value = '';
  setText($('key-message'), apiKey() ? 'Key saved in this browser.' : 'No key saved.');
  state.keySaved = true;  // the form folds away once the stream is live with it
  stream.restart();
  loadModels();
});
$('key-clear').addEventListener('click', () => {
  setApiKey('');
  setText($('key-message'), 'Key forgotten.');
  stream.restart();
});

// ---- connection -------------------------------------------------------------------------------

function showConnection(s, detail) {
  const el = $('connection');
  const text = {
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: detail.delayMs ? `Disconnected, retrying in ${Math.ceil(detail.delayMs / 1000)} s` : 'Reconnecting…',
    unauthorized: 'API key needed',
  }[s];
  if (s === 'live' && state.keySaved) {
    state.keySaved = false;
    $('key-form').hidden = true;
    $('key-toggle').setAttribute('aria-expanded', 'false');
  }
  if (el.dataset.state === s && s !== 'reconnecting') return;
  el.dataset.state = s;
  setText(el, text);
  if (detail.error) setAttr(el, 'title', detail.error);
  if (s === 'unauthorized') keyNeeded(detail.message);
}

// ---- snapshot → panels ------------------------------------------------------------------------

const devices = new DevicePanel($('device-cards'), $('devices-empty'));
const actions = {
  async unload(model, button) {
    button.disabled = true;
    try {
      await unloadModel(model);
      notify(`Unloading ${model}.`);
    } catch (err) {
      onApiError(err);
    } finally {
      button.disabled = false;
    }
  },
  async cancel(id, button) {
    button.disabled = true;
    try {
      await cancelJob(id);
      notify(`Cancelled job ${id}.`);
    } catch (err) {
      onApiError(err);
    } finally {
      button.disabled = false;
    }
  },
  details(id) {
    detail.open(id);
  },
  follow(job) {
    upload.follow(job);
    if (!FINAL_STATES.has(job.state)) stream.restart();  // a finished job's segments come from its result
    $('live').scrollIntoView({ block: 'nearest' });
  },
};

function renderAlerts(alerts) {
  const banner = $('alerts');
  const list = $('alerts-list');
  syncChildren(list, alerts, (a) => a.key || a.name,
    (a) => h('li', { 'data-testid': 'alert' }, h('span', { class: 'severity' }), h('span', { class: 'message' })),
    (li, a) => {
      setAttr(li, 'data-severity', a.severity);
      setAttr(li, 'data-name', a.name);
      const sev = li.querySelector('.severity');
      setText(sev, a.severity || 'warning');
      setAttr(sev, 'data-severity', a.severity);
      setText(li.querySelector('.message'), a.message || a.name);
    });
  banner.hidden = alerts.length === 0;
  setAttr(banner, 'data-severity', alerts.some((a) => a.severity === 'critical') ? 'critical' : 'warning');
}

function renderQueue(queue, counts) {
  if (!queue) return;
  const p = queue.by_priority || {};
  const parts = [`${queue.queued} queued`];
  if (queue.queued > 0) parts[0] += ` (high ${p.high || 0}, normal ${p.normal || 0}, low ${p.low || 0})`;
  parts.push(`${queue.running} running`);
  if (counts) parts.push(`${counts.completed || 0} completed, ${counts.failed || 0} failed, ${counts.cancelled || 0} cancelled`);
  setText($('queue-summary'), parts.join(' · '));
}

// Only a server sharing its job queue sends `nodes`; the section stays hidden otherwise.
function renderNodesSection(nodes, error) {
  const shown = Array.isArray(nodes);
  $('nodes-section').hidden = !shown;
  if (!shown) return;
  renderNodes($('nodes'), nodes);
  $('nodes-wrap').hidden = nodes.length === 0;
  const el = $('nodes-error');
  el.hidden = !error;
  setText(el, error ? `Cannot read the cluster's nodes: ${error.message || error.code}` : '');
}

function curlExample() {
  const model = state.models[0] || 'MODEL';
  const auth = apiKey() ? ' -H "Authorization: Bearer $STENO_API_KEY"' : '';
  return `curl${auth} -F file=@audio.wav -F model=${model} ${location.origin}/v1/audio/transcriptions`;
}

function onSnapshot(s) {
  state.snapshot = s;
  state.clockOffsetMs = s.time_ms - Date.now();
  devices.update(s);
  const runners = s.runners || [];
  const jobs = s.jobs || [];
  renderRunners($('runners'), runners, actions, s.time_ms);
  $('runners-empty').hidden = runners.length > 0;
  $('runners-wrap').hidden = runners.length === 0;
  renderJobs($('jobs'), jobs, actions, s.time_ms);
  $('jobs-empty').hidden = jobs.length > 0;
  $('jobs-wrap').hidden = jobs.length === 0;
  renderQueue(s.queue, s.counts);
  renderAlerts(s.alerts || []);
  renderNodesSection(s.nodes, s.nodes_error);
  $('empty-state').hidden = runners.length > 0 || jobs.length > 0;
  setText($('curl-example'), curlExample());
  const followed = jobs.find((j) => j.id === upload.following());
  if (followed) upload.onJob(followed);
  const detailed = jobs.find((j) => j.id === detail.shownId());
  if (detailed) detail.onSnapshotJob(detailed);
}

function onEvent(type, data) {
  switch (type) {
    case 'hello':
      if (data.time_ms) state.clockOffsetMs = data.time_ms - Date.now();
      devices.seed(data.history);
      break;
    case 'snapshot':
      onSnapshot(data);
      break;
    case 'state':
      upload.onJob(data);
      break;
    case 'progress':
      upload.onProgress(data);
      break;
    case 'segment':
      upload.onSegment(data);
      break;
    default:
      break;
  }
}

// ---- wiring -----------------------------------------------------------------------------------

const upload = new UploadPanel({
  form: $('upload-form'), status: $('upload-status'), live: $('live'), liveTitle: $('live-heading'),
  liveState: $('live-state'), liveProgress: $('live-progress'), segments: $('segments'),
  downloads: $('downloads'),
}, {
  onSubmitted: () => stream.restart(),
  onError: onApiError,
});

const captions = new LiveCaptionsPanel({
  form: $('captions-form'), model: $('captions-model'), language: $('captions-language'),
  start: $('captions-start'), stop: $('captions-stop'), status: $('captions-status'), list: $('captions-list'),
}, { onError: (err) => notify(err.message, 'error') });

const detail = new JobDetailPanel({
  section: $('job-detail'), title: $('job-detail-heading'), attempts: $('job-detail-attempts'),
  empty: $('job-detail-empty'), close: $('job-detail-close'),
  fields: {
    id: $('job-detail-id'), state: $('job-detail-state'), model: $('job-detail-model'),
    node: $('job-detail-node'), attempt: $('job-detail-attempt'), created: $('job-detail-created'),
    finished: $('job-detail-finished'), error: $('job-detail-error'),
  },
}, { onError: onApiError, now: serverNow });

// While a job is followed and not final, the stream carries its events; afterwards a reconnect
// goes back to the plain stream (the transcript stays on screen).
const stream = new EventStream({
  url: () => {
    const id = upload.following();
    return id && !upload.finished() ? `/v1/events?job=${encodeURIComponent(id)}` : '/v1/events';
  },
  onEvent,
  onStatus: showConnection,
});

async function loadModels() {
  try {
    state.models = await listModels();
    upload.setModels(state.models);
    captions.setModels(state.models);
    setText($('curl-example'), curlExample());
  } catch (err) {
    if (err.status === 401) keyNeeded(err.message);
    else notify(`Could not list the models: ${err.message}`, 'error');
  }
}

setInterval(() => {
  if (!state.snapshot) return;
  tickRunners($('runners'), serverNow());
}, 1000);

stream.restart();
loadModels();
