"""Shared pieces of the GPU acceptance run (scripts/gpu-acceptance.sh): the run's context, a
step's record, HTTP without third-party modules, `steno serve` and whisper-server as child
processes, and the device's own memory readings (nvidia-smi, or in a dry run the simulated card's).

Only the Python standard library is used: the GPU machine has python3 but no jq, and nothing can
be installed there.
"""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

MiB = 1 << 20
GiB = 1 << 30


def now():
    return time.monotonic()


def mib(n):
    return None if n is None else round(n / MiB, 1)


# ---- the run's context ----------------------------------------------------------------------

class Context:
    """What every step needs: the mode, the binaries, the work and output dirs, the models and
    inputs prepared once (main.py prepare writes it as WORK/context.json)."""

    def __init__(self, d):
        self.__dict__.update(d)

    @property
    def dry_run(self):
        return self.mode == "dry-run"

    @staticmethod
    def load(work_dir):
        with open(os.path.join(work_dir, "context.json")) as f:
            return Context(json.load(f))

    def save(self):
        with open(os.path.join(self.work_dir, "context.json"), "w") as f:
            json.dump(self.__dict__, f, indent=2)

    def model(self, role):
        """The prepared model of a role ("tiny", "base", "large"): name, preset, path, sizes."""
        return self.models[role]

    def step_dir(self, n):
        d = os.path.join(self.work_dir, "step%d" % n)
        os.makedirs(d, exist_ok=True)
        return d


# ---- a step's record ------------------------------------------------------------------------

class Step:
    """The record of one step: its checks (each passed or not, with the figures that decided),
    figures and notes. Written to OUT/steps/N.json after every change, so a step killed by its
    time budget still leaves what it measured."""

    def __init__(self, ctx, number, name, title, budget_s):
        self.path = os.path.join(ctx.out_dir, "steps", "%d.json" % number)
        self.t0 = now()
        self.rec = {"step": number, "name": name, "title": title, "status": "running",
                    "budget_s": budget_s, "wall_s": None, "checks": [], "figures": {},
                    "notes": [], "error": None, "summary": ""}
        self.write()

    def write(self):
        self.rec["wall_s"] = round(now() - self.t0, 2)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.rec, f, indent=2)
        os.replace(tmp, self.path)

    def figure(self, key, value):
        self.rec["figures"][key] = value
        self.write()
        return value

    def note(self, text):
        self.rec["notes"].append(text)
        self.write()

    def summary(self, text):
        """The step's one line in summary.txt."""
        self.rec["summary"] = text
        self.write()

    def check(self, name, ok, detail=""):
        self.rec["checks"].append({"name": name, "ok": bool(ok), "detail": detail})
        self.write()
        return bool(ok)

    def finish(self, error=None):
        if error is not None:
            self.rec["error"] = error
        checks = self.rec["checks"]
        ok = error is None and checks and all(c["ok"] for c in checks)
        self.rec["status"] = "passed" if ok else "failed"
        self.write()


# ---- HTTP -----------------------------------------------------------------------------------

class HttpResult:
    def __init__(self, status, body, ms):
        self.status, self.body, self.ms = status, body, ms

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8", "replace"))
        except ValueError:
            return None


def http(method, url, body=None, headers=None, timeout=60):
    """One request; never raises for an HTTP status. Connection errors give status 0."""
    data = body
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if method == "POST" and data is None:
        data = b"{}"  # a POST states its length: an empty one still needs Content-Length: 2
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    t0 = now()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return HttpResult(r.status, r.read(), (now() - t0) * 1000)
    except urllib.error.HTTPError as e:
        return HttpResult(e.code, e.read(), (now() - t0) * 1000)
    except Exception as e:  # refused, reset, timed out
        return HttpResult(0, str(e).encode(), (now() - t0) * 1000)


def get_json(url, timeout=30):
    r = http("GET", url, timeout=timeout)
    return r.json() if r.status == 200 else None


def multipart(fields, file_field, file_name, file_bytes):
    """(body, headers) of a multipart/form-data request with text fields and one file."""
    boundary = "acceptance" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                      % (boundary, k, v)).encode())
    parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                  'Content-Type: application/octet-stream\r\n\r\n'
                  % (boundary, file_field, file_name)).encode())
    parts.append(file_bytes)
    parts.append(("\r\n--%s--\r\n" % boundary).encode())
    return b"".join(parts), {"Content-Type": "multipart/form-data; boundary=" + boundary}


def wait_until(predicate, timeout_s, interval_s=0.05):
    """Polls predicate() until it returns something truthy; returns (value, seconds) or
    (None, seconds) once timeout_s passed."""
    t0 = now()
    while True:
        v = predicate()
        if v:
            return v, now() - t0
        if now() - t0 >= timeout_s:
            return None, now() - t0
        time.sleep(interval_s)


# ---- processes ------------------------------------------------------------------------------

_children = []  # every server started here, stopped at exit whatever happens


def stop_all_children():
    for p in list(_children):
        if p.poll() is None:
            p.kill()
            p.wait()


