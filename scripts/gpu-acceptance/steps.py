"""The steps of the GPU acceptance run (the ninth, chunk_streams.py, only when asked for). Each takes the run's Context and its Step record,
records figures and checks as it measures, and raises only for what stops it (the record then
says why). Every step starts its own `steno serve` on a fresh data dir, so no measured footprint
from an earlier step replaces an estimate, and stops it before returning."""
import os
import signal
import subprocess
import sys
import threading
import time

from lib import MiB, Smi, Steno, mib, now, wait_until

RELEASE_TOLERANCE = 64 * MiB  # "back to the pre-load baseline within 64 MiB"


def within_1pct(a, b):
    """a within 1 % of b (at least 2 MiB: nvidia-smi reports whole MiB)."""
    return abs(a - b) <= max(0.01 * abs(b), 2 * MiB)


def context_charge(estimate, model):
    """What the ledger charges a GPU runner beyond its weights (calibration::kCudaContextBytes as
    this steno binary applies it): the loading runner's weights minus the file's tensor bytes."""
    return estimate["weights_bytes"] - model["tensor_bytes"]


def footprint(estimate, ready, model):
    """Estimate (before the runner measured) against measurement, weights and one stream."""
    charge = context_charge(estimate, model)
    f = {"estimated_weights_bytes": estimate["weights_bytes"] - charge,
         "estimated_stream_bytes": estimate["stream_bytes"],
         "measured_weights_bytes": ready["weights_bytes"] - charge,
         "measured_stream_bytes": ready["stream_bytes"],
         "context_charge_bytes": charge,
         "ledger_charge_bytes": ready["weights_bytes"] + ready["streams"] * ready["stream_bytes"]}
    f["weights_ratio"] = round(f["measured_weights_bytes"] / max(1, f["estimated_weights_bytes"]), 4)
    f["stream_ratio"] = round(f["measured_stream_bytes"] / max(1, f["estimated_stream_bytes"]), 4)
    return f


def runner_pid(steno):
    pids = steno.runner_pids()
    return pids[0] if len(pids) == 1 else None


def on_device(st, smi, pid, before):
    """The runner's memory as nvidia-smi lists it. Where nvidia-smi shows other pids (a container
    with its own pid namespace), the one process that appeared since `before` (a set of pids)
    stands in, with a note: steno's own per-process attribution would fail there too."""
    apps = smi.apps()
    if pid in apps:
        return apps[pid]
    new = [p for p in apps if p not in before]
    if len(new) == 1:
        st.note("nvidia-smi does not list runner pid %s; the one new process %d stands in "
                "(another pid namespace?)" % (pid, new[0]))
        return apps[new[0]]
    return None


# ---- 1 --------------------------------------------------------------------------------------

def compare_readings(st, label, smi, steno):
    g = smi.gpu()
    d = steno.steno_gpus()["devices"][0]
    st.figure(label, {"nvidia_smi_total_bytes": g["total_bytes"], "steno_total_bytes": d["total_bytes"],
                      "nvidia_smi_used_bytes": g["used_bytes"], "steno_used_bytes": d["used_bytes"],
                      "used_diff_mib": mib(d["used_bytes"] - g["used_bytes"]),
                      "nvidia_smi_reserved_bytes": g.get("reserved_bytes")})
    st.check("%s: total within 1 %%" % label, within_1pct(d["total_bytes"], g["total_bytes"]),
             "steno %s MiB, nvidia-smi %s MiB" % (mib(d["total_bytes"]), mib(g["total_bytes"])))
    st.check("%s: used within 1 %%" % label, within_1pct(d["used_bytes"], g["used_bytes"]),
             "steno %s MiB, nvidia-smi %s MiB" % (mib(d["used_bytes"]), mib(g["used_bytes"])))
    return d


