#!/usr/bin/env node
// Live captions latency (issue 19): N sessions over OpenAI's Realtime transcription protocol
// (the pinned `ws` package, as tests/e2e uses it) each stream the synthesised ~64 s dialogue
// (tests/support/make_dialogue.sh, 24 kHz pcm16, 14 utterances) in 100 ms chunks at real-time
// pace, starts staggered by 250 ms; for every utterance it measures
//   end of speech → completed: the completed event's arrival after the utterance's last sample
//     was spoken (its known end in the dialogue, on the stream's real-time clock). This includes
//     the server VAD's silence_duration_ms (500 ms) that decides the utterance ended;
//   speech_stopped → completed: the decode of the committed utterance and its delivery;
// and prints p50 / p99 / max per session count. One server for all counts (the model preloaded,
// kept loaded). Not a pass/fail test: exits non-zero only when sessions fail (errors, lost
// utterances).
//
// The CPU figures come from a simulated GPU whose runner computes on the CPU (--simulate-gpus,
// the default): one runner then holds every session, where the CPU device itself would give a
// small machine one stream per core.
//
//   node bench/realtime_latency.mjs --bin build/steno --data build/test-data --silero F \
//     [--sessions 1,10,20] [--device auto --simulate-gpus 1x16GiB | --device cuda:0 --simulate-gpus '']
//     [--model-file F] [--threads 1]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { installDeps } from '../tests/e2e/lib/deps.mjs';
import { percentile } from '../tests/e2e/lib/http.mjs';
import { FORMAT_24K, LOAD_SESSION, SERVE_ARGS } from '../tests/e2e/lib/live_setup.mjs';
import { RealtimeSession, configure, dialogue, loadWs, pcmChunks, realtimeUrl, sleep, streamAudio }
  from '../tests/e2e/lib/realtime.mjs';
import { removeOnExit, startSteno } from '../tests/e2e/lib/server.mjs';

const { values: opt } = parseArgs({ options: {
  bin: { type: 'string', default: 'build/steno' },
  data: { type: 'string', default: 'build/test-data' },
  sessions: { type: 'string', default: '1,10,20' },
  device: { type: 'string', default: 'auto' },
  'simulate-gpus': { type: 'string', default: '1x16GiB' },
  'model-file': { type: 'string', default: '' },
  threads: { type: 'string', default: '1' },
  silero: { type: 'string', default: '' },
} });
const MODEL = 'bench-model';
const counts = opt.sessions.split(',').map(Number);
const most = Math.max(...counts);

const WebSocket = loadWs(installDeps());
const talk = dialogue(path.join(opt.data, 'live'));
const { chunks } = pcmChunks(talk.wav24, 100);
const tmp = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), 'steno-bench-realtime-')));
const models = path.join(tmp, 'models');
fs.mkdirSync(models);
fs.symlinkSync(path.resolve(opt['model-file'] || path.join(opt.data, 'models', 'tiny-random.bin')),
               path.join(models, `${MODEL}.bin`));
fs.symlinkSync(path.resolve(opt.silero), path.join(models, 'ggml-silero-v6.2.0.bin'));

const server = await startSteno({ bin: opt.bin, dataDir: path.join(tmp, 'data'), modelsDir: models, timeoutMs: 300_000,
  args: [...SERVE_ARGS, '--device', opt.device, ...(opt['simulate-gpus'] ? ['--simulate-gpus', opt['simulate-gpus']] : []),
         '--max-streams', String(most), '--threads', opt.threads,
         '--preload', MODEL, '--keep-alive', '-1'] });
console.log(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ` +
            `device ${opt.device}${opt['simulate-gpus'] ? ` (simulated ${opt['simulate-gpus']}, computing on the CPU)` : ''}; dialogue ${talk.utterances.length} utterances, ${(talk.durationMs / 1000).toFixed(1)} s`);

let failed = false;
const rows = [];
try {
  for (const n of counts) rows.push(await level(n));
} finally {
  await server.stop();
}
const fmt = (x) => (Number.isFinite(x) ? `${Math.round(x)}` : '-').padStart(9);
console.log('\nlatency in ms; eos = end of speech → completed, decode = speech_stopped → completed');
console.log(`${'sessions'.padStart(8)} ${'utterances'.padStart(10)} ${'eos p50'.padStart(9)} ${'eos p99'.padStart(9)} ` +
            `${'eos max'.padStart(9)} ${'decode p50'.padStart(11)} ${'decode p99'.padStart(11)}`);
for (const r of rows) {
  console.log(`${String(r.n).padStart(8)} ${String(r.count).padStart(10)} ${fmt(r.eos.p50)} ${fmt(r.eos.p99)} ` +
              `${fmt(r.eos.max)} ${fmt(r.dec.p50).padStart(11)} ${fmt(r.dec.p99).padStart(11)}`);
}
process.exit(failed ? 1 : 0);

async function level(n) {
  const sessions = [];
  for (let i = 0; i < n; i++) sessions.push(new RealtimeSession(WebSocket, realtimeUrl(server.url)));
  await Promise.all(sessions.map(async (s) => {
    await s.opened;
    await configure(s, { model: MODEL, extra: { ...FORMAT_24K, ...LOAD_SESSION } });
  }));
  const starts = await Promise.all(sessions.map((s, i) => sleep(i * 250).then(() => streamAudio(s, chunks, { chunkMs: 100 }))));
  await Promise.all(sessions.map((s) => s.waitFor(
    () => s.completedItems().length >= talk.utterances.length || s.errors().length > 0 || s.closeInfo,
    { timeoutMs: 120_000, what: 'all completed' }).catch(() => {})));
  const eos = [];
  const dec = [];
  sessions.forEach((s, i) => {
    const items = s.completedItems();
    if (s.errors().length > 0 || items.length !== talk.utterances.length) {
      failed = true;
      console.log(`${n} sessions: session ${i + 1} got ${items.length} of ${talk.utterances.length} utterances, ` +
                  `errors ${JSON.stringify(s.errors())}`);
    }
    items.slice(0, talk.utterances.length).forEach((it, k) => {
      eos.push(it.completed.at - (starts[i] + talk.utterances[k].end_ms));
      if (it.stopped) dec.push(it.completed.at - it.stopped.at);
    });
  });
  await Promise.all(sessions.map((s) => s.close()));
  const stat = (v) => ({ p50: percentile(v, 50), p99: percentile(v, 99), max: v.length ? Math.max(...v) : NaN });
  const row = { n, count: eos.length, eos: stat(eos), dec: stat(dec) };
  console.log(`${n} sessions: end of speech → completed p50 ${Math.round(row.eos.p50)} ms, p99 ${Math.round(row.eos.p99)} ms ` +
              `(${eos.length} utterances)`);
  return row;
}