def _proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split(" ")  # fields after "pid (comm)"


def descendants(pid):
    """The pids of pid's descendants now (children, their children, ...)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent[int(entry)] = int(_proc_stat(int(entry))[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = [], {pid}
    while frontier:
        nxt = {c for c, p in parent.items() if p in frontier}
        found.extend(sorted(nxt))
        frontier = nxt
    return found


def alive(pid):
    try:
        return _proc_stat(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


class Server:
    """A server child process with its output in a log file under OUT/logs (the last 64 KiB
    kept in memory for the report)."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.lines = []
        self.log = open(log_path, "w")
        self.log.write("$ %s\n" % " ".join(argv))
        self.log.flush()
        e = dict(os.environ, GGML_NO_BACKTRACE="1")
        e.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=e, cwd=cwd)
        _children.append(self.proc)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if len(self.lines) > 4000:
                del self.lines[:1000]
            self.log.write(line + "\n")
            self.log.flush()

    def output_contains(self, text):
        return any(text in l for l in self.lines)

    def exited(self):
        return self.proc.poll() is not None

    def stop(self, sig=signal.SIGTERM, grace_s=30):
        """Signals the server and waits; SIGKILL after grace_s. Returns (exit code, seconds,
        forced)."""
        if self.exited():
            return self.proc.returncode, 0.0, False
        t0 = now()
        self.proc.send_signal(sig)
        forced = False
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            forced = True
            self.proc.kill()
            self.proc.wait()
        took = now() - t0
        self._reader.join(timeout=5)
        return self.proc.returncode, took, forced


class Steno(Server):
    """`steno serve` on 127.0.0.1 with an OS-chosen port, its own data dir, the run's models dir
    and device: cuda:0 on a GPU, the simulated card in a dry run."""

    def __init__(self, ctx, step_n, extra=(), tag=""):
        d = ctx.step_dir(step_n)
        self.data_dir = os.path.join(d, "data" + tag)
        os.makedirs(self.data_dir, exist_ok=True)
        self.ctx = ctx
        argv = [ctx.steno, "serve", "--host", "127.0.0.1", "--port", "0",
                "--data-dir", self.data_dir, "--models-dir", ctx.models_dir,
                "--device", "cuda:0", "--keep-alive", "-1", "--allow-path", ctx.work_dir,
                "--min-free-disk", "0"]
        if ctx.dry_run:
            argv += ["--simulate-gpus", ctx.simulate_spec, "--threads", "1", "--no-warmup"]
        argv += list(extra)
        log = os.path.join(ctx.out_dir, "logs", "step%d-steno%s.log" % (step_n, tag))
        super().__init__("steno serve", argv, log)
        got, _ = wait_until(lambda: self._url() or self.exited(), 60)
        self.url = self._url()
        if not self.url:
            self.stop(grace_s=5)
            raise RuntimeError("steno serve did not start: %s" % " | ".join(self.lines[-8:]))

    def _url(self):
        for l in self.lines:
            if "steno: listening on " in l:
                return l.split("steno: listening on ", 1)[1].strip()
        return None

    def get(self, path, timeout=30):
        return get_json(self.url + path, timeout=timeout)

    def post(self, path, body=None, timeout=60):
        return http("POST", self.url + path, body=body, timeout=timeout)

    def runners(self, model=None):
        j = self.get("/v1/runners") or {"data": []}
        return [r for r in j["data"] if model is None or r["model"] == model]

    def runner_pids(self):
        """The pids of this server's runner processes (`steno runner` children)."""
        return [p for p in descendants(self.pid)
                if b"runner" in cmdline(p)[1:2] and alive(p)]

    def load(self, model, timeout_s=300):
        """POST load, then waits until the runner is ready. Returns (estimate view, ready view,
        seconds from the request to ready); a view is the runner's /v1/runners entry."""
        t0 = now()
        r = self.post("/v1/models/%s/load" % model, {"device": "cuda:0", "keep_alive": -1})
        if r.status != 200:
            raise RuntimeError("load %s: HTTP %d %s" % (model, r.status, r.body[:300]))
        runners = (r.json() or {}).get("runners") or []
        estimate = runners[0] if runners else None
        ready, _ = wait_until(lambda: [x for x in self.runners(model) if x["state"] == "ready"],
                              timeout_s, 0.02)
        if not ready:
            raise RuntimeError("%s did not become ready within %d s" % (model, timeout_s))
        return estimate, ready[0], now() - t0

    def unload(self, model, timeout_s=120):
        """POST unload, then waits until no runner of the model is listed. Returns seconds."""
        t0 = now()
        r = self.post("/v1/models/%s/unload" % model)
        if r.status != 200:
            raise RuntimeError("unload %s: HTTP %d %s" % (model, r.status, r.body[:300]))
        gone, _ = wait_until(lambda: not self.runners(model), timeout_s, 0.02)
        if not gone:
            raise RuntimeError("%s still listed %d s after unload" % (model, timeout_s))
        return now() - t0

    def transcribe(self, model, wav_path, timeout=600, fmt="verbose_json"):
        """A synchronous OpenAI transcription; returns (status, json or None, ms)."""
        with open(wav_path, "rb") as f:
            audio = f.read()
        body, hdrs = multipart({"model": model, "response_format": fmt, "temperature": "0",
                                "language": "en"}, "file", os.path.basename(wav_path), audio)
        r = http("POST", self.url + "/v1/audio/transcriptions", body, hdrs, timeout=timeout)
        return r.status, r.json(), r.ms

    def submit(self, model, wav_path, extra=None):
        """An async job naming a file under the work dir; returns the job's id."""
        body = {"path": wav_path, "model": model, "language": "en", "temperature": 0}
        body.update(extra or {})
        r = self.post("/v1/jobs", body)
        if r.status not in (200, 202):
            raise RuntimeError("POST /v1/jobs: HTTP %d %s" % (r.status, r.body[:300]))
        return r.json()["id"]

    def job(self, job_id):
        return self.get("/v1/jobs/" + job_id)

    def steno_gpus(self):
        return steno_gpus(self.ctx, self.data_dir)


