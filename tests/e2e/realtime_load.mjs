#!/usr/bin/env node
// 20 live transcription sessions on one runner for a minute (issue 19): a real `steno serve` on a
// simulated GPU whose runner computes on the CPU (on the CPU device itself a 2-core machine gets
// one or two streams: streams × threads stay within the cores), 20 outside clients over the pinned `ws` package each stream the synthesised 24 kHz
// dialogue (~64 s, 14 utterances; starts staggered by 250 ms) in 100 ms chunks at real-time pace:
//   - GET /v1/runners shows one runner with all 20 sessions on it;
//   - no error event, and every session gets its 14 utterances, in order (no lost utterance);
//   - the server's memory stays flat: VmRSS at the end is within --rss-growth-mib (12) of what it
//     was 20 s in (every session open; 0.4 MiB of growth measured), while keeping the audio
//     would cost 20 × 44 s × 32 kB/s = 28 MB of PCM alone;
//   - a 21st client that disconnects mid-utterance (its socket destroyed, no close frame) frees
//     its stream at once: the live sessions in /v1/runners are back to 20 within 5 s.
// Exits 77 (skipped) when the Silero model is not there. RUN_SERIAL in ctest: its CPU load is
// only fair to other tests when nothing runs beside it.
//
//   STENO_BIN=build/steno STENO_TEST_DATA=build/test-data node tests/e2e/realtime_load.mjs
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { assert } from './lib/check.mjs';
import { FORMAT_24K, LOAD_SESSION, SERVE_ARGS, matchUtterances, liveTest, runnerSessions, waitRunners }
  from './lib/live_setup.mjs';
import { RealtimeSession, configure, dialogue, pcmChunks, realtimeUrl, sleep, streamAudio } from './lib/realtime.mjs';
import { startSteno, stopStenoChecked } from './lib/server.mjs';

const { values: opt } = parseArgs({ options: {
  sessions: { type: 'string', default: '20' },
  'rss-growth-mib': { type: 'string', default: '12' },
} });
const bin = process.env.STENO_BIN || 'build/steno';
const data = process.env.STENO_TEST_DATA || 'build/test-data';
const MODEL = 'tiny-random';
const SESSIONS = Number(opt.sessions);
const RSS_GROWTH = Number(opt['rss-growth-mib']) * 1024 * 1024;

const { checks, tmp, modelsDir, WebSocket, talk } = await liveTest('e2e.realtime_load', data, MODEL);

let server;
let code = 1;
try {
  server = await checks.step('steno serve starts on a simulated 8 GiB GPU, 21 streams per runner', () =>
    startSteno({ bin, dataDir: path.join(tmp, 'data'), modelsDir, args: [
      ...SERVE_ARGS, '--device', 'auto', '--simulate-gpus', '1x8GiB', '--max-streams', String(SESSIONS + 1),
      '--threads', '1', '--keep-alive', '-1'] }));
  if (server) await run(server.url);
} finally {
  if (server) await stopStenoChecked(checks, server);
  code = checks.finish();
}
process.exit(code);

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

