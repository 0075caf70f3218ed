// Small HTTP helpers over Node's built-in fetch (undici, keep-alive): timed requests, multipart
// bodies, percentiles and the OpenAI error shape.
import { performance } from 'node:perf_hooks';

// A request with its wall time: {status, headers, text, json (parsed or undefined), ms, error}.
// A network failure gives status 0 and `error`; a body that is not JSON leaves json undefined.
export async function timed(url, init = {}) {
  const t0 = performance.now();
  try {
    const res = await fetch(url, init);
    const text = await res.text();
    const ms = performance.now() - t0;
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json, ms };
  } catch (err) {
    return { status: 0, error: err.cause ? `${err.message}: ${err.cause.code || err.cause.message}` : err.message,
             ms: performance.now() - t0 };
  }
}

// A multipart/form-data request body with a file part and text fields (array values repeat the
// field as NAME[]): {body: Buffer, headers}. Built by hand rather than with FormData so every
// request is the same cheap, well-formed bytes on every Node version (Node 18's fetch ends the
// body without a CRLF after the closing boundary, which RFC 2046 allows but some parsers refuse:
// fetch_client.mjs tests that case on purpose).
export function multipart(fileBytes, fileName, fields = {}, mime = 'audio/wav') {
  const boundary = `----steno-e2e-${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
  const parts = [];
  const field = (name, value) => parts.push(Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  for (const [k, v] of Object.entries(fields)) {
    if (Array.isArray(v)) for (const item of v) field(`${k}[]`, String(item));
    else if (v !== undefined) field(k, String(v));
  }
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; ` +
                         `filename="${fileName}"\r\nContent-Type: ${mime}\r\n\r\n`));
  parts.push(Buffer.from(fileBytes));
  parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return { body: Buffer.concat(parts),
           headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

// Percentile (nearest rank) of an array of numbers; NaN for an empty one.
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function summarize(values) {
  const round = (x) => Math.round(x * 100) / 100;
  return { count: values.length, p50: round(percentile(values, 50)), p90: round(percentile(values, 90)),
           p99: round(percentile(values, 99)), max: round(values.length ? values.reduce((a, b) => Math.max(a, b), -Infinity) : NaN) };
}

// The OpenAI-shaped error body {"error":{"type","code","message"}}, or a reason it is not one.
export function errorShapeProblem(json) {
  if (!json || typeof json !== 'object') return 'body is not JSON';
  const e = json.error;
  if (!e || typeof e !== 'object') return 'no "error" object';
  for (const k of ['type', 'message']) if (typeof e[k] !== 'string') return `error.${k} is not a string`;
  if (!('code' in e)) return 'no error.code';
  return null;
}
