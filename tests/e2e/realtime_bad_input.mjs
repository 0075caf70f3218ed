#!/usr/bin/env node
// Bad input to live transcription sessions from an outside client (issue 19; the server's own
// tests cover the same cases in C++): audio before the session is configured, invalid JSON, an
// unknown event type, bad base64 and bad fields each get an error event in OpenAI's shape, and
// the session stays usable (a transcription_session.update is still answered); a binary frame
// closes the session with 1003 (unsupported data), an oversized frame with 1009 (message too
// big), each with a reason; and the server carries on: a new session then transcribes the
// dialogue's first utterance.
// Exits 77 (skipped) when the Silero model is not there.
//
//   STENO_BIN=build/steno STENO_TEST_DATA=build/test-data node tests/e2e/realtime_bad_input.mjs
import path from 'node:path';

import { assert } from './lib/check.mjs';
import { timed } from './lib/http.mjs';
import { FORMAT_16K, SERVE_ARGS, matchUtterances, liveTest } from './lib/live_setup.mjs';
import { RealtimeSession, configure, dialogue, pcmChunks, realtimeUrl, streamAudio } from './lib/realtime.mjs';
import { startSteno, stopStenoChecked } from './lib/server.mjs';

const bin = process.env.STENO_BIN || 'build/steno';
const data = process.env.STENO_TEST_DATA || 'build/test-data';
const MODEL = 'tiny-random';

const { checks, tmp, modelsDir, WebSocket, talk } = await liveTest('e2e.realtime_bad_input', data, MODEL);

let server;
let code = 1;
try {
  server = await checks.step('steno serve starts on 127.0.0.1:0', () =>
    startSteno({ bin, dataDir: path.join(tmp, 'data'), modelsDir, args: SERVE_ARGS }));
  if (server) await run(server.url);
} finally {
  if (server) await stopStenoChecked(checks, server);
  code = checks.finish();
}
process.exit(code);

// The next error event after index `from`, checked for OpenAI's shape.
async function errorEvent(session, from, what) {
  const ev = await session.waitFor((e) => e.type === 'error', { from, what: `error event for ${what}`, timeoutMs: 10_000 });
  assert(ev.error && typeof ev.error.type === 'string' && typeof ev.error.message === 'string',
         `${what}: error event not in OpenAI's shape: ${JSON.stringify(ev)}`);
  return ev;
}

// The session still answers a transcription_session.update.
async function stillUsable(session, what) {
  assert(!session.closeInfo, `${what}: the session closed (${JSON.stringify(session.closeInfo)})`);
  await configure(session, { model: MODEL, extra: FORMAT_16K });
}

async function run(url) {
  const session = new RealtimeSession(WebSocket, realtimeUrl(url));
  const opened = await checks.step('a session opens', async () => {
    await session.opened;
    await session.type('transcription_session.created');
    return true;
  });
  if (!opened) return;

  await checks.step('audio before the session is configured → error event; the session stays usable', async () => {
    const from = session.events.length;
    session.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(3200).toString('base64') });
    const ev = await errorEvent(session, from, 'audio before configuration');
    console.log(`  error: ${JSON.stringify(ev.error)}`);
    await stillUsable(session, 'after audio before configuration');
  });

  const cases = [
    ['invalid JSON', '{"type": "input_audio_buffer.append", "audio": '],
    ['a JSON value that is not an object', '[1, 2, 3]'],
    ['an unknown event type', { type: 'input_audio_buffer.frobnicate' }],
    ['an event without a type', { audio: '' }],
    ['bad base64 audio', { type: 'input_audio_buffer.append', audio: 'this is not base64!!' }],
    ['audio that is not a string', { type: 'input_audio_buffer.append', audio: 12 }],
    ['an input format steno does not take', { type: 'transcription_session.update', session: { input_audio_format: 'g711_ulaw' } }],
  ];
  for (const [what, frame] of cases) {
    await checks.step(`${what} → error event; the session stays usable`, async () => {
      const from = session.events.length;
      session.send(frame);
      const ev = await errorEvent(session, from, what);
      console.log(`  error: ${JSON.stringify(ev.error)}`);
      await stillUsable(session, `after ${what}`);
    });
  }
  await session.close();

  await checks.step('a binary frame → close 1003 with a reason', async () => {
    const bin = new RealtimeSession(WebSocket, realtimeUrl(url));
    await bin.opened;
    await configure(bin, { model: MODEL, extra: FORMAT_16K });
    const from = bin.events.length;
    bin.send(Buffer.from([1, 2, 3, 4]));
    const closed = await bin.closed;
    const ev = bin.events.slice(from).find((e) => e.type === 'error');
    console.log(`  error: ${JSON.stringify(ev && ev.error)}; closed: ${closed.code} ${closed.reason}`);
    assert(closed.code === 1003 && closed.reason.length > 0, `closed with ${closed.code} "${closed.reason}"`);
  });

  await checks.step('an oversized frame (32 MiB) → close 1009 (message too big)', async () => {
    const big = new RealtimeSession(WebSocket, realtimeUrl(url));
    await big.opened;
    await configure(big, { model: MODEL, extra: FORMAT_16K });
    big.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(24 * 1024 * 1024).toString('base64') });
    const closed = await big.closed;
    console.log(`  closed: ${closed.code} ${closed.reason}`);
    assert(closed.code === 1009, `closed with ${closed.code} "${closed.reason}"`);
  });

  await checks.step('the server carries on: GET /healthz, and a new session transcribes the first utterance', async () => {
    const health = await timed(`${url}/healthz`);
    assert(health.status === 200, `GET /healthz: ${health.status}`);
    const s = new RealtimeSession(WebSocket, realtimeUrl(url));
    await s.opened;
    await configure(s, { model: MODEL, extra: FORMAT_16K });
    const { chunks } = pcmChunks(talk.wav16, 100);
    const upTo = Math.ceil((talk.utterances[0].end_ms + 1200) / 100);
    await streamAudio(s, chunks.slice(0, upTo), { chunkMs: 100 });
    await s.waitFor(() => s.completedItems().length >= 1 || s.errors().length > 0, { timeoutMs: 60_000, what: 'completed' });
    assert(s.errors().length === 0, `error events: ${JSON.stringify(s.errors())}`);
    matchUtterances(s, talk.utterances.slice(0, 1));
    await s.close();
  });
}
