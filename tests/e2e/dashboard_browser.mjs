#!/usr/bin/env node
// The live dashboard in a real browser (issue 9 acceptance): Debian's chromium, driven by
// playwright-core from npm (pinned in package-lock.json, installed at test time), opens the
// dashboard of a real `steno serve` on a simulated 8 GiB GPU and
//   - sees the empty state, the GPU card (ledger, usage bar, 15-minute chart) and no alert;
//   - uploads speech.wav through the form and follows it: the page reopens its one stream as
//     /v1/events?job=ID, the segments show up (the same ones as the job's verbose_json), the job
//     row reaches completed with progress 100 % and a real-time factor;
//   - sees the runner (tiny-random on cuda:0, its VRAM, a ticking keep-alive countdown) and
//     steno's memory on the GPU card;
//   - provokes an alert (the gpu_sim_tenant helper holds 5 GiB as another tenant, over the 50 %
//     memory rule given with --alert-rules) and sees the banner with its message and the other
//     tenant's memory on the card; downloads txt, srt, vtt and json through the page's buttons;
//   - saves screenshots at 1280 and 390 px (no horizontal overflow at 390) as test artifacts in
//     $STENO_ARTIFACTS_DIR (default: artifacts/ beside STENO_BIN), printing their paths;
//   - sees the banner go away when the tenant exits, and the runner go away after its Unload
//     button (steno's memory back to 0);
//   - cancels, with its Cancel button, a job left pending because a tenant holds the memory;
//   - follows the completed job again from its row (segments read from its result);
//   - opens the completed job's details: the node that ran it (as GET /v1/jobs/{id} names it)
//     and its one attempt, completed;
//   - and no page errors (uncaught exceptions, console errors, failed loads) all along.
// Exits non-zero if any check fails; the server, the tenant and the browser never outlive it.
//
//   STENO_BIN=build/steno STENO_TEST_DATA=build/test-data node tests/e2e/dashboard_browser.mjs \
//     [--tenant-bin build/tests/gpu_sim_tenant]   (also $STENO_GPU_SIM_TENANT; $CHROMIUM)
//     [--dashboard-dir web/dashboard]   (serve the files from disk instead of the embedded ones)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Checks, assert, parseSrt, parseVtt } from './lib/check.mjs';
import { installDeps } from './lib/deps.mjs';
import {
  browserProcesses, closeBrowserChecked, removeOnExit, sleep, startSteno, stopStenoChecked,
} from './lib/server.mjs';

const { values: opt } = parseArgs({ options: {
  'tenant-bin': { type: 'string', default: '' },
  'dashboard-dir': { type: 'string', default: '' },
} });
const bin = process.env.STENO_BIN || 'build/steno';
const data = process.env.STENO_TEST_DATA || 'build/test-data';
const tenantBin = opt['tenant-bin'] || process.env.STENO_GPU_SIM_TENANT ||
                  path.join(path.dirname(bin), 'tests', 'gpu_sim_tenant');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.STENO_ARTIFACTS_DIR || path.join(path.dirname(path.resolve(bin)), 'artifacts');
const MODEL = 'tiny-random';
const GiB = 1024 ** 3;
const RULE = 'gpu_memory_high';
const WAIT = { timeout: 30_000 };
const SLOW = { timeout: 180_000 };

const checks = new Checks('e2e.dashboard_browser');
const depsDir = await checks.step('npm ci of the pinned playwright-core', () => installDeps());
if (!depsDir) process.exit(checks.finish());
const { chromium } = createRequire(path.join(depsDir, 'package.json'))('playwright-core');

const tmp = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), 'steno-e2e-dashboard-')));
const dataDir = path.join(tmp, 'data');
const modelsDir = path.join(tmp, 'models');
fs.mkdirSync(modelsDir);
fs.copyFileSync(path.join(data, 'models', 'tiny-random.bin'), path.join(modelsDir, `${MODEL}.bin`));
const rules = path.join(tmp, 'alert-rules.json');
// Fires at once over 50 % and resolves at the first evaluation under it.
fs.writeFileSync(rules, JSON.stringify([{ name: RULE, kind: 'memory_usage_percent', threshold: 50,
                                          for_ms: 0, resolve_after_ms: 0, severity: 'critical' }]));

let server = null;
let browser = null;
let tenant = null;
let browserPids = [];
const pageErrors = [];
process.on('exit', () => { if (tenant && tenant.exitCode === null) tenant.kill('SIGKILL'); });