def step_gpus(ctx, st):
    s = Steno(ctx, 1)
    smi = Smi(ctx, s.data_dir)
    st.figure("device", smi.gpu()["name"])
    compare_readings(st, "idle", smi, s)
    m = ctx.model("tiny")
    s.load(m["name"])
    d = compare_readings(st, "tiny model loaded", smi, s)
    pid = runner_pid(s)
    apps = smi.apps()
    ours = {p["pid"]: p for p in d["processes"] or []}
    st.figure("runner_pid", pid)
    st.figure("serve_pid", s.pid)
    st.figure("nvidia_smi_processes", {str(k): v for k, v in apps.items()})
    st.figure("steno_processes", list(ours.values()))
    st.check("the runner is its own process in nvidia-smi's list", pid in apps,
             "runner pid %s, listed %s" % (pid, sorted(apps)))
    st.check("steno serve itself holds no GPU memory (no CUDA context)", s.pid not in apps)
    st.check("steno gpus lists the runner as steno's", pid in ours and ours[pid]["ours"])
    if pid in apps and pid in ours and apps[pid] is not None:
        st.check("the runner's memory: steno and nvidia-smi within 1 %",
                 within_1pct(ours[pid]["used_bytes"], apps[pid]),
                 "steno %s MiB, nvidia-smi %s MiB" % (mib(ours[pid]["used_bytes"]), mib(apps[pid])))
    s.unload(m["name"])
    s.stop()
    st.summary("used: steno %s MiB vs nvidia-smi %s MiB; runner pid %s listed" % (
        mib(st.rec["figures"]["tiny model loaded"]["steno_used_bytes"]),
        mib(st.rec["figures"]["tiny model loaded"]["nvidia_smi_used_bytes"]), pid))


# ---- 2 --------------------------------------------------------------------------------------

def step_load_unload(ctx, st):
    s = Steno(ctx, 2)
    smi = Smi(ctx, s.data_dir)
    parts = []
    for role in ("tiny", "base", "large"):
        m = ctx.model(role)
        baseline = smi.used()
        before = set(smi.apps())
        estimate, ready, load_s = s.load(m["name"])
        pid = runner_pid(s)
        device_bytes = on_device(st, smi, pid, before)
        used_loaded = smi.used()
        f = footprint(estimate, ready, m)
        f.update({"preset": m["preset"], "load_s": round(load_s, 3), "baseline_used_bytes": baseline,
                  "loaded_used_bytes": used_loaded, "runner_on_device_bytes": device_bytes})
        if device_bytes is not None:
            f["context_bytes"] = device_bytes - f["measured_weights_bytes"] - f["measured_stream_bytes"]
        unload_s = s.unload(m["name"])
        back_s, last = smi.wait_used_within(baseline, RELEASE_TOLERANCE, 60)
        f.update({"unload_s": round(unload_s, 3),
                  "release_s": None if back_s is None else round(unload_s + back_s, 3),
                  "after_used_bytes": last, "after_diff_mib": mib(last - baseline)})
        st.figure(role, f)
        st.check("%s: used memory back to the baseline within 64 MiB" % role, back_s is not None,
                 "baseline %s MiB, after %s MiB" % (mib(baseline), mib(last)))
        if device_bytes is not None:
            st.check("%s: the ledger's charge covers the runner's memory on the device" % role,
                     f["ledger_charge_bytes"] >= device_bytes,
                     "charged %s MiB, nvidia-smi %s MiB" % (mib(f["ledger_charge_bytes"]),
                                                            mib(device_bytes)))
        ms = s.get("/api/memory_status") or {"devices": [{}]}
        st.check("%s: the ledger holds nothing after the unload" % role,
                 ms["devices"][0].get("allocated") == 0, "allocated %s" % ms["devices"][0].get("allocated"))
        parts.append("%s %s: load %.1f s, back in %s s, stream %.2fx est" % (
            role, m["preset"], load_s, f["release_s"], f["stream_ratio"]))
    s.stop()
    st.summary("; ".join(parts))


# ---- 3 --------------------------------------------------------------------------------------

def segments(resp):
    """What must match between runs: each segment's times and text."""
    return [(round(x.get("start", 0), 2), round(x.get("end", 0), 2), x.get("text", ""))
            for x in (resp or {}).get("segments") or []]


