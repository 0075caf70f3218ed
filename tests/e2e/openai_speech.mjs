#!/usr/bin/env node
// End to end with the official `openai` npm client (pinned in package-lock.json): text to speech
// through a real `steno serve` whose `tts` model is a managed model server, the tts_server helper
// (espeak-ng's audio, converted by FFmpeg) declared in a --models-config file as an
// `openai-speech` model. `audio.speech.create` returns audio that FFmpeg decodes to espeak-ng's
// own duration for the same text (within 0.1 s), in the default format (mp3) and in wav; a bad
// request is the client's BadRequestError naming the field. Exits non-zero on any mismatch.
//
//   node tests/e2e/openai_speech.mjs --tts-bin build/tts_server
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import { Checks, assert } from './lib/check.mjs';
import { installDeps } from './lib/deps.mjs';
import { removeOnExit, startSteno, stopStenoChecked } from './lib/server.mjs';
import { wavSeconds } from './lib/wav.mjs';

const bin = process.env.STENO_BIN || 'build/steno';
const ttsIndex = process.argv.indexOf('--tts-bin');
const ttsBin = ttsIndex > 0 ? process.argv[ttsIndex + 1] : 'build/tts_server';
const API_KEY = 'sk-e2e-speech-0123456789';
const TEXT = 'The official client asks steno to read this sentence aloud.';

const checks = new Checks('e2e.openai_speech');
const depsDir = await checks.step('npm ci of the pinned openai client', () => installDeps());
if (!depsDir) process.exit(checks.finish());
const OpenAI = createRequire(path.join(depsDir, 'package.json'))('openai');

const tmp = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), 'steno-e2e-speech-')));
const modelsDir = path.join(tmp, 'models');
fs.mkdirSync(modelsDir);
const config = path.join(tmp, 'models.toml');
fs.writeFileSync(config, [
  '[[models]]',
  'name = "tts"',
  'kind = "server"',
  `command = [${JSON.stringify(path.resolve(ttsBin))}, "--port", "{port}", "--host", "{host}"]`,
  'protocol = "openai-speech"',
  'ram = "64MiB"',
  'ready_timeout = "60s"',
  ''].join('\n'));

// Seconds of audio in `file` as FFmpeg decodes it (converted to WAV first).
function decodedSeconds(file) {
  const wav = `${file}.decoded.wav`;
  execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-i', file, '-f', 'wav', wav]);
  return wavSeconds(wav);
}

const reference = (() => {
  fs.writeFileSync(path.join(tmp, 'ref.txt'), TEXT);
  execFileSync('espeak-ng', ['-w', path.join(tmp, 'ref.wav'), '-f', path.join(tmp, 'ref.txt')]);
  return decodedSeconds(path.join(tmp, 'ref.wav'));
})();
console.log(`espeak-ng's own rendering: ${reference.toFixed(3)} s`);

let server;
let code = 1;
try {
  server = await checks.step('steno serve starts with the tts model declared', () =>
    startSteno({ bin, dataDir: path.join(tmp, 'data'), modelsDir,
                 args: ['--api-key', API_KEY, '--models-config', config] }));
  if (server) await run(server.url);
} finally {
  if (server) await stopStenoChecked(checks, server);
  code = checks.finish();
}
process.exit(code);

async function run(url) {
  const client = new OpenAI({ apiKey: API_KEY, baseURL: `${url}/v1`, maxRetries: 0, timeout: 120_000 });

  for (const format of [undefined, 'wav']) {
    await checks.step(`audio.speech.create (${format || 'default: mp3'}) decodes to espeak-ng's duration`, async () => {
      const request = { model: 'tts', voice: 'alloy', input: TEXT };
      if (format) request.response_format = format;
      const response = await client.audio.speech.create(request);
      const type = response.headers.get('content-type');
      assert(type === (format === 'wav' ? 'audio/wav' : 'audio/mpeg'), `Content-Type ${type}`);
      const bytes = Buffer.from(await response.arrayBuffer());
      const file = path.join(tmp, `speech.${format || 'mp3'}`);
      fs.writeFileSync(file, bytes);
      const seconds = decodedSeconds(file);
      assert(Math.abs(seconds - reference) <= 0.1,
             `decoded ${seconds.toFixed(3)} s, espeak-ng's own ${reference.toFixed(3)} s`);
    });
  }

  await checks.step('models.list() shows the tts model with kind "server"', async () => {
    const page = await client.models.list();
    const tts = page.data.find((m) => m.id === 'tts');
    assert(tts, `tts not listed: ${JSON.stringify(page.data.map((m) => m.id))}`);
    assert(tts.kind === 'server', `kind ${tts.kind}`);
  });

  await checks.step('a bad speed is BadRequestError naming "speed"', async () => {
    try {
      await client.audio.speech.create({ model: 'tts', voice: 'alloy', input: TEXT, speed: 10 });
    } catch (err) {
      assert(err instanceof OpenAI.BadRequestError, `not a BadRequestError: ${err}`);
      assert(err.param === 'speed', `param ${err.param}`);
      return;
    }
    throw new Error('a speed of 10 was accepted');
  });
}
