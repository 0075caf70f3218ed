// A client of steno's live transcription sessions (OpenAI Realtime transcription protocol,
// GET /v1/realtime?intent=transcription) over the pinned `ws` package, for the e2e tests and
// bench/realtime_latency.mjs: connect, configure, stream PCM16 at real-time pace, and wait for
// server events. Every received event is kept with its arrival time (performance.now()).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { readWav } from './wav.mjs';

const supportDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'support');

// The `ws` module from the installed e2e dependencies (lib/deps.mjs installDeps()).
export function loadWs(depsDir) {
  return createRequire(path.join(depsDir, 'package.json'))('ws');
}

// The synthesised dialogue (tests/support/make_dialogue.sh) in `dir`, made if missing:
// {wav16, wav24, durationMs, utterances: [{start_ms, end_ms, voice, text}]}.
export function dialogue(dir) {
  const res = spawnSync(path.join(supportDir, 'make_dialogue.sh'), [dir], { stdio: 'inherit' });
  if (res.status !== 0) throw new Error(`make_dialogue.sh ${dir} failed (status ${res.status})`);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'dialogue.json'), 'utf8'));
  return { wav16: path.join(dir, 'dialogue-16k.wav'), wav24: path.join(dir, 'dialogue-24k.wav'),
           durationMs: meta.duration_ms, utterances: meta.utterances };
}

// The PCM16 samples of a mono 16-bit WAV file cut into `chunkMs` chunks (Buffers, the last one
// shorter): {rate, chunks}.
export function pcmChunks(file, chunkMs = 100) {
  const { fmt, data } = readWav(file);
  const rate = fmt.readUInt32LE(4);
  if (fmt.readUInt16LE(2) !== 1 || fmt.readUInt16LE(14) !== 16) throw new Error(`${file}: not mono s16`);
  const step = (rate * chunkMs / 1000) * 2;
  const chunks = [];
  for (let off = 0; off < data.length; off += step) chunks.push(data.subarray(off, Math.min(data.length, off + step)));
  return { rate, chunks };
}

// Samples [startMs, endMs) of a mono 16-bit WAV file as a new 16-bit WAV file's bytes.
export function wavSlice(file, startMs, endMs) {
  const { fmt, data } = readWav(file);
  const rate = fmt.readUInt32LE(4);
  const a = Math.max(0, Math.round((startMs * rate) / 1000)) * 2;
  const b = Math.min(data.length, Math.round((endMs * rate) / 1000) * 2);
  const pcm = data.subarray(a, Math.max(a, b));
  const out = Buffer.alloc(44 + pcm.length);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + pcm.length, 4);
  out.write('WAVEfmt ', 8, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(pcm.length, 40);
  pcm.copy(out, 44);
  return out;
}

// The ws:// URL of a server's realtime endpoint.
export function realtimeUrl(httpUrl, query = 'intent=transcription') {
  return `${httpUrl.replace(/^http/, 'ws')}/v1/realtime${query ? `?${query}` : ''}`;
}

