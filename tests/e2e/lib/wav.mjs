// Just enough RIFF/WAVE handling to cut test audio to a length, without ffmpeg.
import fs from 'node:fs';

// Reads a PCM WAV file: {fmt: Buffer (the fmt chunk's body), data: Buffer, byteRate}.
export function readWav(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${file}: not a RIFF/WAVE file`);
  }
  let fmt = null;
  let data = null;
  for (let off = 12; off + 8 <= buf.length;) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = buf.subarray(off + 8, Math.min(buf.length, off + 8 + size));
    if (id === 'fmt ') fmt = body;
    if (id === 'data') data = body;
    off += 8 + size + (size % 2);
  }
  if (!fmt || !data) throw new Error(`${file}: no fmt or data chunk`);
  if (fmt.readUInt16LE(0) !== 1) throw new Error(`${file}: not PCM`);
  return { fmt, data, byteRate: fmt.readUInt32LE(8), blockAlign: fmt.readUInt16LE(12) };
}

// The bytes of a WAV file holding the first `seconds` of `file` (all of it if shorter), and the
// duration they hold.
export function cutWav(file, seconds) {
  const { fmt, data, byteRate, blockAlign } = readWav(file);
  let n = Math.min(data.length, Math.round(seconds * byteRate));
  n -= n % blockAlign;
  const out = Buffer.alloc(12 + 8 + fmt.length + 8 + n);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(out.length - 8, 4);
  out.write('WAVE', 8, 'ascii');
  out.write('fmt ', 12, 'ascii');
  out.writeUInt32LE(fmt.length, 16);
  fmt.copy(out, 20);
  const dataOff = 20 + fmt.length;
  out.write('data', dataOff, 'ascii');
  out.writeUInt32LE(n, dataOff + 4);
  data.copy(out, dataOff + 8, 0, n);
  return { bytes: out, seconds: n / byteRate };
}

// Duration of a PCM WAV file in seconds.
export function wavSeconds(file) {
  const { data, byteRate } = readWav(file);
  return data.length / byteRate;
}
