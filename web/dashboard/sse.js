// The page's one Server-Sent Events stream, read with fetch() so it can carry the API key
// (EventSource cannot send headers). Parses the text/event-stream framing itself, reconnects
// with exponential backoff (0.5 s doubling to 15 s, reset once a stream delivers an event), and
// treats a stream silent for longer than `silenceMs` as dead (the server sends a snapshot every
// second and a keep-alive comment when idle).
//
// Status callbacks: onStatus(state, detail) with state one of
//   'connecting'    a request is on its way
//   'live'          events are arriving
//   'reconnecting'  detail: {delayMs, error}; a new attempt follows after delayMs
//   'unauthorized'  detail: {message}; no retry until restart() (after a key was entered)
import { authHeaders, errorOf } from './api.js';

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;

export class EventStream {
  // url(): the URL to (re)connect to, asked on every attempt.
  constructor({ url, onEvent, onStatus, silenceMs = 30_000 }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.silenceMs = silenceMs;
    this.generation = 0;
    this.controller = null;
  }

  // Drops the current stream (if any) and opens a new one at url().
  restart() {
    this.close();
    const generation = this.generation;
    this.run(generation);
  }

  close() {
    this.generation++;
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  current(generation) {
    return generation === this.generation;
  }

  async run(generation) {
    let attempt = 0;
    while (this.current(generation)) {
      const controller = new AbortController();
      this.controller = controller;
      this.onStatus(attempt === 0 ? 'connecting' : 'reconnecting', { delayMs: 0 });
      let error = null;
      try {
        const res = await fetch(this.url(), {
          headers: { Accept: 'text/event-stream', ...authHeaders() },
          cache: 'no-store',
          signal: controller.signal,
        });
        if (res.status === 401) {
          const e = await errorOf(res);
          if (this.current(generation)) this.onStatus('unauthorized', { message: e.message });
          return;
        }
        if (!res.ok) throw await errorOf(res);
        await this.read(res.body, controller, generation, () => { attempt = 0; });
      } catch (err) {
        error = err;
      }
      if (!this.current(generation)) return;
      attempt++;
      const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** (attempt - 1));
      const delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
      this.onStatus('reconnecting', { delayMs, error: error ? error.message : 'the stream ended' });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  // Reads frames until the body ends; throws on a network error or when silent too long.
  async read(body, controller, generation, onDelivered) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let frame = { event: '', data: [] };
    let timer = null;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new Error('the stream went silent')), this.silenceMs);
    };
    arm();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || !this.current(generation)) return;
        arm();
        buffer += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, '');
          buffer = buffer.slice(nl + 1);
          if (line === '') {
            if (frame.data.length > 0) {
              this.dispatch(frame.event || 'message', frame.data.join('\n'), generation);
              onDelivered();
            }
            frame = { event: '', data: [] };
          } else if (!line.startsWith(':')) {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') frame.event = val;
            else if (field === 'data') frame.data.push(val);
          }
        }
      }
    } finally {
      clearTimeout(timer);
      reader.cancel().catch(() => {});
    }
  }

  dispatch(type, text, generation) {
    if (!this.current(generation)) return;
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      console.warn(`steno: event ${type} with data that is not JSON`, text);
      return;
    }
    this.onStatus('live', {});
    this.onEvent(type, data);
  }
}