def concurrently(fn, args_list):
    results = [None] * len(args_list)
    barrier = threading.Barrier(len(args_list))

    def run(i):
        barrier.wait()
        results[i] = fn(*args_list[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(args_list))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def step_concurrency(ctx, st):
    # Streams themselves are measured here, not the learned compute limit (which would start
    # the card at one job): memory alone decides, as the step asks of the runner.
    s = Steno(ctx, 3, ["--max-streams", "8", "--beam-size", "1", "--temperature-inc", "0",
                       "--max-concurrency-per-device", "0"])
    smi = Smi(ctx, s.data_dir)
    m = ctx.model(ctx.job_role)
    st.figure("model", m["preset"])
    before = set(smi.apps())
    estimate, ready, _ = s.load(m["name"])
    runner = ready["id"]
    pid = runner_pid(s)
    one_stream = on_device(st, smi, pid, before)
    clips = ctx.inputs["clips"]
    alone = []
    for c in clips:
        code, body, _ = s.transcribe(m["name"], c)
        if code != 200:
            raise RuntimeError("one-by-one transcription: HTTP %d %s" % (code, body))
        alone.append(segments(body))
    st.figure("one_by_one_segments", [len(x) for x in alone])
    rounds = []
    for r in (1, 2):
        t0 = now()
        out = concurrently(lambda c: s.transcribe(m["name"], c), [(c,) for c in clips])
        wall = now() - t0
        ok = [code == 200 for code, _, _ in out]
        same = [segments(body) == alone[i] for i, (_, body, _) in enumerate(out)]
        views = s.runners(m["name"])
        rounds.append({"wall_s": round(wall, 2), "ok": sum(ok), "same_as_alone": sum(same),
                       "runners": [{k: v[k] for k in ("id", "streams", "state")} for v in views]})
        st.figure("concurrent_round_%d" % r, rounds[-1])
        st.check("round %d: 8 concurrent jobs all answered 200" % r, all(ok),
                 "; ".join(str(b)[:160] for code, b, _ in out if code != 200))
        st.check("round %d: every job's segments as one by one" % r, all(same),
                 "%d of 8 the same" % sum(same))
    views = s.runners(m["name"])
    st.check("one runner, the same one throughout (no crash, no restart)",
             len(views) == 1 and views[0]["id"] == runner and runner_pid(s) == pid,
             "runners %s, pid %s -> %s" % ([v["id"] for v in views], pid, runner_pid(s)))
    streams = views[0]["streams"] if views else 0
    st.figure("streams", streams)
    st.check("the runner ran 8 streams", streams == 8, "streams %d" % streams)
    crashed = [l for l in s.lines if "GGML_ASSERT" in l or "CUDA error" in l or "crash" in l.lower()]
    st.check("no assert, CUDA error or crash in the server's log (whisper.cpp#1814)", not crashed,
             " | ".join(crashed[:3]))
    eight = on_device(st, smi, pid, before)
    f = footprint(estimate, ready, m)
    if one_stream is not None and eight is not None and streams > 1:
        f["on_device_1_stream_bytes"] = one_stream
        f["on_device_bytes"] = eight
        f["device_stream_bytes"] = (eight - one_stream) // (streams - 1)
        f["device_stream_ratio"] = round(f["device_stream_bytes"] / max(1, f["estimated_stream_bytes"]), 4)
        f["context_bytes"] = one_stream - f["measured_weights_bytes"] - f["measured_stream_bytes"]
        charge = views[0]["weights_bytes"] + streams * views[0]["stream_bytes"]
        f["ledger_charge_bytes"] = charge
        st.check("the ledger's charge covers the runner's memory with 8 streams", charge >= eight,
                 "charged %s MiB, nvidia-smi %s MiB" % (mib(charge), mib(eight)))
    st.figure("stream_on_device", f)
    s.stop()
    st.summary("%s, 8 streams: rounds %s s / %s s, same segments %d+%d of 16" % (
        m["preset"], rounds[0]["wall_s"], rounds[1]["wall_s"], rounds[0]["same_as_alone"],
        rounds[1]["same_as_alone"]))


# ---- 4 --------------------------------------------------------------------------------------

def step_throughput(ctx, st):
    import throughput
    throughput.run(ctx, st)


def step_chunk_streams(ctx, st):
    import chunk_streams
    chunk_streams.run(ctx, st)


# ---- 5 --------------------------------------------------------------------------------------

class Tenant:
    """Another process holding `fraction` of the card's free memory: PyTorch on a GPU, the
    simulation's external tenant in a dry run."""

    def __init__(self, ctx, smi, data_dir, fraction):
        self.ctx, self.data_dir, self.proc = ctx, data_dir, None
        if ctx.dry_run:
            free = smi.gpu()["free_bytes"]
            self.held = int(free * fraction)
            self._sim(self.held)
            self.info = {"held_bytes": self.held, "free_before_bytes": free, "kind": "simulated"}
            return
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = subprocess.Popen([sys.executable, os.path.join(here, "tenant.py"), str(fraction)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("{"):
            err = self.proc.stderr.read().decode()[-600:] if self.proc.poll() is not None else ""
            raise RuntimeError("the PyTorch tenant did not start: %s %s" % (line, err))
        import json
        self.info = dict(json.loads(line), kind="pytorch")
        self.held = self.info["held_bytes"]

    def _sim(self, nbytes):
        subprocess.run([self.ctx.steno, "gpus", "simulate-external", "cuda:0", str(nbytes),
                        "--data-dir", self.data_dir, "--simulate-gpus", self.ctx.simulate_spec],
                       check=True, capture_output=True, timeout=30)

    def exit(self):
        if self.ctx.dry_run:
            self._sim(0)
        elif self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def step_tenant(ctx, st):
    s = Steno(ctx, 5, ["--beam-size", "1", "--temperature-inc", "0"])
    smi = Smi(ctx, s.data_dir)
    m = ctx.model(ctx.job_role)
    tenant = Tenant(ctx, smi, s.data_dir, 0.9)
    st.figure("tenant", tenant.info)
    try:
        # The server sees the tenant once it sampled the device again (every second).
        seen, _ = wait_until(lambda: (s.get("/api/memory_status") or {"devices": [{}]})
                             ["devices"][0].get("external", 0) >= 0.9 * tenant.held, 15, 0.1)
        ledger = (s.get("/api/memory_status") or {"devices": [{}]})["devices"][0]
        st.figure("ledger_with_tenant", ledger)
        st.check("steno sees the tenant as external memory", bool(seen),
                 "external %s MiB, tenant %s MiB" % (mib(ledger.get("external")), mib(tenant.held)))
        need = m["tensor_bytes"]
        jobs = [s.submit(m["name"], c) for c in ctx.inputs["clips"][:4]]
        time.sleep(3 if ctx.dry_run else 5)
        states = [(s.job(j) or {}).get("state") for j in jobs]
        started = s.runners()
        st.figure("while_held", {"job_states": states, "runners": started,
                                 "available_bytes": ledger.get("available"),
                                 "model_tensor_bytes": need})
        too_big = [r for r in started if r["vram_bytes"] > ledger.get("available", 0)]
        st.check("nothing started that does not fit", not too_big,
                 "runners %s, available %s MiB" % ([(r["model"], mib(r["vram_bytes"])) for r in started],
                                                  mib(ledger.get("available"))))
        st.check("the jobs wait (none failed)", all(x in ("pending", "loading", "processing", "completed")
                                                    for x in states), "states %s" % states)
    finally:
        t_exit = now()
        tenant.exit()
    done, took = wait_until(lambda: all((s.job(j) or {}).get("state") in ("completed", "failed", "cancelled")
                                        for j in jobs) and [s.job(j) for j in jobs], 120, 0.1)
    final = [(x or {}).get("state") for x in (done or [s.job(j) for j in jobs])]
    st.figure("after_tenant_exit", {"job_states": final, "seconds_to_all_done": round(now() - t_exit, 2)})
    st.check("the waiting jobs ran once the tenant exited", all(x == "completed" for x in final),
             "states %s" % final)
    errors = [(x or {}).get("error") for x in (done or [])]
    oom = [l for l in s.lines if "out of memory" in l.lower() or "cudaMalloc failed" in l]
    oom += [e for e in errors if e and "oom" in str(e).lower()]
    st.check("no CUDA out-of-memory", not oom, " | ".join(str(x)[:200] for x in oom[:3]))
    s.stop()
    st.summary("tenant %s MiB; jobs %s while held, %s %.1f s after it left" % (
        mib(tenant.held), ",".join(sorted(set(str(x) for x in states))),
        ",".join(sorted(set(str(x) for x in final))), now() - t_exit))


# ---- 6 --------------------------------------------------------------------------------------

def step_sigterm(ctx, st):
    m = ctx.model(ctx.job_role)
    s = Steno(ctx, 6, ["--shutdown-grace", "1", "--beam-size", "1"])
    smi = Smi(ctx, s.data_dir)
    baseline = smi.used()
    job = s.submit(m["name"], ctx.inputs["long"])
    running, _ = wait_until(lambda: (s.job(job) or {}).get("state") == "processing", 120, 0.05)
    st.check("a job was running when the signal came", bool(running))
    time.sleep(0.5)
    used = smi.used()
    st.figure("held_before_bytes", used - baseline)
    pids = s.runner_pids()
    code, exit_s, forced = s.stop(signal.SIGTERM, grace_s=60)
    back_s, last = smi.wait_used_within(baseline, RELEASE_TOLERANCE, 60)
    gone = [p for p in pids if os.path.exists("/proc/%d" % p)]
    summary = [l for l in s.lines if l.startswith("steno: ")][-1:]
    st.figure("exit", {"code": code, "seconds_to_exit": round(exit_s, 3), "killed": forced,
                       "seconds_to_memory_back": None if back_s is None else round(exit_s + back_s, 3),
                       "after_diff_mib": mib(last - baseline), "server_said": summary})
    st.check("exit 0", code == 0 and not forced, "exit %s%s" % (code, ", killed" if forced else ""))
    st.check("every byte back (used memory at the baseline within 64 MiB)", back_s is not None,
             "baseline %s MiB, after %s MiB" % (mib(baseline), mib(last)))
    st.check("no runner process left", not gone, "left %s" % gone)
    st.summary("exit %s in %.2f s; %s MiB back; %s" % (code, exit_s, mib(used - baseline),
                                                      summary[0] if summary else ""))


# ---- 7 --------------------------------------------------------------------------------------

def evict_page_cache(path, gpu):
    """Drops the model file from the page cache; says how."""
    how = []
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        how.append("posix_fadvise(DONTNEED) on the file")
    finally:
        os.close(fd)
    if gpu:
        if os.geteuid() == 0:
            try:
                subprocess.run(["sync"], timeout=60)
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("3\n")
                how.append("echo 3 > /proc/sys/vm/drop_caches")
            except OSError as e:
                how.append("drop_caches not possible: %s" % e)
        else:
            how.append("drop_caches not possible: not root")
    else:
        how.append("drop_caches not used in a dry run (a shared machine)")
    return how


def step_load_times(ctx, st):
    s = Steno(ctx, 7)
    smi = Smi(ctx, s.data_dir)
    m = ctx.model("large")
    st.figure("model", {"preset": m["preset"], "file_bytes": m["file_bytes"]})
    st.figure("cold_method", evict_page_cache(m["path"], not ctx.dry_run))
    baseline = smi.used()
    times = {}
    for kind in ("cold", "warm"):
        _, _, secs = s.load(m["name"])
        times[kind] = round(secs, 3)
        s.unload(m["name"])
        smi.wait_used_within(baseline, RELEASE_TOLERANCE, 60)
        st.figure("%s_load_s" % kind, times[kind])
        st.figure("%s_mb_per_s" % kind, round(m["file_bytes"] / 1e6 / max(secs, 1e-3), 1))
    st.check("cold and warm loads measured", len(times) == 2)
    s.stop()
    st.summary("%s: cold %.2f s, warm %.2f s (%s)" % (m["preset"], times["cold"], times["warm"],
                                                       "; ".join(st.rec["figures"]["cold_method"])))


# ---- 8 --------------------------------------------------------------------------------------

def step_context(ctx, st):
    s = Steno(ctx, 8)
    smi = Smi(ctx, s.data_dir)
    m = ctx.model("tiny")
    before = set(smi.apps())
    estimate, ready, _ = s.load(m["name"])
    pid = runner_pid(s)
    device_bytes = on_device(st, smi, pid, before)
    f = footprint(estimate, ready, m)
    reported = f["measured_weights_bytes"] + ready["streams"] * f["measured_stream_bytes"]
    f.update({"runner_on_device_bytes": device_bytes, "reported_bytes": reported})
    ok = device_bytes is not None
    if ok:
        f["context_bytes"] = device_bytes - reported
    st.figure("context_per_runner", f)
    st.check("nvidia-smi reports the runner's own memory", ok, "pid %s" % pid)
    if ok:
        st.check("the ledger's context charge covers the context",
                 f["context_charge_bytes"] >= f["context_bytes"],
                 "charged %s MiB, measured %s MiB" % (mib(f["context_charge_bytes"]),
                                                     mib(f["context_bytes"])))
    s.unload(m["name"])
    s.stop()
    st.summary("context %s MiB per runner (charged %s MiB)" % (
        mib(f.get("context_bytes")), mib(f["context_charge_bytes"])))


STEPS = [
    (1, "gpus_vs_nvidia_smi", "steno gpus --json against nvidia-smi; the runner as its own process",
     step_gpus),
    (2, "load_unload", "tiny, base, large-v3: load, unload, memory back; footprint vs estimate",
     step_load_unload),
    (3, "concurrent_streams", "8 concurrent jobs on one runner with 8 streams: no crash, same "
     "segments as one by one", step_concurrency),
    (4, "throughput_vs_whisper_server", "throughput at 1, 4, 8 clients against whisper-server",
     step_throughput),
    (5, "other_tenant", "another tenant holds 90 % of the free memory: nothing that does not fit "
     "starts, no OOM, the jobs run once it exits", step_tenant),
    (6, "sigterm", "SIGTERM mid-job: every byte back, exit 0, how long", step_sigterm),
    (7, "load_times", "cold and warm load times of the large-v3-size model", step_load_times),
    (8, "context_size", "the CUDA context's size per runner process", step_context),
    (9, "chunk_streams", "one long recording's chunks on 4 streams against 1 (--steps 9)",
     step_chunk_streams),
]