let code = 1;
try {
  server = await checks.step('steno serve starts on a simulated 8 GiB GPU with the alert rule', () =>
    startSteno({ bin, dataDir, modelsDir, args: [
      '--device', 'auto', '--simulate-gpus', '1x8GiB', '--alert-rules', rules, '--alert-interval', '1s',
      '--threads', '1', '--beam-size', '1', '--temperature-inc', '0',
      ...(opt['dashboard-dir'] ? ['--dashboard-dir', opt['dashboard-dir']] : [])] }));
  if (server) {
    console.log(`server at ${server.url}`);
    browser = await checks.step(`chromium (${chromiumPath}) launches headless`, async () => {
      assert(fs.existsSync(chromiumPath), `${chromiumPath} not found: scripts/install-deps installs chromium`);
      const b = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
      console.log(`chromium ${b.version()}`);
      browserPids = browserProcesses(server);
      assert(browserPids.length > 0, 'no browser process found');
      return b;
    });
    if (browser) await run(server.url);
  }
} finally {
  if (browser) {
    await closeBrowserChecked(checks, browser, browserPids);
  }
  if (tenant && tenant.exitCode === null) tenant.kill('SIGKILL');
  if (server) {
    await stopStenoChecked(checks, server);
  }
  code = checks.finish();
}
process.exit(code);

// Starts the tenant holding `size` on physical GPU 0 of the server's simulation; resolves once
// it says "holding".
async function holdMemory(size) {
  assert(fs.existsSync(tenantBin), `gpu_sim_tenant not found at ${tenantBin} (build it, or pass --tenant-bin)`);
  const child = spawn(tenantBin, [dataDir, '0', size], { stdio: ['ignore', 'pipe', 'pipe'] });
  tenant = child;
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  for (let i = 0; i < 600 && !/holding \d+/.test(out); i++) {
    assert(child.exitCode === null, `gpu_sim_tenant exited with ${child.exitCode}: ${out}`);
    await sleep(100);
  }
  assert(/holding \d+/.test(out), `gpu_sim_tenant did not say "holding" within 60 s: ${out}`);
}

async function bytesOf(locator) {
  return Number(await locator.getAttribute('data-bytes'));
}

async function releaseMemory() {
  if (!tenant || tenant.exitCode !== null) return;
  const exited = new Promise((resolve) => tenant.once('exit', resolve));
  tenant.kill('SIGTERM');
  await exited;
}

