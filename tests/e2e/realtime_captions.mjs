#!/usr/bin/env node
// Live captions end to end (issue 19): an outside client over the pinned `ws` package speaks
// OpenAI's Realtime transcription protocol to a real `steno serve` (CPU, the tiny generated
// model, the real Silero VAD model from ../shared/models) and streams a synthesised ~60 s
// dialogue with pauses (tests/support/make_dialogue.sh, known utterance bounds) in 100 ms chunks
// at real-time pace:
//   - the session is created, then updated with the client's model, language and server_vad;
//   - one completed event per utterance, in order, no error, each item's speech_started /
//     speech_stopped times around its utterance's known bounds;
//   - each completed transcript equals what POST /v1/audio/transcriptions answers (same model,
//     same decoding flags) for that item's audio alone, cut at the times the server reported;
//   - the first delta of each utterance arrives within --first-delta-ms (1500) of its start;
//   - the same dialogue at 24 kHz (OpenAI's pcm16) gives the same utterances.
// Exits 77 (skipped) when the Silero model is not there; non-zero on any mismatch. The server
// (and its runners) never outlive the script.
//
//   STENO_BIN=build/steno STENO_TEST_DATA=build/test-data node tests/e2e/realtime_captions.mjs
import path from 'node:path';
import { parseArgs } from 'node:util';

import { assert } from './lib/check.mjs';
import { multipart, timed } from './lib/http.mjs';
import { RealtimeSession, configure, dialogue, pcmChunks, realtimeUrl, streamAudio, wavSlice } from './lib/realtime.mjs';
import { startSteno, stopStenoChecked } from './lib/server.mjs';
import { FORMAT_16K, FORMAT_24K, SERVE_ARGS, itemTimes, matchUtterances, liveTest, waitRunners }
  from './lib/live_setup.mjs';

const { values: opt } = parseArgs({ options: {
  'first-delta-ms': { type: 'string', default: '1500' },
} });
const bin = process.env.STENO_BIN || 'build/steno';
const data = process.env.STENO_TEST_DATA || 'build/test-data';
const MODEL = 'tiny-random';
const FIRST_DELTA_MS = Number(opt['first-delta-ms']);

const { checks, tmp, modelsDir, WebSocket, talk } = await liveTest('e2e.realtime_captions', data, MODEL);
console.log(`dialogue: ${talk.utterances.length} utterances, ${talk.durationMs} ms`);

let server;
let code = 1;
try {
  server = await checks.step('steno serve starts on 127.0.0.1:0', () =>
    startSteno({ bin, dataDir: path.join(tmp, 'data'), modelsDir, args: SERVE_ARGS }));
  if (server) {
    console.log(`server at ${server.url}`);
    await run(server.url);
  }
} finally {
  if (server) await stopStenoChecked(checks, server);
  code = checks.finish();
}
process.exit(code);

