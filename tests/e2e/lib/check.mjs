// Named checks for end-to-end scripts: each step runs, failures are collected with their reason
// and printed, and finish() sets a non-zero exit code if any failed. Also validators for the
// subtitle documents a client receives (the same rules as tests/support/subtitle_check.h).

export class Checks {
  constructor(name) {
    this.name = name;
    this.failures = [];
    this.passed = 0;
  }

  // Runs `fn` (sync or async); a throw marks the step failed. Returns fn's value or undefined.
  async step(label, fn) {
    const started = Date.now();
    try {
      const value = await fn();
      this.passed++;
      console.log(`PASS ${label} (${Date.now() - started} ms)`);
      return value;
    } catch (err) {
      this.failures.push({ label, err });
      console.log(`FAIL ${label}: ${err && err.stack ? err.stack : err}`);
      return undefined;
    }
  }

  // Prints the summary; returns the process exit code (0 when every step passed).
  finish() {
    const total = this.passed + this.failures.length;
    if (this.failures.length === 0) {
      console.log(`${this.name}: all ${total} checks passed`);
      return 0;
    }
    console.log(`${this.name}: ${this.failures.length} of ${total} checks failed:`);
    for (const { label } of this.failures) console.log(`  - ${label}`);
    return 1;
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

function show(value) {
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return s === undefined ? String(value) : (s.length > 600 ? `${s.slice(0, 600)}...` : s);
}

export function assertType(value, type, what) {
  const actual = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  assert(actual === type, `${what}: expected ${type}, got ${actual}: ${show(value)}`);
}

// "HH:MM:SS<sep>mmm" to milliseconds, or null when malformed (hours: two or more digits).
function parseTime(s, sep) {
  const m = new RegExp(`^(\\d{2,}):([0-5]\\d):([0-5]\\d)${sep === '.' ? '\\.' : sep}(\\d{3})$`).exec(s);
  if (!m) return null;
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]);
}

// Blocks of non-blank lines; throws on more than one blank line between blocks.
function blocks(doc, what) {
  assert(doc.endsWith('\n'), `${what}: does not end with a newline`);
  const lines = doc.replace(/\n+$/, '').split('\n');
  const out = [];
  let cur = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') {
      assert(cur.length > 0, `${what}: extra blank line at line ${i + 1}`);
      out.push(cur);
      cur = [];
    } else {
      cur.push({ n: i + 1, text: line.replace(/\r$/, '') });
    }
  });
  if (cur.length > 0) out.push(cur);
  return out;
}

function timing(line, sep, what) {
  const m = /^(\S+) --> (\S+)(?:[ \t].*)?$/.exec(line.text);
  assert(m, `${what}: line ${line.n} is not a timing line: ${show(line.text)}`);
  const start = parseTime(m[1], sep);
  const end = parseTime(m[2], sep);
  assert(start !== null && end !== null, `${what}: bad timestamps at line ${line.n}: ${show(line.text)}`);
  assert(start <= end, `${what}: cue ends before it starts at line ${line.n}`);
  return { start, end };
}

// Parses an SRT document: [{index, start, end, text}] (times in ms). Throws on any violation:
// cues numbered 1..n, "HH:MM:SS,mmm --> HH:MM:SS,mmm", text present, starts never decreasing.
export function parseSrt(doc) {
  const cues = [];
  for (const block of blocks(doc, 'srt')) {
    assert(block.length >= 3, `srt: cue at line ${block[0].n} has ${block.length} lines (number, timing, text)`);
    const index = Number(block[0].text);
    assert(/^\d+$/.test(block[0].text) && index === cues.length + 1,
           `srt: expected cue number ${cues.length + 1} at line ${block[0].n}, got ${show(block[0].text)}`);
    const { start, end } = timing(block[1], ',', 'srt');
    if (cues.length > 0) assert(start >= cues.at(-1).start, `srt: cue ${index} starts before cue ${index - 1}`);
    cues.push({ index, start, end, text: block.slice(2).map((l) => l.text).join('\n') });
  }
  return cues;
}

// Parses a WebVTT document: [{id, start, end, text}]. Throws unless it starts with "WEBVTT",
// then a blank line, and every cue is [id line] + "HH:MM:SS.mmm --> HH:MM:SS.mmm" + text.
export function parseVtt(doc) {
  assert(/^WEBVTT([ \t][^\n]*)?\n\n/.test(doc) || doc === 'WEBVTT\n',
         `vtt: does not start with "WEBVTT" and a blank line: ${show(doc.slice(0, 40))}`);
  const [, ...cueBlocks] = blocks(doc, 'vtt');
  const cues = [];
  for (const block of cueBlocks) {
    const hasId = !block[0].text.includes('-->');
    const t = block[hasId ? 1 : 0];
    assert(t, `vtt: cue at line ${block[0].n} has no timing line`);
    const { start, end } = timing(t, '.', 'vtt');
    const text = block.slice(hasId ? 2 : 1);
    assert(text.length > 0, `vtt: cue at line ${t.n} has no text`);
    if (cues.length > 0) assert(start >= cues.at(-1).start, `vtt: cue at line ${t.n} starts before the previous one`);
    cues.push({ id: hasId ? block[0].text : null, start, end, text: text.map((l) => l.text).join('\n') });
  }
  return cues;
}