async function run(url) {
  const { chunks, rate } = pcmChunks(talk.wav24, 100);
  assert(rate === 24000, `dialogue-24k.wav is ${rate} Hz`);
  const sessions = [];
  const opened = await checks.step(`${SESSIONS} sessions open and are configured`, async () => {
    for (let i = 0; i < SESSIONS; i++) sessions.push(new RealtimeSession(WebSocket, realtimeUrl(url)));
    await Promise.all(sessions.map(async (s) => {
      await s.opened;
      await configure(s, { model: MODEL, extra: { ...FORMAT_24K, ...LOAD_SESSION } });
    }));
    return true;
  });
  if (!opened) return;

  const t0 = performance.now();
  const streams = sessions.map((s, i) => sleep(i * 250).then(() => streamAudio(s, chunks, { chunkMs: 100 })));
  const rss = [];
  const sampler = setInterval(() => rss.push({ s: Math.round((performance.now() - t0) / 1000), bytes: rssBytes(server.pid) }), 5000);

  await checks.step(`GET /v1/runners: one runner holds all ${SESSIONS} sessions`, async () => {
    const list = await waitRunners(url, MODEL, (rs) => rs.some((r) => runnerSessions(r) >= SESSIONS), 30_000, `${SESSIONS} sessions on a runner`);
    assert(list.length === 1, `${list.length} runners of ${MODEL}: ${JSON.stringify(list)}`);
  });

  await sleep(Math.max(0, t0 + 15_000 - performance.now()));
  // The 21st session may get a stream of this runner or a runner of its own: either way the
  // total of live sessions tells when its stream is free.
  const total = (rs) => rs.reduce((n, r) => n + runnerSessions(r), 0);
  await checks.step('a client that disconnects mid-utterance frees its stream at once', async () => {
    const extra = new RealtimeSession(WebSocket, realtimeUrl(url));
    await extra.opened;
    await configure(extra, { model: MODEL, extra: { ...FORMAT_24K, ...LOAD_SESSION } });
    await waitRunners(url, MODEL, (rs) => total(rs) === SESSIONS + 1, 30_000, `${SESSIONS + 1} live sessions`);
    // Into the first utterance: speech started, not yet ended.
    const upTo = Math.ceil((talk.utterances[0].start_ms + 1500) / 100);
    const from = extra.events.length;
    await streamAudio(extra, chunks.slice(0, upTo), { chunkMs: 100 });
    await extra.waitFor((e) => e.type === 'input_audio_buffer.speech_started', { from, what: 'speech_started' });
    assert(!extra.events.slice(from).some((e) => e.type === 'input_audio_buffer.speech_stopped'),
           'the utterance ended before the disconnect');
    const cut = performance.now();
    await extra.terminate();
    await waitRunners(url, MODEL, (rs) => total(rs) === SESSIONS, 5000, `back to ${SESSIONS} live sessions after the disconnect`);
    console.log(`  stream freed ${Math.round(performance.now() - cut)} ms after the disconnect`);
  });

  await Promise.all(streams);
  await checks.step(`every session gets its ${talk.utterances.length} utterances in order, no error`, async () => {
    await Promise.all(sessions.map((s) => s.waitFor(
      () => s.completedItems().length >= talk.utterances.length || s.errors().length > 0 || s.closeInfo,
      { timeoutMs: 120_000, what: 'all completed' }).catch(() => {})));
    const problems = [];
    sessions.forEach((s, i) => {
      if (s.errors().length > 0) problems.push(`session ${i + 1}: errors ${JSON.stringify(s.errors())}`);
      else if (s.closeInfo) problems.push(`session ${i + 1}: closed ${JSON.stringify(s.closeInfo)}`);
      else {
        try {
          matchUtterances(s, talk.utterances);
        } catch (err) {
          problems.push(`session ${i + 1}: ${err.message}`);
        }
      }
    });
    assert(problems.length === 0, problems.join('\n'));
  });
  clearInterval(sampler);
  rss.push({ s: Math.round((performance.now() - t0) / 1000), bytes: rssBytes(server.pid) });

  await checks.step(`the server's memory stays flat (VmRSS growth under ${opt['rss-growth-mib']} MiB from 20 s in)`, () => {
    console.log(`  VmRSS (MiB): ${rss.map((r) => `${r.s}s ${(r.bytes / 1048576).toFixed(1)}`).join(', ')}`);
    const base = rss.find((r) => r.s >= 20);
    const end = rss.at(-1);
    assert(base && end.s - base.s >= 30, `too few samples: ${JSON.stringify(rss)}`);
    assert(end.bytes - base.bytes < RSS_GROWTH,
           `VmRSS grew by ${((end.bytes - base.bytes) / 1048576).toFixed(1)} MiB from ${base.s} s to ${end.s} s`);
  });

  await checks.step('the sessions close; the runner\'s streams are all free again', async () => {
    await Promise.all(sessions.map((s) => s.close()));
    await waitRunners(url, MODEL, (rs) => rs.every((r) => runnerSessions(r) === 0), 30_000, 'no session left');
  });
}
