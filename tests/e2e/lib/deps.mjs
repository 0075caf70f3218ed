// The end-to-end tests' npm dependencies (tests/e2e/package-lock.json, exact versions), installed
// at test time with `npm ci` into a cache dir outside the repo; scripts load them from there
// with createRequire(path.join(installDeps(), 'package.json')).
//
// The cache dir is keyed by the hash of package.json + package-lock.json, so a changed lock gets
// a fresh install and an unchanged one is reused (repeated runs cost nothing). An install is
// made in a temporary sibling dir and renamed into place only when complete: tests that start at
// the same time never see a half-installed tree, and a killed install leaves nothing reused.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const e2eDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function cacheRoot() {
  return process.env.STENO_CACHE || path.join(os.homedir(), '.cache', 'steno');
}

// Temporary install dirs of killed runs (an hour old: no live install takes that long).
function removeStaleInstalls(root) {
  for (const name of fs.readdirSync(root)) {
    if (!/^npm-e2e-[0-9a-f]+\.tmp-/.test(name)) continue;
    const full = path.join(root, name);
    try {
      if (Date.now() - fs.statSync(full).mtimeMs > 3_600_000) fs.rmSync(full, { recursive: true, force: true });
    } catch {
      // another run removed it
    }
  }
}

// Returns the dir holding node_modules for the pinned dependencies, installing it if needed.
export function installDeps() {
  const pkg = fs.readFileSync(path.join(e2eDir, 'package.json'));
  const lock = fs.readFileSync(path.join(e2eDir, 'package-lock.json'));
  const hash = createHash('sha256').update(pkg).update(lock).digest('hex').slice(0, 16);
  const root = cacheRoot();
  const dir = path.join(root, `npm-e2e-${hash}`);
  if (fs.existsSync(path.join(dir, '.complete'))) return dir;

  fs.mkdirSync(root, { recursive: true });
  removeStaleInstalls(root);
  const tmp = fs.mkdtempSync(path.join(root, `npm-e2e-${hash}.tmp-`));
  try {
    fs.copyFileSync(path.join(e2eDir, 'package.json'), path.join(tmp, 'package.json'));
    fs.copyFileSync(path.join(e2eDir, 'package-lock.json'), path.join(tmp, 'package-lock.json'));
    // --ignore-scripts: nothing in the tree needs an install script, and none should run.
    const npm = process.env.NPM || 'npm';
    const res = spawnSync(npm, ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'],
      { cwd: tmp, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
    if (res.error) throw new Error(`npm ci could not run (${npm}): ${res.error.message}`);
    if (res.status !== 0) throw new Error(`npm ci failed with status ${res.status} in ${tmp}`);
    fs.writeFileSync(path.join(tmp, '.complete'), `${new Date().toISOString()}\n`);
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // Another test finished the same install first: use its tree.
      if (!fs.existsSync(path.join(dir, '.complete'))) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

