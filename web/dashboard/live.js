// The live captions panel: the browser's microphone (getUserMedia → an AudioWorklet, or a
// ScriptProcessor where worklets are missing) resampled to 24 kHz PCM16 and sent as base64
// `input_audio_buffer.append` events over one WebSocket to /v1/realtime?intent=transcription
// (OpenAI's Realtime transcription protocol). The server's VAD cuts utterances; each shows as a
// caption that grows with the `delta` events and is replaced by its `completed` transcript.
// A browser cannot set headers on a WebSocket: the API key travels as the subprotocol
// "openai-insecure-api-key.KEY", as OpenAI's own browser clients send it.
import { apiKey } from './api.js';
import { h, setAttr, setText } from './dom.js';

const RATE = 24_000;  // OpenAI's pcm16
const CHUNK_SAMPLES = RATE / 10;  // 100 ms per append
const MAX_CAPTIONS = 100;

// Linear-interpolation resampler from the capture rate to RATE, keeping its phase across blocks.
export class Resampler {
  constructor(from, to = RATE) {
    this.step = from / to;
    this.pos = 0;  // position of the next output sample, in input samples from `last`
    this.last = 0;  // the previous block's final sample (index -1 of the next block)
  }

  // Float samples at `from` → Int16 samples at `to`.
  push(input) {
    const out = new Int16Array(Math.max(0, Math.ceil((input.length - this.pos) / this.step) + 1));
    let n = 0;
    let pos = this.pos;
    while (pos < input.length) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = i === 0 ? this.last : input[i - 1];
      const b = input[i];
      const v = a + (b - a) * frac;  // pos counts from index -1: sample pos-1 .. pos
      out[n++] = Math.max(-32768, Math.min(32767, Math.round(v * 32767)));
      pos += this.step;
    }
    this.pos = pos - input.length;
    if (input.length > 0) this.last = input[input.length - 1];
    return out.subarray(0, n);
  }
}

function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// Microphone capture into `ctx` (an AudioContext made while the user's click still counts, so
// the browser lets it run): calls onPcm(Int16Array of CHUNK_SAMPLES at RATE) every 100 ms.
class Microphone {
  constructor(ctx) {
    this.ctx = ctx;
  }

  async start(onPcm) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error('this page cannot use the microphone here (it needs https or localhost)');
    }
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const resampler = new Resampler(this.ctx.sampleRate);
    let pending = new Int16Array(0);
    const onFloat = (block) => {
      const pcm = resampler.push(block);
      const joined = new Int16Array(pending.length + pcm.length);
      joined.set(pending);
      joined.set(pcm, pending.length);
      let off = 0;
      for (; joined.length - off >= CHUNK_SAMPLES; off += CHUNK_SAMPLES) onPcm(joined.slice(off, off + CHUNK_SAMPLES));
      pending = joined.slice(off);
    };
    const source = this.ctx.createMediaStreamSource(this.stream);
    const mute = this.ctx.createGain();  // processing nodes run only when pulled by the output
    mute.gain.value = 0;
    mute.connect(this.ctx.destination);
    if (this.ctx.audioWorklet) {
      await this.ctx.audioWorklet.addModule('/dashboard/pcm-worklet.js');
      this.node = new AudioWorkletNode(this.ctx, 'pcm-capture');
      this.node.port.onmessage = (e) => onFloat(e.data);
    } else {
      this.node = this.ctx.createScriptProcessor(4096, 1, 1);
      this.node.onaudioprocess = (e) => onFloat(e.inputBuffer.getChannelData(0));
    }
    source.connect(this.node);
    this.node.connect(mute);
    if (this.ctx.state === 'suspended') await this.ctx.resume();
  }

  stop() {
    if (this.node) this.node.disconnect();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.node = null;
    this.stream = null;
  }
}

