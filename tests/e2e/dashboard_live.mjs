#!/usr/bin/env node
// The dashboard's live captions panel in a real browser (issue 19): Debian's chromium, driven by
// playwright-core (pinned, installed at test time), with a fake microphone that plays the first
// three utterances of the synthesised dialogue (--use-fake-device-for-media-stream,
// --use-file-for-fake-audio-capture), against a real `steno serve` (CPU, the tiny generated
// model, the real Silero VAD model) that requires an API key (kept in the page's storage, as the
// dashboard keeps it):
//   - the panel offers the model; Start opens /v1/realtime and streams the microphone;
//   - captions appear, and each final caption is the completed transcript the server sent for
//     its item (the WebSocket's frames, as the browser received them);
//   - the runners table shows the live session on the runner, and none after Stop;
//   - no page errors all along.
// Exits 77 (skipped) when the Silero model is not there; non-zero if any check fails.
//
//   STENO_BIN=build/steno STENO_TEST_DATA=build/test-data node tests/e2e/dashboard_live.mjs
//     [--dashboard-dir web/dashboard]   (serve the files from disk instead of the embedded ones)
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Checks, assert } from './lib/check.mjs';
import { installDeps } from './lib/deps.mjs';
import { SERVE_ARGS, modelsDirWithVad } from './lib/live_setup.mjs';
import { dialogue, wavSlice } from './lib/realtime.mjs';
import {
  browserProcesses, closeBrowserChecked, removeOnExit, startSteno, stopStenoChecked,
} from './lib/server.mjs';

const { values: opt } = parseArgs({ options: { 'dashboard-dir': { type: 'string', default: '' } } });
const bin = process.env.STENO_BIN || 'build/steno';
const data = process.env.STENO_TEST_DATA || 'build/test-data';
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const MODEL = 'tiny-random';
const API_KEY = 'sk-e2e-live-0123456789';
const WAIT = { timeout: 30_000 };
const SLOW = { timeout: 120_000 };

const checks = new Checks('e2e.dashboard_live');
const tmp = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), 'steno-e2e-dashboard-live-')));
const modelsDir = modelsDirWithVad(tmp, data, MODEL);
if (!modelsDir) {
  console.log('SKIP: the Silero VAD model is not in ../shared/models');
  process.exit(77);
}
const depsDir = await checks.step('npm ci of the pinned playwright-core', () => installDeps());
if (!depsDir) process.exit(checks.finish());
const { chromium } = createRequire(path.join(depsDir, 'package.json'))('playwright-core');
const talk = dialogue(path.join(data, 'live'));
// The microphone: the first three utterances and 2 s of the silence after them.
const mic = path.join(tmp, 'microphone.wav');
fs.writeFileSync(mic, wavSlice(talk.wav16, 0, talk.utterances[2].end_ms + 1400));

let server = null;
let browser = null;
let browserPids = [];
let code = 1;
try {
  server = await checks.step('steno serve starts with an API key', () =>
    startSteno({ bin, dataDir: path.join(tmp, 'data'), modelsDir, args: [
      ...SERVE_ARGS, '--api-key', API_KEY, ...(opt['dashboard-dir'] ? ['--dashboard-dir', opt['dashboard-dir']] : [])] }));
  if (server) {
    browser = await checks.step(`chromium (${chromiumPath}) launches with a fake microphone`, async () => {
      assert(fs.existsSync(chromiumPath), `${chromiumPath} not found: scripts/install-deps installs chromium`);
      const b = await chromium.launch({ executablePath: chromiumPath, args: [
        '--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${mic}%noloop`] });
      browserPids = browserProcesses(server);
      return b;
    });
    if (browser) await run(server.url);
  }
} finally {
  if (browser) {
    await closeBrowserChecked(checks, browser, browserPids);
  }
  if (server) await stopStenoChecked(checks, server);
  code = checks.finish();
}
process.exit(code);

async function run(url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((key) => localStorage.setItem('steno.apiKey', key), API_KEY);
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`); });
  const completed = new Map();  // item_id → transcript, as the browser received them
  const sockets = [];
  page.on('websocket', (ws) => {
    sockets.push(ws.url());
    ws.on('framereceived', ({ payload }) => {
      try {
        const ev = JSON.parse(payload.toString());
        if (ev.type === 'conversation.item.input_audio_transcription.completed') completed.set(ev.item_id, ev.transcript);
      } catch {
        // not JSON: the server sends none
      }
    });
  });

  await checks.step('the dashboard loads with the saved key; the captions panel offers the model', async () => {
    await page.goto(`${url}/`);
    await page.locator('[data-testid="connection"][data-state="live"]').waitFor(WAIT);
    await page.locator(`#captions-model option[value="${MODEL}"]`).waitFor({ state: 'attached', ...WAIT });
    await page.getByLabel('Caption model', { exact: true }).selectOption(MODEL);
    await page.getByLabel('Caption language', { exact: true }).fill('en');
    assert(await page.getByRole('button', { name: 'Stop', exact: true }).isDisabled(), 'Stop is enabled before Start');
  });

  await checks.step('Start opens /v1/realtime and listens to the microphone', async () => {
    await page.getByRole('button', { name: 'Start microphone', exact: true }).click();
    await page.locator('[data-testid="captions-status"][data-state="live"]').waitFor(WAIT);
    assert(sockets.length === 1 && new URL(sockets[0]).pathname === '/v1/realtime', `sockets: ${JSON.stringify(sockets)}`);
  });

  await checks.step('the runners table shows the live session on the runner', async () => {
    await page.locator(`[data-testid="runner-row"][data-model="${MODEL}"] [data-testid="runner-live-sessions"][data-count="1"]`)
      .waitFor(WAIT);
  });

  await checks.step('captions appear; each final one is the transcript the server completed', async () => {
    await page.locator('[data-testid="caption"][data-state="final"]').nth(2).waitFor(SLOW);
    const shown = await page.locator('[data-testid="caption"][data-state="final"]').evaluateAll((lis) =>
      lis.map((li) => ({ id: li.dataset.itemId, text: li.querySelector('.caption-text').textContent })));
    for (const c of shown) {
      assert(completed.has(c.id), `caption ${c.id} has no completed event: ${JSON.stringify([...completed])}`);
      const want = completed.get(c.id).trim();
      assert(c.text === want || (want === '' && c.text === ''), `caption ${c.id} shows ${JSON.stringify(c.text)}, the server completed ${JSON.stringify(want)}`);
    }
    assert(shown.length >= 3, `${shown.length} final captions for three utterances`);
    console.log(`  captions: ${JSON.stringify(shown.map((c) => c.text))}`);
    fs.mkdirSync(artifactsDir(), { recursive: true });
    const shot = path.join(artifactsDir(), 'dashboard-live-captions.png');
    await page.locator('[data-testid="live-captions"]').screenshot({ path: shot });
    console.log(`screenshot: ${shot}`);
  });

  await checks.step('Stop closes the session; the runner shows no live session', async () => {
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.locator('[data-testid="captions-status"][data-state="idle"]').waitFor(WAIT);
    await page.locator(`[data-testid="runner-row"][data-model="${MODEL}"] [data-testid="runner-live-sessions"][data-count="0"]`)
      .waitFor(WAIT);
  });

  await checks.step('no errors in the page', () => {
    assert(pageErrors.length === 0, pageErrors.join('\n'));
  });
  await context.close();
}

function artifactsDir() {
  return process.env.STENO_ARTIFACTS_DIR || path.join(path.dirname(path.resolve(bin)), 'artifacts');
}
