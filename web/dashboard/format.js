// Text for numbers: byte sizes, durations, media timestamps and countdowns. Pure functions.

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

// 12.3 GiB, 512 MiB, 0 B; "—" for null/undefined.
export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  if (Math.abs(n) >= GiB) return `${(n / GiB).toFixed(1)} GiB`;
  if (Math.abs(n) >= MiB) return `${Math.round(n / MiB)} MiB`;
  if (n === 0) return '0 B';
  return `${(n / 1024).toFixed(1)} KiB`;
}

// Seconds as "42 s", "3 min 05 s", "1 h 02 min"; "—" for null.
export function duration(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '—';
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

// A position in the audio: "1:02.5" (or "1:02:03.5" past an hour).
export function mediaTime(s) {
  const t = Math.max(0, Number(s) || 0);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = (t % 60).toFixed(1).padStart(4, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

// Milliseconds left as "4:07" (minutes:seconds) or "1:02:07"; never negative.
export function countdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

// Real-time factor: "0.12×"; "—" for null.
export function rtf(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return `${x < 0.1 ? x.toFixed(3) : x.toFixed(2)}×`;
}

export function percent(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return `${Math.round(x)}%`;
}

// Clock time of a unix-ms instant, "14:03:09".
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export const FINAL_STATES = new Set(['completed', 'failed', 'cancelled']);
