#!/usr/bin/env node
// Aggregate transcription throughput over HTTP (audio seconds per wall second) of `steno serve`
// (POST /v1/audio/transcriptions) against upstream `whisper-server` (POST /inference), with the
// same model file, input and threads, at several client concurrencies. Starts and stops both
// servers itself (loopback, OS-chosen ports, process groups killed on exit). Before timing, one
// request to each checks that both return the same text, i.e. do the same decoding work. Prints one line per
// (server, concurrency), the steno / whisper-server ratio per concurrency, and a JSON summary.
// Normally run through bench/api_vs_whisper_server.sh, which finds the binaries and test data.
//
//   node bench/api_throughput.mjs --steno BIN --whisper-server BIN --model FILE --input WAV
//     [--threads N] [--levels 1,4,8] [--seconds 15] [--min-requests 2] [--device cpu|cuda:0]
//     [--steno-arg ARG]... [--whisper-arg ARG]... [--only steno|whisper-server]
//     [--allow-different-text]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { multipart, summarize, timed } from '../tests/e2e/lib/http.mjs';
import { removeOnExit, startSteno, startWhisperServer } from '../tests/e2e/lib/server.mjs';
import { wavSeconds } from '../tests/e2e/lib/wav.mjs';

const { values: opt } = parseArgs({
  options: {
    steno: { type: 'string' },
    'whisper-server': { type: 'string' },
    model: { type: 'string' },
    input: { type: 'string' },
    threads: { type: 'string', default: String(os.availableParallelism?.() ?? os.cpus().length) },
    levels: { type: 'string', default: '1,4,8' },
    seconds: { type: 'string', default: '15' },
    'min-requests': { type: 'string', default: '2' },
    device: { type: 'string', default: 'cpu' },
    'steno-arg': { type: 'string', multiple: true, default: [] },
    'whisper-arg': { type: 'string', multiple: true, default: [] },
    only: { type: 'string', default: '' },
    'allow-different-text': { type: 'boolean', default: false },
    language: { type: 'string', default: 'en' },
  },
});
for (const k of ['model', 'input']) if (!opt[k]) throw new Error(`--${k} is required`);
const levels = opt.levels.split(',').map(Number);
const threads = Number(opt.threads);
const audioSeconds = wavSeconds(opt.input);
const audio = fs.readFileSync(opt.input);
const fileName = path.basename(opt.input);
const MODEL_NAME = 'bench-model';

// The request each server gets for one transcription of the input: JSON response, temperature 0.
const request = {
  steno: (url) => [`${url}/v1/audio/transcriptions`, multipart(audio, fileName, {
    model: MODEL_NAME, response_format: 'json', temperature: 0, language: opt.language })],
  'whisper-server': (url) => [`${url}/inference`, multipart(audio, fileName, {
    response_format: 'json', temperature: 0, language: opt.language })],
};

async function once(kind, url) {
  const [endpoint, upload] = request[kind](url);
  const r = await timed(endpoint, { method: 'POST', ...upload });
  if (r.status !== 200 || typeof r.json?.text !== 'string') {
    throw new Error(`${kind}: POST ${endpoint} -> ${r.status} ${r.error ?? ''} ${(r.text ?? '').slice(0, 400)}`);
  }
  return r;
}