async function run(url) {
  const session = new RealtimeSession(WebSocket, realtimeUrl(url));
  const ok = await checks.step('the WebSocket upgrade succeeds; transcription_session.created comes first', async () => {
    await session.opened;
    const first = await session.waitFor(() => true, { what: 'first event' });
    assert(first.type === 'transcription_session.created', `first event: ${JSON.stringify(first)}`);
    assert(first.session && typeof first.session === 'object', 'created event has no session object');
    return true;
  });
  if (!ok) return;

  await checks.step('transcription_session.update → updated, echoing the model and turn detection', async () => {
    const ev = await configure(session, { model: MODEL, extra: FORMAT_16K });
    const s = ev.session || {};
    assert(s.input_audio_transcription && s.input_audio_transcription.model === MODEL,
           `updated session names no model ${MODEL}: ${JSON.stringify(s)}`);
    assert(s.turn_detection && s.turn_detection.type === 'server_vad' && s.turn_detection.silence_duration_ms === 500,
           `updated session's turn_detection: ${JSON.stringify(s.turn_detection)}`);
  });

  // The first-delta bound is about decoding, not about loading the model: the audio starts once
  // the session holds a stream of a loaded runner.
  await checks.step('GET /v1/runners shows the session on a ready runner', () =>
    waitRunners(url, MODEL, (rs) => rs.some((r) => r.live_sessions === 1 && r.state !== 'loading'), 60_000,
      'the session on a runner'));

  const { chunks, rate } = pcmChunks(talk.wav16, 100);
  assert(rate === 16000, `dialogue-16k.wav is ${rate} Hz`);
  const t0 = await streamAudio(session, chunks, { chunkMs: 100 });
  const items = await checks.step('one completed event per utterance, in order, and no error', async () => {
    await session.waitFor(() => session.completedItems().length >= talk.utterances.length || session.errors().length > 0,
      { timeoutMs: 60_000, what: `${talk.utterances.length} completed events` }).catch(() => {});
    assert(session.errors().length === 0, `error events: ${JSON.stringify(session.errors())}`);
    // Nothing more after a quiet second (a split utterance would show up as an extra item).
    await new Promise((r) => setTimeout(r, 1000));
    return matchUtterances(session, talk.utterances);
  });
  if (!items) return;
  // The session ends before the POSTs: on a 2-core CPU the runner has one stream, which the
  // session holds while it is open.
  await session.close();

  await checks.step('each transcript equals transcribing that item\'s audio alone (POST /v1/audio/transcriptions)', async () => {
    const mismatches = [];
    let nonEmpty = 0;
    for (const [i, it] of items.entries()) {
      const { start, end } = itemTimes(it);
      const { body, headers } = multipart(wavSlice(talk.wav16, start, end), `utt${i + 1}.wav`,
        { model: MODEL, language: 'en', response_format: 'json', temperature: 0 });
      const res = await timed(`${url}/v1/audio/transcriptions`, { method: 'POST', body, headers });
      assert(res.status === 200, `utterance ${i + 1}: POST answered ${res.status}: ${res.text}`);
      const want = res.json.text.trim();
      const got = it.completed.transcript.trim();
      console.log(`  utterance ${i + 1} (${start}..${end} ms): ${JSON.stringify(got)} (POST: ${Math.round(res.ms)} ms)`);
      if (got.length > 0) nonEmpty++;
      if (got !== want) mismatches.push(`utterance ${i + 1} (${start}..${end} ms): live ${JSON.stringify(got)}, alone ${JSON.stringify(want)}`);
    }
    assert(mismatches.length === 0, mismatches.join('\n'));
    assert(nonEmpty > 0, 'every transcript is empty');
  });

  await checks.step(`the first delta of each utterance arrives within ${FIRST_DELTA_MS} ms of its start`, () => {
    const late = [];
    const lags = [];
    for (const [i, it] of items.entries()) {
      const u = talk.utterances[i];
      assert(it.deltas.length > 0, `utterance ${i + 1} (${Math.round(u.end_ms - u.start_ms)} ms) got no delta`);
      const lag = it.deltas[0].at - (t0 + u.start_ms);
      lags.push(Math.round(lag));
      if (lag > FIRST_DELTA_MS) late.push(`utterance ${i + 1}: ${Math.round(lag)} ms`);
    }
    console.log(`first-delta lags (ms): ${lags.join(' ')}`);
    assert(late.length === 0, `late first deltas: ${late.join(', ')}`);
  });

  await checks.step('deltas of an item add up to text and come before its completed event', () => {
    for (const [i, it] of items.entries()) {
      for (const d of it.deltas) assert(typeof d.delta === 'string', `utterance ${i + 1}: delta without a string: ${JSON.stringify(d)}`);
      assert(it.deltas.every((d) => d.at <= it.completed.at), `utterance ${i + 1}: a delta after its completed event`);
    }
  });

  await checks.step('the dialogue at 24 kHz (pcm16 as OpenAI sends it) gives the same utterances', async () => {
    const s24 = new RealtimeSession(WebSocket, realtimeUrl(url));
    await s24.opened;
    await configure(s24, { model: MODEL, extra: FORMAT_24K });
    const n = 4;  // the first four utterances and the silence after them
    const cutMs = talk.utterances[n].start_ms - 200;
    const { chunks: c24, rate: r24 } = pcmChunks(talk.wav24, 100);
    assert(r24 === 24000, `dialogue-24k.wav is ${r24} Hz`);
    await streamAudio(s24, c24.slice(0, Math.floor(cutMs / 100)), { chunkMs: 100 });
    await s24.waitFor(() => s24.completedItems().length >= n || s24.errors().length > 0,
      { timeoutMs: 60_000, what: `${n} completed events` });
    assert(s24.errors().length === 0, `error events: ${JSON.stringify(s24.errors())}`);
    matchUtterances(s24, talk.utterances.slice(0, n));
    await s24.close();
  });
}