async function run(url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`); });
  const streams = [];
  page.on('request', (req) => { if (new URL(req.url()).pathname === '/v1/events') streams.push(req.url()); });

  const card = page.locator('[data-testid="gpu-card"][data-device="cuda:0"]');
  const banner = page.locator('[data-testid="alerts-banner"]');

  await checks.step('GET / serves the dashboard; its stream goes live', async () => {
    const res = await page.goto(`${url}/`);
    assert(res.status() === 200, `GET / answered ${res.status()}`);
    assert((res.headers()['content-type'] || '').startsWith('text/html'), `GET / content-type ${res.headers()['content-type']}`);
    await page.locator('[data-testid="connection"][data-state="live"]').waitFor(WAIT);
    assert(streams.length === 1 && streams[0] === `${url}/v1/events`, `streams opened: ${JSON.stringify(streams)}`);
  });

  await checks.step('the empty state tells a new user what to do; no alert is shown', async () => {
    const empty = page.locator('[data-testid="empty-state"]');
    await empty.waitFor({ state: 'visible', ...WAIT });
    // The curl example names an installed model once the model list has loaded.
    await page.waitForFunction((m) => document.querySelector('[data-testid="empty-state"]').textContent.includes(m),
      MODEL, WAIT);
    const text = await empty.innerText();
    assert(/upload/i.test(text) && text.includes('/v1/audio/transcriptions') && text.includes(MODEL),
           `empty state text: ${text}`);
    assert(await banner.isHidden(), 'the alerts banner is shown on an idle server');
  });

  await checks.step('the GPU card shows cuda:0: ledger, usage bar and the memory chart', async () => {
    await card.waitFor(WAIT);
    const total = await bytesOf(card.locator('dd[data-field="total"]'));
    assert(total === 8 * GiB, `total ${total}, expected 8 GiB`);
    assert((await card.locator('dd[data-field="total"]').innerText()) === '8.0 GiB', 'total is not shown as 8.0 GiB');
    assert(await bytesOf(card.locator('dd[data-field="available"]')) > 0, 'no available memory shown');
    const label = await card.locator('.usage-bar').getAttribute('aria-label');
    assert(/steno .*Other tenants .*Available .*GiB/.test(label), `usage bar label: ${label}`);
    for (const part of ['reserved', 'steno', 'other', 'available']) {
      assert(await card.locator(`.usage-bar .seg.${part}`).count() === 1, `usage bar has no ${part} part`);
    }
    await card.locator('svg.memory-chart path.total-line').first().waitFor({ state: 'attached', ...WAIT });
    const title = await card.locator('svg.memory-chart title').textContent();
    assert(/last 15 minutes/.test(title), `chart title: ${title}`);
  });

  let jobId = null;
  let segmentsShown = null;
  await checks.step('uploading speech.wav through the form starts a job the page follows', async () => {
    const models = await page.locator('#upload-model option').allTextContents();
    assert(models.includes(MODEL), `model select offers ${JSON.stringify(models)}`);
    await page.getByLabel('Audio or video file', { exact: true }).setInputFiles(path.join(data, 'media', 'speech.wav'));
    await page.getByLabel('Model', { exact: true }).selectOption(MODEL);
    await page.getByLabel('Language', { exact: true }).fill('en');
    await page.getByLabel('Priority', { exact: true }).selectOption('high');
    await page.getByRole('button', { name: 'Transcribe', exact: true }).click();
    const live = page.locator('[data-testid="live-job"]');
    await live.waitFor({ state: 'visible', ...WAIT });
    jobId = await live.getAttribute('data-job-id');
    assert(jobId, 'the live panel names no job');
    const jobStream = `${url}/v1/events?job=${encodeURIComponent(jobId)}`;
    for (let i = 0; i < 600 && !streams.includes(jobStream); i++) await sleep(100);  // up to 60 s
    assert(streams.includes(jobStream), `the page did not open ${jobStream}: ${JSON.stringify(streams)}`);
  });
  if (!jobId) return;

  await checks.step('segments arrive in the live panel and the job completes', async () => {
    await page.locator('[data-testid="segment"]').first().waitFor(SLOW);
    await page.locator('[data-testid="live-state"][data-state="completed"]').waitFor(SLOW);
    const res = await fetch(`${url}/v1/jobs/${jobId}/result?format=verbose_json`);
    assert(res.status === 200, `result: ${res.status}`);
    const expected = (await res.json()).segments.map((s) => s.text.trim());
    const shown = await page.locator('[data-testid="segment"] .seg-text').allTextContents();
    segmentsShown = shown;
    assert(JSON.stringify(shown) === JSON.stringify(expected),
           `segments shown ${JSON.stringify(shown)} differ from the result's ${JSON.stringify(expected)}`);
    const times = await page.locator('[data-testid="segment"] .ts').allTextContents();
    assert(times.every((t) => /^\d+:\d\d\.\d–\d+:\d\d\.\d$/.test(t)), `segment times: ${JSON.stringify(times)}`);
  });

  await checks.step('the jobs table shows the job completed, high priority, 100 %, with RTF', async () => {
    const row = page.locator(`[data-testid="job-row"][data-job-id="${jobId}"]`);
    await page.locator(`[data-testid="job-row"][data-job-id="${jobId}"][data-state="completed"]`).waitFor(WAIT);
    await page.waitForFunction((id) => {
      const r = document.querySelector(`[data-testid="job-row"][data-job-id="${id}"]`);
      return r && /×$/.test(r.querySelector('.rtf').textContent);
    }, jobId, WAIT);
    assert((await row.locator('.priority').innerText()) === 'high', 'priority is not high');
    assert((await row.locator('.progress-text').innerText()) === '100%', 'progress is not 100%');
    assert((await row.locator('.file').innerText()) === 'speech.wav', 'file name not shown');
    assert(/s$/.test(await row.locator('.audio').innerText()), 'no audio duration shown');
    assert(await row.getByRole('button', { name: /^Cancel/ }).isHidden(), 'a completed job offers Cancel');
    assert(await page.locator('[data-testid="empty-state"]').isHidden(), 'the empty state is still shown');
  });

  await checks.step('the runner row shows tiny-random on cuda:0 with its VRAM and a ticking countdown', async () => {
    const row = page.locator(`[data-testid="runner-row"][data-model="${MODEL}"]`);
    await row.waitFor(WAIT);
    assert((await row.getAttribute('data-device')) === 'cuda:0', `runner device ${await row.getAttribute('data-device')}`);
    const vram = await bytesOf(row.locator('.vram'));
    assert(vram > 0, `runner VRAM ${vram}`);
    assert(/(GiB|MiB)$/.test(await row.locator('.vram').innerText()), 'VRAM not shown in MiB/GiB');
    assert(await row.getByRole('button', { name: `Unload ${MODEL} from cuda:0`, exact: true }).isVisible(), 'no labelled Unload button');
    await page.waitForFunction((m) => /^\d+:\d\d$/.test(
      document.querySelector(`[data-testid="runner-row"][data-model="${m}"] .countdown`).textContent), MODEL, WAIT);
    const before = await row.locator('.countdown').innerText();
    const ticked = await page.waitForFunction(([m, was]) => document.querySelector(
      `[data-testid="runner-row"][data-model="${m}"] .countdown`).textContent !== was,
    [MODEL, before], WAIT).then(() => true, () => false);
    const after = await row.locator('.countdown').innerText();
    assert(ticked, `the keep-alive countdown did not tick in 30 s: ${before} then ${after}`);
  });

  await checks.step('the GPU card shows steno\'s memory', async () => {
    await page.waitForFunction(() => Number(document.querySelector(
      '[data-testid="gpu-card"][data-device="cuda:0"] dd[data-field="steno"]').dataset.bytes) > 0, null, WAIT);
    const steno = await bytesOf(card.locator('dd[data-field="steno"]'));
    const width = await card.locator('.usage-bar .seg.steno').evaluate((e) => e.getBoundingClientRect().width);
    assert(width > 0, `steno's part of the usage bar is ${width} px wide for ${steno} bytes`);
  });

  await checks.step('another tenant holding 5 GiB raises the alert banner with its message', async () => {
    await holdMemory('5GiB');
    const item = banner.locator(`[data-testid="alert"][data-name="${RULE}"]`);
    await item.waitFor({ state: 'visible', ...WAIT });
    assert((await banner.getAttribute('role')) === 'alert', 'the banner has no role="alert"');
    const text = await item.innerText();
    assert(/critical/i.test(text) && /cuda:0 memory usage is [\d.]+% \(above 50%/.test(text), `alert text: ${text}`);
    await page.waitForFunction(() => Number(document.querySelector(
      '[data-testid="gpu-card"][data-device="cuda:0"] dd[data-field="other"]').dataset.bytes) >= 5 * 1024 ** 3, null, WAIT);
  });

  await checks.step('the download buttons give the transcript as txt, srt, vtt and json', async () => {
    const get = async (ext) => {
      const [download] = await Promise.all([
        page.waitForEvent('download', WAIT),
        page.locator(`[data-testid="downloads"] button[data-format="${ext}"]`).click(),
      ]);
      assert(download.suggestedFilename() === `speech.${ext}`, `file name ${download.suggestedFilename()}`);
      return fs.readFileSync(await download.path(), 'utf8');
    };
    const srt = await get('srt');
    assert(parseSrt(srt).length >= 1, `srt has no cues: ${srt}`);
    const vtt = await get('vtt');
    assert(parseVtt(vtt).length >= 1, `vtt has no cues: ${vtt}`);
    const txt = await get('txt');
    assert(txt.trim().length > 0 && !txt.trimStart().startsWith('{'), `txt: ${txt}`);
    const json = JSON.parse(await get('json'));
    assert(typeof json.text === 'string' && json.text.trim().length > 0, `json: ${JSON.stringify(json)}`);
  });

  await checks.step('screenshots at 1280 and 390 px; no horizontal overflow at 390', async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    const wide = path.join(artifacts, 'dashboard-1280.png');
    await page.screenshot({ path: wide, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(1500);  // the charts redraw at their new width
    const overflow = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      widest: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391)
        .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className}`),
    }));
    assert(overflow.scroll <= 390, `page is ${overflow.scroll} px wide at 390: ${overflow.widest.join(', ')}`);
    const narrow = path.join(artifacts, 'dashboard-390.png');
    await page.screenshot({ path: narrow, fullPage: true });
    console.log(`screenshot: ${wide}\nscreenshot: ${narrow}`);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await checks.step('the banner goes away when the tenant exits', async () => {
    await releaseMemory();
    await banner.waitFor({ state: 'hidden', ...WAIT });
  });

  await checks.step('the Unload button unloads the runner and steno\'s memory goes back to 0', async () => {
    await page.getByRole('button', { name: `Unload ${MODEL} from cuda:0`, exact: true }).click();
    await page.locator(`[data-testid="runner-row"][data-model="${MODEL}"]`).waitFor({ state: 'detached', ...WAIT });
    await page.waitForFunction(() => Number(document.querySelector(
      '[data-testid="gpu-card"][data-device="cuda:0"] dd[data-field="steno"]').dataset.bytes) === 0, null, WAIT);
  });

  await checks.step('a job that cannot get memory waits; its Cancel button cancels it', async () => {
    await holdMemory('7800MiB');  // the 392 MiB left are less than the model needs
    // Submit only once the server has seen the tenant (the card shows what the scheduler knows).
    await page.waitForFunction(() => Number(document.querySelector(
      '[data-testid="gpu-card"][data-device="cuda:0"] dd[data-field="other"]').dataset.bytes) >= 7800 * 1024 ** 2, null, WAIT);
    await page.getByLabel('Audio or video file', { exact: true }).setInputFiles(path.join(data, 'media', 'speech.wav'));
    await page.getByRole('button', { name: 'Transcribe', exact: true }).click();
    const live = page.locator('[data-testid="live-job"]');
    await page.waitForFunction((old) => {
      const id = document.querySelector('[data-testid="live-job"]').dataset.jobId;
      return id && id !== old;
    }, jobId, WAIT);
    const waiting = await live.getAttribute('data-job-id');
    const row = page.locator(`[data-testid="job-row"][data-job-id="${waiting}"]`);
    await row.waitFor(WAIT);
    await sleep(1500);
    const state = await row.getAttribute('data-state');
    assert(state === 'pending', `the job that cannot get memory is ${state} after 1.5 s, expected pending`);
    await row.getByRole('button', { name: 'Cancel speech.wav', exact: true }).click();
    await page.locator(`[data-testid="job-row"][data-job-id="${waiting}"][data-state="cancelled"]`).waitFor(WAIT);
    await page.locator('[data-testid="live-state"][data-state="cancelled"]').waitFor(WAIT);
    assert(await row.getByRole('button', { name: 'Cancel speech.wav', exact: true }).isHidden(),
           'a cancelled job still offers Cancel');
    await releaseMemory();
  });

  await checks.step('Follow on the completed job shows its segments again (from its result)', async () => {
    const row = page.locator(`[data-testid="job-row"][data-job-id="${jobId}"]`);
    await row.getByRole('button', { name: 'Follow speech.wav: show its segments', exact: true }).click();
    await page.locator(`[data-testid="live-job"][data-job-id="${jobId}"][data-state="completed"]`).waitFor(WAIT);
    await page.locator('[data-testid="segment"]').first().waitFor(WAIT);
    const shown = await page.locator('[data-testid="segment"] .seg-text').allTextContents();
    assert(JSON.stringify(shown) === JSON.stringify(segmentsShown),
           `segments now ${JSON.stringify(shown)}, while live ${JSON.stringify(segmentsShown)}`);
  });

  await checks.step('Details on the completed job shows the node that ran it and its one attempt', async () => {
    const job = await (await fetch(`${url}/v1/jobs/${jobId}`)).json();
    assert(typeof job.node === 'string' && job.node.length > 0, `GET /v1/jobs/${jobId} names no node: ${JSON.stringify(job)}`);
    const row = page.locator(`[data-testid="job-row"][data-job-id="${jobId}"]`);
    await row.getByRole('button', { name: 'Details of speech.wav: where it ran', exact: true }).click();
    await page.locator(`[data-testid="job-detail"][data-job-id="${jobId}"][data-state="completed"]`).waitFor(WAIT);
    const node = await page.locator('[data-testid="job-detail-node"]').innerText();
    assert(node === job.node, `the detail shows node "${node}", the API "${job.node}"`);
    const runs = page.locator('[data-testid="attempt-row"]');
    assert((await runs.count()) === 1, `${await runs.count()} attempt rows, expected 1`);
    assert((await runs.first().getAttribute('data-node')) === job.node, 'the attempt names another node');
    const outcome = await runs.first().locator('[data-testid="attempt-outcome"]').innerText();
    assert(outcome === 'completed', `the attempt's outcome is "${outcome}"`);
    const shot = path.join(artifacts, 'dashboard-job-detail.png');
    await page.locator('[data-testid="job-detail"]').screenshot({ path: shot });
    console.log(`screenshot: ${shot}`);
    await page.getByRole('button', { name: 'Close the job details', exact: true }).click();
    await page.locator('[data-testid="job-detail"]').waitFor({ state: 'hidden', ...WAIT });
  });

  await checks.step('no errors in the page', () => {
    assert(pageErrors.length === 0, pageErrors.join('\n'));
  });
  await context.close();
}