// `concurrency` clients, each sending one request after another until `seconds` have passed
// and each has sent `minRequests`. Wall time runs from the first request to the last response.
async function measure(kind, url, concurrency) {
  // Warm-up (not timed): model load, one stream per client where the server has streams.
  await Promise.all(Array.from({ length: concurrency }, () => once(kind, url)));
  const latencies = [];
  const t0 = performance.now();
  const until = t0 + Number(opt.seconds) * 1000;
  const worker = async () => {
    for (let n = 0; n < Number(opt['min-requests']) || performance.now() < until; n++) {
      latencies.push((await once(kind, url)).ms);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wall = (performance.now() - t0) / 1000;
  const requests = latencies.length;
  return { server: kind, concurrency, requests, wall_s: round(wall), audio_s: round(requests * audioSeconds),
           throughput: round((requests * audioSeconds) / wall), latency_ms: summarize(latencies) };
}

function round(x) {
  return Math.round(x * 1000) / 1000;
}

// Starts one server; returns {url, stop()}.
async function start(kind, tmp) {
  if (kind === 'steno') {
    const modelsDir = path.join(tmp, 'models');
    fs.mkdirSync(modelsDir);
    // The same file, not a copy (a large-v3-size model is GBs): steno resolves links in its dir.
    fs.symlinkSync(path.resolve(opt.model), path.join(modelsDir, `${MODEL_NAME}.bin`));
    return startSteno({ bin: opt.steno, dataDir: path.join(tmp, 'data'), modelsDir,
      args: ['--threads', String(threads), ...(opt.device === 'cpu' ? [] : ['--device', opt.device]),
             ...opt['steno-arg']] });
  }
  // whisper-server loads the model at start; `-ng` keeps it on the CPU like steno's --device cpu.
  return startWhisperServer({ bin: opt['whisper-server'], model: path.resolve(opt.model), threads, cwd: tmp,
    args: [...(opt.device === 'cpu' ? ['-ng'] : []), ...opt['whisper-arg']] });
}

const kinds = opt.only ? [opt.only] : ['steno', 'whisper-server'];
console.log(`input ${opt.input} (${round(audioSeconds)} s), model ${opt.model}, threads ${threads}, ` +
            `device ${opt.device}, levels ${levels.join(',')}, >= ${opt.seconds} s per level`);
const results = [];
const texts = {};
const tmp = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), 'steno-bench-api-')));
const servers = {};
try {
  // Both servers stay up (an idle one costs no CPU) and take turns level by level, the order
  // alternating, so a drift in the machine's load does not favour one of them.
  for (const kind of kinds) {
    fs.mkdirSync(path.join(tmp, kind));
    servers[kind] = await start(kind, path.join(tmp, kind));
    texts[kind] = (await once(kind, servers[kind].url)).json.text.trim();
  }
  for (const [i, c] of levels.entries()) {
    for (const kind of i % 2 === 0 ? kinds : [...kinds].reverse()) {
      const r = await measure(kind, servers[kind].url, c);
      results.push(r);
      console.log(`${kind.padEnd(14)} clients ${String(c).padStart(2)}: ${String(r.requests).padStart(4)} requests ` +
                  `in ${r.wall_s.toFixed(2)} s = ${r.throughput.toFixed(2)} audio s / s ` +
                  `(latency p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms)`);
    }
  }
} catch (err) {
  for (const server of Object.values(servers)) console.error(server.output());
  throw err;
} finally {
  for (const server of Object.values(servers)) await server.stop();
}

let sameText = null;
if (kinds.length === 2) {
  // Both must have done the same work for the ratio to mean anything. whisper-server joins
  // segments with newlines, steno (like OpenAI) concatenates them: whitespace is not compared.
  const bare = (t) => t.replace(/\s+/g, '');
  sameText = bare(texts.steno) === bare(texts['whisper-server']);
  console.log(`same text from both (whitespace aside): ${sameText}`);
  if (!sameText) {
    console.log(`  steno:          ${JSON.stringify(texts.steno.slice(0, 300))}`);
    console.log(`  whisper-server: ${JSON.stringify(texts['whisper-server'].slice(0, 300))}`);
  }
  for (const c of levels) {
    const s = results.find((r) => r.server === 'steno' && r.concurrency === c);
    const w = results.find((r) => r.server === 'whisper-server' && r.concurrency === c);
    console.log(`ratio steno / whisper-server at ${c} clients: ${(s.throughput / w.throughput).toFixed(3)}`);
  }
}
console.log(JSON.stringify({ input: opt.input, audio_seconds: audioSeconds, model: opt.model, threads,
                             device: opt.device, same_text: sameText, results }));
if (sameText === false && !opt['allow-different-text']) {
  console.error('outputs differ: the servers did different work, so the ratios compare unlike things ' +
                '(--allow-different-text to report them anyway)');
  process.exit(1);
}
