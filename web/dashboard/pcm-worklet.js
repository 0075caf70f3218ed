// The live captions panel's AudioWorklet (live.js): hands the microphone's first channel to the
// page in blocks of about 2048 samples (at the AudioContext's rate), so the page is not woken
// for every 128-sample render quantum.
class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Float32Array(2048);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    let off = 0;
    while (off < channel.length) {
      const n = Math.min(channel.length - off, this.buffer.length - this.filled);
      this.buffer.set(channel.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === this.buffer.length) {
        this.port.postMessage(this.buffer.slice(0));
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor('pcm-capture', PcmCapture);
