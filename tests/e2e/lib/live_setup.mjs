// What the live-caption e2e tests and bench/realtime_latency.mjs share: the server flags, the
// input formats, a models dir with the real VAD model, and the check that a session's items
// are the dialogue's utterances.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Checks, assert } from './check.mjs';
import { installDeps } from './deps.mjs';
import { timed } from './http.mjs';
import { dialogue, loadWs } from './realtime.mjs';
import { removeOnExit, sleep } from './server.mjs';

// Greedy decoding without temperature fallback on both paths (live and POST): the same audio
// gives the same text, which the transcript comparison relies on.
export const SERVE_ARGS = ['--temperature-inc', '0', '--beam-size', '1'];

// transcription_session.update fields for 16 kHz PCM16 (steno's "pcm16_16000") and for
// OpenAI's pcm16 (24 kHz).
export const FORMAT_16K = { input_audio_format: 'pcm16_16000' };
export const FORMAT_24K = { input_audio_format: 'pcm16' };

// The real Silero model beside the project (../shared/models), or '' when it is not there.
export function sileroModel() {
  const p = path.join(process.env.STENO_SOURCE_DIR || '.', '..', 'shared', 'models', 'ggml-silero-v6.2.0.bin');
  return fs.existsSync(p) ? path.resolve(p) : '';
}

// TMP/models holding the test model as MODEL.bin and a link to the Silero model; null when
// there is no Silero model.
export function modelsDirWithVad(tmp, data, model) {
  const silero = sileroModel();
  if (!silero) return null;
  const dir = path.join(tmp, 'models');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(data, 'models', 'tiny-random.bin'), path.join(dir, `${model}.bin`));
  fs.symlinkSync(silero, path.join(dir, 'ggml-silero-v6.2.0.bin'));
  return dir;
}

// What every live-caption test starts with: its Checks named `name`, a temporary directory
// removed on exit, TMP/models with `model` and the Silero model, the pinned `ws` package's
// WebSocket and the synthesised dialogue under DATA/live. Exits 77 (skipped) when the Silero
// model is not there, and with the checks' outcome when the package cannot be installed.
export async function liveTest(name, data, model) {
  const checks = new Checks(name);
  const tmp = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), `steno-${name}-`)));
  const modelsDir = modelsDirWithVad(tmp, data, model);
  if (!modelsDir) {
    console.log('SKIP: the Silero VAD model is not in ../shared/models');
    process.exit(77);
  }
  const depsDir = await checks.step('npm ci of the pinned ws package', () => installDeps());
  if (!depsDir) process.exit(checks.finish());
  return { checks, tmp, modelsDir, WebSocket: loadWs(depsDir), talk: dialogue(path.join(data, 'live')) };
}

// An item's audio bounds in ms of the session's timeline, as the server reported them: the
// completed event's (steno's audio_start_ms / audio_end_ms: exactly the audio it decoded), else
// speech_started's and speech_stopped's.
export function itemTimes(it) {
  const start = it.completed?.audio_start_ms ?? it.started?.audio_start_ms;
  const end = it.completed?.audio_end_ms ?? it.stopped?.audio_end_ms;
  return { start, end };
}

// The session's completed items, checked to be `utterances` one for one and in order: each
// completed after the one before, its bounds around its utterance (within `slackMs`) and clear
// of the neighbours. Throws with the details; returns the items.
export function matchUtterances(session, utterances, slackMs = 400) {
  const items = session.completedItems();
  const shown = items.map((it) => ({ id: it.id, ...itemTimes(it), text: it.completed.transcript }));
  assert(items.length === utterances.length,
         `${items.length} completed items for ${utterances.length} utterances: ${JSON.stringify(shown)}`);
  items.forEach((it, i) => {
    const u = utterances[i];
    const { start, end } = itemTimes(it);
    assert(Number.isFinite(start) && Number.isFinite(end), `item ${i + 1} has no times: ${JSON.stringify(shown[i])}`);
    const prevEnd = i > 0 ? utterances[i - 1].end_ms : 0;
    const nextStart = i + 1 < utterances.length ? utterances[i + 1].start_ms : Infinity;
    assert(start <= u.start_ms + slackMs && start >= prevEnd && end >= u.end_ms - slackMs && end <= nextStart,
           `item ${i + 1} spans ${start}..${end} ms, utterance ${i + 1} ${u.start_ms}..${u.end_ms} ms`);
    if (i > 0) assert(it.completed.at >= items[i - 1].completed.at, `item ${i + 1} completed before item ${i}`);
  });
  return items;
}

// Extra transcription_session.update fields for the many-session test and benchmark (fewer
// partial decodes, so 20 sessions stay cheap on 2 cores).
export const LOAD_SESSION = {};

// The live sessions a runner of GET /v1/runners holds.
export function runnerSessions(r) {
  return r.live_sessions ?? r.busy_streams ?? 0;
}

// GET /v1/runners of `model` ({object: "list", data: [...]}).
export async function runnersOf(url, model, headers = {}) {
  const res = await timed(`${url}/v1/runners`, { headers });
  assert(res.status === 200, `GET /v1/runners: ${res.status} ${res.text}`);
  return res.json.data.filter((r) => r.model === model);
}

// Polls GET /v1/runners every 100 ms until pred(runners of `model`) holds; throws with the last
// answer after `timeoutMs`.
export async function waitRunners(url, model, pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = await runnersOf(url, model);
    if (pred(list)) return list;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; runners: ${JSON.stringify(list)}`);
    await sleep(100);
  }
}