export class LiveCaptionsPanel {
  // els: {form, model, language, start, stop, status, list}; hooks: {onError(err)}.
  constructor(els, hooks = {}) {
    this.els = els;
    this.hooks = hooks;
    this.ws = null;
    this.mic = null;
    this.captions = new Map();  // item_id → li
    els.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.start();
    });
    els.stop.addEventListener('click', () => this.stop());
    this.show('idle', 'Stopped. Start to caption your microphone.');
  }

  setModels(ids) {
    const select = this.els.model;
    const previous = select.value;
    const usable = ids.filter((id) => !/^silero/i.test(id));
    select.replaceChildren(...usable.map((id) => h('option', { value: id }, id)));
    if (usable.includes(previous)) select.value = previous;
    select.disabled = usable.length === 0;
    if (usable.length === 0) select.append(h('option', { value: '' }, 'no models installed'));
  }

  running() {
    return this.ws !== null;
  }

  show(state, text) {
    const el = this.els.status;
    setAttr(el, 'data-state', state);
    setText(el, text);
    this.els.start.disabled = state !== 'idle' && state !== 'closed';
    this.els.stop.disabled = !this.els.start.disabled;
  }

  start() {
    if (this.running()) return;
    const model = this.els.model.value;
    if (!model) {
      this.show('closed', 'Choose a model first.');
      return;
    }
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/realtime?intent=transcription`;
    const key = apiKey();
    this.show('connecting', `Connecting to ${model}…`);
    this.audioCtx = new AudioContext();
    const ws = new WebSocket(url, key ? ['realtime', `openai-insecure-api-key.${key}`] : undefined);
    this.ws = ws;
    this.settings = { model, language: this.els.language.value.trim() };
    this.opened = false;
    ws.onopen = () => { this.opened = true; };
    ws.onmessage = (e) => this.onEvent(JSON.parse(e.data));
    ws.onclose = (e) => this.onClose(e);
  }

  send(event) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(event));
  }

  stop() {
    if (!this.ws) return;
    this.show('stopping', 'Stopping…');
    this.stopMicrophone();
    this.ws.close(1000, 'stopped');
  }

  stopMicrophone() {
    if (this.mic) this.mic.stop();
    this.mic = null;
    if (this.audioCtx) this.audioCtx.close().catch(() => {});
    this.audioCtx = null;
  }

  onClose(e) {
    this.stopMicrophone();
    this.ws = null;
    const clean = e.code === 1000 || e.code === 1005;
    let text = clean ? 'Stopped.' : `The session ended (${e.code}${e.reason ? `: ${e.reason}` : ''}).`;
    if (!this.opened) text = 'Could not open a live session (is the server reachable, and the API key right?).';
    this.show(clean && this.opened ? 'idle' : 'closed', text);
  }

  async startMicrophone() {
    this.mic = new Microphone(this.audioCtx);
    try {
      await this.mic.start((pcm) => this.send({
        type: 'input_audio_buffer.append', audio: base64(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength)),
      }));
      this.show('live', `Listening (${this.settings.model}).`);
    } catch (err) {
      this.show('stopping', `Microphone: ${err.message}`);
      this.stopMicrophone();
      if (this.ws) this.ws.close(1000, 'no microphone');
      if (this.hooks.onError) this.hooks.onError(err);
    }
  }

  onEvent(ev) {
    switch (ev.type) {
      case 'transcription_session.created':
        this.send({
          type: 'transcription_session.update',
          session: {
            input_audio_format: 'pcm16',
            input_audio_transcription: { model: this.settings.model, language: this.settings.language },
            turn_detection: { type: 'server_vad' },
          },
        });
        break;
      case 'transcription_session.updated':
        if (!this.mic) this.startMicrophone();
        break;
      case 'input_audio_buffer.speech_started':
        this.caption(ev.item_id);
        break;
      case 'conversation.item.input_audio_transcription.delta':
        this.caption(ev.item_id).text += ev.delta || '';
        this.render(ev.item_id);
        break;
      case 'conversation.item.input_audio_transcription.completed': {
        const c = this.caption(ev.item_id);
        c.text = ev.transcript || '';
        c.state = 'final';
        this.render(ev.item_id);
        break;
      }
      case 'conversation.item.input_audio_transcription.failed': {
        const c = this.caption(ev.item_id);
        c.state = 'failed';
        c.text = `(not transcribed: ${(ev.error && ev.error.message) || 'failed'})`;
        this.render(ev.item_id);
        break;
      }
      case 'error':
        setText(this.els.status, `Error: ${(ev.error && ev.error.message) || 'unknown'}`);
        break;
      default:
        break;
    }
  }

  // The caption of `id`, created (empty, partial) at the end of the list if new.
  caption(id) {
    let c = this.captions.get(id);
    if (!c) {
      const li = h('li', { 'data-testid': 'caption', 'data-item-id': id, 'data-state': 'partial' },
        h('span', { class: 'caption-text' }));
      c = { li, text: '', state: 'partial' };
      this.captions.set(id, c);
      this.els.list.append(li);
      while (this.els.list.children.length > MAX_CAPTIONS) {
        const first = this.els.list.firstElementChild;
        this.captions.delete(first.dataset.itemId);
        first.remove();
      }
      this.render(id);
    }
    return c;
  }

  render(id) {
    const c = this.captions.get(id);
    if (!c) return;
    setAttr(c.li, 'data-state', c.state);
    setText(c.li.querySelector('.caption-text'), c.text.trim() || (c.state === 'partial' ? '…' : ''));
    this.els.list.scrollTop = this.els.list.scrollHeight;
  }
}
