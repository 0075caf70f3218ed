// The server's HTTP API as the dashboard uses it: every request carries the API key the user
// entered (kept in localStorage) as `Authorization: Bearer`, and a failed request throws an
// ApiError with the server's own message ({"error": {"type", "code", "message"}}).

const KEY_STORAGE = 'steno.apiKey';

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return '';
  }
}

let sessionKey = storedKey();

export function apiKey() {
  return sessionKey;
}

export function setApiKey(key) {
  sessionKey = key;
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled: the key lasts for this page only
  }
}

export function authHeaders() {
  return sessionKey ? { Authorization: `Bearer ${sessionKey}` } : {};
}

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code || '';
  }
}

// The error a non-2xx response stands for, with the server's message when it sent one.
export async function errorOf(res) {
  let message = `${res.status} ${res.statusText || 'error'}`;
  let code = '';
  try {
    const body = await res.json();
    if (body && body.error) {
      message = body.error.message || message;
      code = body.error.code || '';
    }
  } catch {
    // not JSON: keep the status line
  }
  if (res.status === 401 && !code) code = 'unauthorized';
  return new ApiError(res.status, message, code);
}

// fetch() with the key; resolves to the Response when it is 2xx, else throws an ApiError.
export async function request(path, init = {}) {
  let res;
  try {
    res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers || {}) } });
  } catch (err) {
    throw new ApiError(0, `the server could not be reached (${err.message})`, 'network');
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function getJson(path) {
  return (await request(path)).json();
}

export async function listModels() {
  const body = await getJson('/v1/models');
  return (body.data || []).map((m) => m.id);
}

// POST /v1/jobs with a FormData (file, model, language, priority); resolves to the job object.
export async function submitJob(form) {
  const res = await request('/v1/jobs', { method: 'POST', body: form });
  return res.json();
}

export async function cancelJob(id) {
  return (await request(`/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' })).json();
}

export async function unloadModel(name) {
  return (await request(`/v1/models/${encodeURIComponent(name)}/unload`, { method: 'POST' })).json();
}

const EXTENSION = { text: 'txt', srt: 'srt', vtt: 'vtt', json: 'json' };

// Fetches a job's result in `format` and saves it through a temporary object URL (a plain link
// could not carry the API key). The file is named after the upload: "talk.srt".
export async function downloadResult(job, format) {
  const res = await request(`/v1/jobs/${encodeURIComponent(job.id)}/result?format=${format}`);
  const blob = await res.blob();
  const base = (job.filename || job.id).replace(/\.[^.]*$/, '') || job.id;
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `${base}.${EXTENSION[format] || format}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