// One WebSocket session. `events` holds every server event as received ({...event, at}), and
// per item id: {started, stopped, committed, deltas: [{delta, at}], completed, failed}.
export class RealtimeSession {
  constructor(WebSocket, url, { apiKey = '', headers = {} } = {}) {
    this.events = [];
    this.items = new Map();
    this.itemOrder = [];
    this.waiters = [];
    this.closeInfo = null;
    const h = { ...headers };
    if (apiKey) h.Authorization = `Bearer ${apiKey}`;
    this.ws = new WebSocket(url, { headers: h, maxPayload: 64 * 1024 * 1024 });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => reject(Object.assign(new Error(`upgrade refused: HTTP ${res.statusCode} ${body}`),
                                                 { status: res.statusCode, body })));
      });
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: performance.now() };
        resolve(this.closeInfo);
        this.wake();
      });
    });
    this.ws.on('error', () => {});  // reported through `opened` or `closed`
    this.ws.on('message', (raw, isBinary) => this.onMessage(raw, isBinary));
  }

  item(id) {
    if (!this.items.has(id)) {
      this.items.set(id, { id, deltas: [] });
      this.itemOrder.push(id);
    }
    return this.items.get(id);
  }

  onMessage(raw, isBinary) {
    const at = performance.now();
    let ev;
    try {
      ev = JSON.parse(raw.toString());
    } catch {
      ev = { type: '(unparsable)', raw: raw.toString().slice(0, 200), binary: isBinary };
    }
    ev.at = at;
    this.events.push(ev);
    const id = ev.item_id;
    switch (ev.type) {
      case 'input_audio_buffer.speech_started': this.item(id).started = ev; break;
      case 'input_audio_buffer.speech_stopped': this.item(id).stopped = ev; break;
      case 'input_audio_buffer.committed': this.item(id).committed = ev; break;
      case 'conversation.item.input_audio_transcription.delta': this.item(id).deltas.push(ev); break;
      case 'conversation.item.input_audio_transcription.completed': this.item(id).completed = ev; break;
      case 'conversation.item.input_audio_transcription.failed': this.item(id).failed = ev; break;
      default: break;
    }
    this.wake();
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  send(event) {
    this.ws.send(typeof event === 'string' || Buffer.isBuffer(event) ? event : JSON.stringify(event));
  }

  // Resolves with the first event since index `from` for which pred(ev) holds; rejects after
  // `timeoutMs` or when the socket closes first (naming the events seen).
  waitFor(pred, { timeoutMs = 30_000, from = 0, what = 'event' } = {}) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const check = () => {
        const ev = this.events.slice(from).find(pred);
        if (ev) {
          done();
          resolve(ev);
        } else if (this.closeInfo) {
          done();
          reject(new Error(`${what}: socket closed (${this.closeInfo.code} ${this.closeInfo.reason}) first; ` +
                           `events: ${this.describe(from)}`));
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      timer = setTimeout(() => {
        done();
        reject(new Error(`${what}: none within ${timeoutMs} ms; events: ${this.describe(from)}`));
      }, timeoutMs);
      this.waiters.push(check);
      check();
    });
  }

  type(t, opts = {}) {
    return this.waitFor((e) => e.type === t, { what: t, ...opts });
  }

  describe(from = 0) {
    const s = JSON.stringify(this.events.slice(from).map(({ at, ...e }) => e));
    return s.length > 1500 ? `${s.slice(0, 1500)}...` : s;
  }

  errors() {
    return this.events.filter((e) => e.type === 'error');
  }

  // The items in the order the server first named them, with a completed event.
  completedItems() {
    return this.itemOrder.map((id) => this.items.get(id)).filter((it) => it.completed);
  }

  close(code = 1000) {
    if (!this.closeInfo) this.ws.close(code);
    return this.closed;
  }

  terminate() {
    this.ws.terminate();
    return this.closed;
  }
}

// transcription_session.update with OpenAI's shape; resolves with transcription_session.updated.
// `extra` is merged into `session` (e.g. a 16 kHz input format).
export async function configure(session, { model, language = 'en', prompt = '', turnDetection = {}, extra = {} }) {
  const from = session.events.length;
  session.send({
    type: 'transcription_session.update',
    session: {
      input_audio_format: 'pcm16',
      input_audio_transcription: { model, language, prompt },
      turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500,
                        ...turnDetection },
      ...extra,
    },
  });
  return session.waitFor((e) => e.type === 'transcription_session.updated' || e.type === 'error',
    { from, what: 'transcription_session.updated' }).then((ev) => {
    if (ev.type === 'error') throw new Error(`transcription_session.update refused: ${JSON.stringify(ev.error)}`);
    return ev;
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Sends `chunks` as input_audio_buffer.append events, chunk i at t0 + i * chunkMs (real-time
// pace on an absolute schedule: a late timer does not push the rest later). Stops early when
// `shouldStop()` says so or the socket closes. Resolves with t0 (performance.now() at chunk 0).
export async function streamAudio(session, chunks, { chunkMs = 100, shouldStop = () => false } = {}) {
  const t0 = performance.now();
  for (let i = 0; i < chunks.length; i++) {
    if (shouldStop() || session.closeInfo) break;
    const wait = t0 + i * chunkMs - performance.now();
    if (wait > 0) await sleep(wait);
    session.send({ type: 'input_audio_buffer.append', audio: chunks[i].toString('base64') });
  }
  return t0;
}
