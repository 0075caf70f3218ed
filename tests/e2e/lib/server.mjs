// Real servers for end-to-end tests and benchmarks: `steno serve` and upstream `whisper-server`,
// each started in its own process group on loopback and stopped with the whole group.
//
// Nothing may outlive the script: every started group is killed (SIGKILL) when the process
// exits for any reason, including an uncaught error or SIGINT/SIGTERM, and temp dirs given to
// removeOnExit() are removed. stop() first asks politely (SIGTERM to the group), then kills what
// is left after a grace period, and reports the server's descendants still running afterwards:
// runners live in process groups of their own, so this is how a test checks they went away.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { assert } from './check.mjs';

const liveGroups = new Set();
const tempDirs = new Set();

// Removes `dir` (recursively) when the process exits, however it exits.
export function removeOnExit(dir) {
  tempDirs.add(dir);
  return dir;
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;  // already gone
  }
}

process.on('exit', () => {
  for (const pid of liveGroups) killGroup(pid, 'SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    for (const pid of liveGroups) killGroup(pid, 'SIGKILL');
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Keeps the last `limit` bytes of a stream, for error reports.
function tail(stream, limit = 64 * 1024) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    if (buf.length > limit) buf = buf.slice(buf.length - limit);
  });
  return () => buf;
}

class ServerProcess {
  constructor(name, child) {
    this.name = name;
    this.child = child;
    this.pid = child.pid;
    this.exited = null;  // {code, signal} once it exits
    this.exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      });
    });
    liveGroups.add(this.pid);
    this.stdoutTail = tail(child.stdout);
    this.stderrTail = tail(child.stderr);
  }

  // The last output of the server, for a failure message.
  output() {
    return `--- ${this.name} stdout (tail) ---\n${this.stdoutTail()}\n` +
           `--- ${this.name} stderr (tail) ---\n${this.stderrTail()}`;
  }

  // SIGTERM to the group, SIGKILL after `graceMs`. Returns {code, signal, forced, leftover}:
  // `leftover` lists the server's descendants (runners, in whatever process group) that still
  // run 10 s after it exited.
  async stop(graceMs = 20_000) {
    let forced = false;
    const kids = this.exited ? [] : descendants(this.pid);
    if (!this.exited) {
      killGroup(this.pid, 'SIGTERM');
      const timer = sleep(graceMs).then(() => 'timeout');
      if ((await Promise.race([this.exitPromise, timer])) === 'timeout') {
        forced = true;
        killGroup(this.pid, 'SIGKILL');
        await this.exitPromise;
      }
    }
    // Children that stayed in the group (the leader is gone, they are not).
    killGroup(this.pid, 'SIGKILL');
    liveGroups.delete(this.pid);
    let leftover = alive(kids);
    for (let waited = 0; leftover.length > 0 && waited < 10_000; waited += 100) {
      await sleep(100);
      leftover = alive(kids);
    }
    for (const pid of leftover) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    return { ...this.exited, forced, leftover };
  }
}

// Starts `steno serve` on 127.0.0.1 with an OS-chosen port; resolves once it prints
// "steno: listening on http://127.0.0.1:PORT". Rejects (with the server's output) if it exits
// first or does not listen within `timeoutMs`.
export async function startSteno({ bin, dataDir, modelsDir, args = [], env = {}, timeoutMs = 60_000 }) {
  const argv = ['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir,
                '--models-dir', modelsDir, '--device', 'cpu', ...args];
  const child = spawn(bin, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'],
                                   env: { ...process.env, GGML_NO_BACKTRACE: '1', ...env } });
  const server = new ServerProcess('steno serve', child);
  const url = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(
      `steno serve did not print its URL within ${timeoutMs} ms\n${server.output()}`)), timeoutMs);
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      const m = /steno: listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    server.exitPromise.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`steno serve exited (code ${code}, signal ${signal}) before listening\n` +
                       `command: ${bin} ${argv.join(' ')}\n${server.output()}`));
    });
  }).catch(async (err) => {
    await server.stop(1000);
    throw err;
  });
  server.url = url;
  return server;
}

// A TCP port that was free a moment ago (for servers that cannot be told to pick one).
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Starts upstream whisper-server with `model` and `threads`, plus `args`; resolves once
// GET /health answers 200 (the model is loaded).
export async function startWhisperServer({ bin, model, threads, args = [], timeoutMs = 120_000, cwd }) {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const argv = ['--host', '127.0.0.1', '--port', String(port), '-m', model, '-t', String(threads),
                  ...args];
    const child = spawn(bin, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], cwd,
                                     env: { ...process.env, GGML_NO_BACKTRACE: '1' } });
    const server = new ServerProcess('whisper-server', child);
    server.url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !server.exited) {
      try {
        const res = await fetch(`${server.url}/health`);
        if (res.status === 200) return server;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    await server.stop(1000);
    // The port was taken between freePort() and bind: try another one.
    if (attempt < 3 && /couldn't bind/.test(server.stderrTail())) continue;
    throw new Error(`whisper-server did not become healthy\ncommand: ${bin} ${argv.join(' ')}\n` +
                    server.output());
  }
}

// The pids of `pid`'s descendants now (children, their children, ...).
export function descendants(pid) {
  const parentOf = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(path.join('/proc', entry, 'stat'), 'utf8');
      // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(entry), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  const found = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next = [];
    for (const [child, parent] of parentOf) if (frontier.includes(parent)) next.push(child);
    found.push(...next);
    frontier = next;
  }
  return found;
}

// Those of `pids` that still run (a zombie has exited: only its parent's wait is missing).
export function alive(pids) {
  return pids.filter((pid) => {
    try {
      const stat = fs.readFileSync(path.join('/proc', String(pid), 'stat'), 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  });
}

// CPU seconds (user + system) used so far by `pids` (those still running; clock ticks of 10 ms).
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(path.join('/proc', String(pid), 'stat'), 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);  // utime, stime (fields 14 and 15)
    } catch {
      // exited
    }
  }
  return ticks / 100;
}

// CPU seconds the whole machine has spent busy since boot (every core; /proc/stat's first line,
// all but idle and iowait).
export function machineBusySeconds() {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return (user + nice + system + irq + softirq + (steal || 0)) / 100;
}

// The step an e2e test ends with: SIGTERM stops `server` within 20 s and leaves no process
// behind; its output is printed when any check failed.
// A browser's processes: this script's descendants that are not `server`'s (its runners
// included). Taken once the browser is up, to check that close() leaves none of them behind.
export function browserProcesses(server) {
  const serverTree = new Set([server.pid, ...descendants(server.pid)]);
  return descendants(process.pid).filter((pid) => !serverTree.has(pid));
}

// The checked step that closes `browser` and waits up to 30 s for every one of `pids` to exit.
export async function closeBrowserChecked(checks, browser, pids) {
  await checks.step('the browser closes, leaving no process', async () => {
    await browser.close();
    let left = alive(pids);
    for (let i = 0; left.length > 0 && i < 300; i++) {  // up to 30 s
      await sleep(100);
      left = alive(pids);
    }
    assert(left.length === 0, `browser processes left after close(): ${left.join(', ')}`);
  });
}

export async function stopStenoChecked(checks, server) {
  await checks.step('steno serve stops on SIGTERM, leaving no process', async () => {
    const s = await server.stop();
    assert(!s.forced, 'steno serve did not exit within 20 s of SIGTERM (killed)');
    assert(s.leftover.length === 0, `processes left after the server exited: ${s.leftover.join(', ')}`);
  });
  if (checks.failures.length > 0) console.log(server.output());
}
