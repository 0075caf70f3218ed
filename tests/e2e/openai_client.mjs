#!/usr/bin/env node
// End to end with the official `openai` npm client (pinned in package-lock.json, installed at test
// time): a real `steno serve` on loopback transcribes files sent by the unchanged client in every
// response format, streams a transcript (stream: true), sends a chunking_strategy object (voice
// activity detection with the real Silero model when ../shared/models has it), translates once,
// lists models, and rejects a wrong API key the way OpenAI does. Exits non-zero on any mismatch; the server (and its runners) never outlive the script.
//
//   STENO_BIN=build/steno STENO_TEST_DATA=build/test-data node tests/e2e/openai_client.mjs
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import { Checks, assert, assertType, parseSrt, parseVtt } from './lib/check.mjs';
import { installDeps } from './lib/deps.mjs';
import { removeOnExit, startSteno, stopStenoChecked } from './lib/server.mjs';

const bin = process.env.STENO_BIN || 'build/steno';
const data = process.env.STENO_TEST_DATA || 'build/test-data';
const media = (name) => path.join(data, 'media', name);
const MODEL = 'tiny-random';
const API_KEY = 'sk-e2e-0123456789abcdef';

const checks = new Checks('e2e.openai_client');
const depsDir = await checks.step('npm ci of the pinned openai client', () => installDeps());
if (!depsDir) process.exit(checks.finish());
const OpenAI = createRequire(path.join(depsDir, 'package.json'))('openai');
const clientVersion = JSON.parse(fs.readFileSync(path.join(depsDir, 'node_modules/openai/package.json'))).version;
console.log(`openai client ${clientVersion}, node ${process.version}`);

const tmp = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), 'steno-e2e-openai-')));
const modelsDir = path.join(tmp, 'models');
fs.mkdirSync(modelsDir);
fs.copyFileSync(path.join(data, 'models', 'tiny-random.bin'), path.join(modelsDir, `${MODEL}.bin`));
// The real VAD model, linked (never copied into the repo) when the project's sibling shared/ has it.
const silero = path.join(process.env.STENO_SOURCE_DIR || '.', '..', 'shared', 'models', 'ggml-silero-v6.2.0.bin');
const haveVad = fs.existsSync(silero);
if (haveVad) fs.symlinkSync(path.resolve(silero), path.join(modelsDir, 'ggml-silero-v6.2.0.bin'));

let server;
let code = 1;
try {
  server = await checks.step('steno serve starts on 127.0.0.1:0', () =>
    // Greedy without temperature fallback: two runs of one file give the same text (the streaming
    // check); beam search over the random model's near-uniform scores is not repeatable here.
    startSteno({ bin, dataDir: path.join(tmp, 'data'), modelsDir,
                 args: ['--api-key', API_KEY, '--temperature-inc', '0', '--beam-size', '1'] }));
  if (server) {
    console.log(`server at ${server.url}`);
    await run(server.url);
  }
} finally {
  if (server) {
    await stopStenoChecked(checks, server);
  }
  code = checks.finish();
}
process.exit(code);