# ---- the device's own readings --------------------------------------------------------------

def steno_gpus(ctx, data_dir):
    """`steno gpus --json` for the devices a server on data_dir uses."""
    argv = [ctx.steno, "gpus", "--json", "--data-dir", data_dir, "--device", "cuda:0"]
    if ctx.dry_run:
        argv += ["--simulate-gpus", ctx.simulate_spec]
    out = subprocess.run(argv, capture_output=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("steno gpus: %s" % out.stderr.decode()[:300])
    return json.loads(out.stdout)


class Smi:
    """The device's memory as the driver reports it: nvidia-smi on a GPU. In a dry run there is
    no driver: the simulated card's own state (read through `steno gpus --json`) stands in, so
    the steps' logic runs unchanged. Sizes in bytes (nvidia-smi's MiB × 2^20)."""

    def __init__(self, ctx, data_dir):
        self.ctx, self.data_dir = ctx, data_dir
        self.uuid = None  # the card steno calls cuda:0 (a machine may have several)
        self.reserved_known = None  # whether this nvidia-smi has memory.reserved

    def _smi(self, query, what):
        out = subprocess.run(["nvidia-smi", "--query-%s=%s" % (what, query),
                              "--format=csv,noheader,nounits"], capture_output=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("nvidia-smi: %s" % (out.stderr or out.stdout).decode()[:300])
        rows = []
        for line in out.stdout.decode().splitlines():
            if line.strip():
                rows.append([c.strip() for c in line.split(",")])
        return rows

    def _card_uuid(self):
        if self.uuid is None:
            self.uuid = steno_gpus(self.ctx, self.data_dir)["devices"][0]["uuid"]
        return self.uuid

    def gpu(self):
        """{uuid, name, total_bytes, used_bytes, free_bytes} of cuda:0."""
        if self.ctx.dry_run:
            d = steno_gpus(self.ctx, self.data_dir)["devices"][0]
            return {k: d[k] for k in ("uuid", "name", "total_bytes", "used_bytes", "free_bytes")}
        want = self._card_uuid()
        fields = "uuid,name,memory.total,memory.used,memory.free"
        if self.reserved_known is not False:
            try:  # memory.reserved: newer drivers leave it out of memory.used
                rows = self._smi(fields + ",memory.reserved", "gpu")
                self.reserved_known = True
            except RuntimeError:
                self.reserved_known = False
        if not self.reserved_known:
            rows = [r + [None] for r in self._smi(fields, "gpu")]
        for u, name, total, used, free, reserved in rows:
            if u == want:
                return {"uuid": u, "name": name, "total_bytes": int(total) * MiB,
                        "used_bytes": int(used) * MiB, "free_bytes": int(free) * MiB,
                        "reserved_bytes": int(reserved) * MiB if reserved and reserved.isdigit()
                        else None}
        raise RuntimeError("nvidia-smi does not list %s" % want)

    def used(self):
        return self.gpu()["used_bytes"]

    def apps(self):
        """{pid: bytes} of the compute processes on cuda:0 (bytes None when not reported)."""
        if self.ctx.dry_run:
            d = steno_gpus(self.ctx, self.data_dir)["devices"][0]
            return {p["pid"]: p["used_bytes"] for p in (d["processes"] or [])}
        want = self._card_uuid()
        apps = {}
        for pid, u, used in self._smi("pid,gpu_uuid,used_memory", "compute-apps"):
            if u == want:
                apps[int(pid)] = int(used) * MiB if used.isdigit() else None
        return apps

    def wait_used_within(self, baseline, tolerance, timeout_s):
        """Seconds until used memory is within tolerance of baseline (None: not within
        timeout_s), and the last reading."""
        last = [None]

        def back():
            last[0] = self.used()
            return abs(last[0] - baseline) <= tolerance

        ok, took = wait_until(back, timeout_s, 0.05)
        return (took if ok else None), last[0]
