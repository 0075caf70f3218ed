#!/usr/bin/env node
// End to end with the plainest client there is: Node's built-in fetch and FormData (no package),
// the way a script on any Node >= 18 would call steno, plus the exact multipart framings that
// real clients send. Exits non-zero on any mismatch; the server never outlives the script.
//
// RFC 2046 lets a multipart body end right after the closing boundary ("--B--" with no CRLF),
// and Node 18's fetch (undici 5) sends exactly that; curl, browsers and Node 20 add the CRLF.
// A server must accept both.
//
//   STENO_BIN=build/steno STENO_TEST_DATA=build/test-data node tests/e2e/fetch_client.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Checks, assert, assertType } from './lib/check.mjs';
import { timed } from './lib/http.mjs';
import { removeOnExit, startSteno, stopStenoChecked } from './lib/server.mjs';

const bin = process.env.STENO_BIN || 'build/steno';
const data = process.env.STENO_TEST_DATA || 'build/test-data';
const MODEL = 'tiny-random';
const wav = fs.readFileSync(path.join(data, 'media', 'speech.wav'));

const checks = new Checks('e2e.fetch_client');
const tmp = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), 'steno-e2e-fetch-')));
const modelsDir = path.join(tmp, 'models');
fs.mkdirSync(modelsDir);
fs.copyFileSync(path.join(data, 'models', 'tiny-random.bin'), path.join(modelsDir, `${MODEL}.bin`));

let server;
let code = 1;
try {
  server = await checks.step('steno serve starts', () =>
    startSteno({ bin, dataDir: path.join(tmp, 'data'), modelsDir }));
  if (server) await run(server.url);
} finally {
  if (server) {
    await stopStenoChecked(checks, server);
  }
  code = checks.finish();
}
process.exit(code);

// A multipart body framed byte for byte: `trailer` follows the closing boundary.
function rawMultipart(trailer, { preamble = '' } = {}) {
  const b = '----formdata-undici-076722940760';
  const body = Buffer.concat([
    Buffer.from(`${preamble}--${b}\r\nContent-Disposition: form-data; name="model"\r\n\r\n${MODEL}\r\n`),
    Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="speech.wav"\r\n` +
                'Content-Type: audio/wav\r\n\r\n'),
    wav,
    Buffer.from(`\r\n--${b}--${trailer}`),
  ]);
  return { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${b}` } };
}

async function run(url) {
  await checks.step('fetch + FormData: POST /v1/audio/transcriptions answers json', async () => {
    const form = new FormData();
    form.append('file', new Blob([wav], { type: 'audio/wav' }), 'speech.wav');
    form.append('model', MODEL);
    form.append('response_format', 'json');
    const r = await timed(`${url}/v1/audio/transcriptions`, { method: 'POST', body: form });
    assert(r.status === 200, `status ${r.status}: ${r.text}`);
    assertType(r.json?.text, 'string', '.text');
  });

  await checks.step('fetch + FormData: POST /v1/jobs is accepted (202) and completes', async () => {
    const form = new FormData();
    form.append('file', new Blob([wav], { type: 'audio/wav' }), 'speech.wav');
    form.append('model', MODEL);
    const r = await timed(`${url}/v1/jobs`, { method: 'POST', body: form });
    assert(r.status === 202, `status ${r.status}: ${r.text}`);
    const id = r.json.id;
    assertType(id, 'string', '.id');
    const deadline = Date.now() + 60_000;
    let state = r.json.state;
    while (!['completed', 'failed', 'cancelled'].includes(state) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      state = (await timed(`${url}/v1/jobs/${id}`)).json?.state;
    }
    assert(state === 'completed', `job ${id} ended ${state}`);
    const result = await timed(`${url}/v1/jobs/${id}/result?format=srt`);
    assert(result.status === 200 && /-->/.test(result.text), `result: ${result.status} ${result.text}`);
  });

  const framings = [
    ['CRLF after the closing boundary (curl, browsers, Node 20)', '\r\n', {}],
    ['nothing after the closing boundary (Node 18 fetch; RFC 2046 allows it)', '', {}],
    ['an epilogue after the closing boundary', '\r\nthis epilogue is ignored\r\n', {}],
    ['a preamble before the first boundary', '\r\n', { preamble: 'this preamble is ignored\r\n' }],
  ];
  for (const [label, trailer, options] of framings) {
    await checks.step(`multipart with ${label}: 200`, async () => {
      const r = await timed(`${url}/v1/audio/transcriptions`, rawMultipart(trailer, options));
      assert(r.status === 200, `status ${r.status}: ${r.text}`);
      assertType(r.json?.text, 'string', '.text');
    });
  }
}