async function run(url) {
  const client = new OpenAI({ apiKey: API_KEY, baseURL: `${url}/v1`, maxRetries: 0, timeout: 120_000 });
  const transcribe = (file, extra) => client.audio.transcriptions.create({
    file: fs.createReadStream(media(file)), model: MODEL, language: 'en', temperature: 0, ...extra });

  await checks.step('models.list() names the installed model', async () => {
    const page = await client.models.list();
    const ids = page.data.map((m) => m.id);
    assert(ids.includes(MODEL), `models.list(): ${MODEL} not among ${JSON.stringify(ids)}`);
    for (const m of page.data) assert(m.object === 'model', `model entry without object "model": ${JSON.stringify(m)}`);
  });

  await checks.step('response_format json: {text: string}', async () => {
    const r = await transcribe('speech.wav', { response_format: 'json' });
    assertType(r, 'object', 'json response');
    assertType(r.text, 'string', 'json .text');
    assert(r.text.trim().length > 0, `json .text is empty: ${JSON.stringify(r)}`);
  });

  await checks.step('response_format omitted: json by default', async () => {
    const r = await client.audio.transcriptions.create({ file: fs.createReadStream(media('speech.wav')), model: MODEL });
    assertType(r, 'object', 'default response');
    assertType(r.text, 'string', 'default .text');
  });

  await checks.step('response_format text: a plain string', async () => {
    const r = await transcribe('speech.wav', { response_format: 'text' });
    assertType(r, 'string', 'text response');
    assert(r.trim().length > 0, 'text response is empty');
    assert(!r.trimStart().startsWith('{'), `text response looks like JSON: ${r.slice(0, 80)}`);
  });

  await checks.step('response_format srt: numbered cues with --> times', async () => {
    const r = await transcribe('speech.wav', { response_format: 'srt' });
    assertType(r, 'string', 'srt response');
    const cues = parseSrt(r);
    assert(cues.length >= 1, `srt has no cues: ${JSON.stringify(r)}`);
  });

  await checks.step('response_format vtt: WEBVTT and cues', async () => {
    const r = await transcribe('speech.wav', { response_format: 'vtt' });
    assertType(r, 'string', 'vtt response');
    assert(r.startsWith('WEBVTT'), `vtt does not start with WEBVTT: ${JSON.stringify(r.slice(0, 40))}`);
    const cues = parseVtt(r);
    assert(cues.length >= 1, `vtt has no cues: ${JSON.stringify(r)}`);
  });

  await checks.step('response_format verbose_json + word timestamps: ordered segments and words', async () => {
    // The 60 s file gives several segments, so their order means something.
    const r = await transcribe('speech_60s.wav', { response_format: 'verbose_json', timestamp_granularities: ['word', 'segment'] });
    assertType(r, 'object', 'verbose_json response');
    assertType(r.text, 'string', 'verbose_json .text');
    assertType(r.language, 'string', 'verbose_json .language');
    assert(r.language.length > 0, 'verbose_json .language is empty');
    assertType(r.duration, 'number', 'verbose_json .duration');
    assert(Math.abs(r.duration - 60) < 0.5, `verbose_json .duration ${r.duration}, expected ~60 s`);
    if (r.task !== undefined) assert(r.task === 'transcribe', `verbose_json .task ${r.task}`);
    assertType(r.segments, 'array', 'verbose_json .segments');
    assert(r.segments.length >= 2, `expected several segments for 60 s of speech, got ${r.segments.length}`);
    let prev = null;
    for (const [i, s] of r.segments.entries()) {
      assertType(s.start, 'number', `segments[${i}].start`);
      assertType(s.end, 'number', `segments[${i}].end`);
      assertType(s.text, 'string', `segments[${i}].text`);
      assert(s.start >= 0 && s.end >= s.start, `segments[${i}]: start ${s.start}, end ${s.end}`);
      if (prev) {
        assert(s.start >= prev.start && s.end >= prev.end,
               `segments[${i}] (${s.start}-${s.end}) goes back from segments[${i - 1}] (${prev.start}-${prev.end})`);
      }
      prev = s;
    }
    assertType(r.words, 'array', 'verbose_json .words (timestamp_granularities word)');
    assert(r.words.length > 0, 'verbose_json .words is empty');
    let prevWord = null;
    for (const [i, w] of r.words.entries()) {
      assertType(w.word, 'string', `words[${i}].word`);
      assertType(w.start, 'number', `words[${i}].start`);
      assertType(w.end, 'number', `words[${i}].end`);
      assert(w.end >= w.start, `words[${i}]: start ${w.start}, end ${w.end}`);
      if (prevWord) assert(w.start >= prevWord.start, `words[${i}] starts before words[${i - 1}]`);
      prevWord = w;
    }
  });

  await checks.step('response_format verbose_json without words: no words array', async () => {
    const r = await transcribe('speech.wav', { response_format: 'verbose_json' });
    assertType(r.segments, 'array', 'verbose_json .segments');
    assert(r.words === undefined, 'words present although only segment granularity was asked for');
  });

  await checks.step('stream: true yields transcript.text.delta events, then done with the non-streamed text', async () => {
    const plain = await transcribe('speech_60s.wav', { response_format: 'json' });
    const stream = await transcribe('speech_60s.wav', { stream: true });
    let joined = '';
    let deltas = 0;
    let done = null;
    for await (const event of stream) {
      assert(!done, `an event after transcript.text.done: ${JSON.stringify(event)}`);
      if (event.type === 'transcript.text.delta') {
        assertType(event.delta, 'string', 'delta .delta');
        joined += event.delta;
        deltas += 1;
      } else if (event.type === 'transcript.text.done') {
        done = event;
      } else {
        assert(false, `unexpected event ${JSON.stringify(event)}`);
      }
    }
    assert(done, 'no transcript.text.done event');
    assert(deltas >= 2, `expected a delta per segment of 60 s of speech, got ${deltas}`);
    assert(done.text === plain.text, `streamed ${JSON.stringify(done.text)} != ${JSON.stringify(plain.text)}`);
    assert(joined === plain.text, `the deltas joined ${JSON.stringify(joined)} != ${JSON.stringify(plain.text)}`);
  });

  await checks.step('chunking_strategy object: sent by the client, read by the server', async () => {
    const request = transcribe('speech.wav', {
      response_format: 'verbose_json',
      chunking_strategy: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 200, silence_duration_ms: 300 },
    });
    if (!haveVad) {
      // Without the model an explicit VAD request is refused, naming the field.
      let err = null;
      try { await request; } catch (e) { err = e; }
      assert(err instanceof OpenAI.BadRequestError, `expected BadRequestError, got ${err ? err.constructor.name : 'success'}`);
      assert(err.param === 'chunking_strategy', `error param ${err.param}`);
      return;
    }
    const { data: r, response } = await request.withResponse();
    assertType(r.segments, 'array', 'verbose_json .segments');
    const id = response.headers.get('x-steno-job-id');
    const job = await (await fetch(`${url}/v1/jobs/${id}`, { headers: { Authorization: `Bearer ${API_KEY}` } })).json();
    assert(job.vad && job.vad.prefix_padding_ms === 200 && job.vad.silence_duration_ms === 300,
           `the job's VAD settings: ${JSON.stringify(job.vad)}`);
  });

  await checks.step('other containers through the client: mp3 and webm', async () => {
    for (const f of ['speech.mp3', 'speech.webm']) {
      const r = await transcribe(f, { response_format: 'json' });
      assertType(r.text, 'string', `${f} .text`);
    }
  });

  await checks.step('translations.create: json text', async () => {
    const r = await client.audio.translations.create({
      file: fs.createReadStream(media('speech.wav')), model: MODEL, temperature: 0 });
    assertType(r, 'object', 'translation response');
    assertType(r.text, 'string', 'translation .text');
  });

  await checks.step('a wrong API key: AuthenticationError (401) in OpenAI\'s error shape', async () => {
    const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${url}/v1`, maxRetries: 0, timeout: 30_000 });
    let err = null;
    try {
      await bad.audio.transcriptions.create({ file: fs.createReadStream(media('speech.wav')), model: MODEL });
    } catch (e) {
      err = e;
    }
    assert(err, 'the request with a wrong key succeeded');
    assert(err instanceof OpenAI.AuthenticationError, `expected AuthenticationError, got ${err.constructor.name}: ${err.message}`);
    assert(err.status === 401, `status ${err.status}`);
    assertType(err.error, 'object', 'error body .error');
    assertType(err.error.message, 'string', 'error.message');
    assertType(err.error.type, 'string', 'error.type');
  });

  await checks.step('an unknown model: NotFoundError (404)', async () => {
    let err = null;
    try {
      await client.audio.transcriptions.create({ file: fs.createReadStream(media('speech.wav')), model: 'no-such-model' });
    } catch (e) {
      err = e;
    }
    assert(err instanceof OpenAI.NotFoundError, `expected NotFoundError, got ${err ? `${err.constructor.name}: ${err.message}` : 'success'}`);
    assertType(err.error, 'object', 'error body .error');
  });

  await checks.step('a file that is not audio: BadRequest (400) or UnsupportedMediaType (415)', async () => {
    let err = null;
    try {
      await client.audio.transcriptions.create({ file: fs.createReadStream(media('not_media.txt')), model: MODEL });
    } catch (e) {
      err = e;
    }
    assert(err instanceof OpenAI.APIError, `expected an APIError, got ${err ? err.constructor.name : 'success'}`);
    assert(err.status === 400 || err.status === 415, `status ${err.status}: ${err.message}`);
    assertType(err.error, 'object', 'error body .error');
  });
}
