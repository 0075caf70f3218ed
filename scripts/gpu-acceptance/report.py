"""The run's report: OUT/report.json (every step's record, the machine, the calibration table)
and OUT/summary.txt (one line per step, the failed checks, the suggested constants)."""
import datetime
import json
import math
import os
import platform
import re
import subprocess

from lib import MiB, mib

STEP_NAMES = ["gpus_vs_nvidia_smi", "load_unload", "concurrent_streams",
              "throughput_vs_whisper_server", "other_tenant", "sigterm", "load_times",
              "context_size", "chunk_streams"]
COMPUTE_FACTORS = ["kConvPerCtxState", "kConvPerCtxMel", "kEncodePerCtxState",
                   "kCrossPerCtxState", "kDecodePerTokState", "kFixedOverhead"]


def read_constants(path):
    """NAME -> value of src/sched/calibration.h's `inline constexpr int64_t NAME = VALUE;`."""
    if not path or not os.path.isfile(path):
        return {}
    consts = {}
    with open(path) as f:
        for m in re.finditer(r"constexpr\s+int64_t\s+(k\w+)\s*=\s*([^;]+);", f.read()):
            expr = m.group(2).replace("'", "").replace("LL", "")
            if re.fullmatch(r"[\d\s<>()*+]+", expr):
                consts[m.group(1)] = int(eval(expr))  # digits and shifts only, checked above
    return consts


def machine(ctx):
    info = {"hostname": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "root": os.geteuid() == 0}
    try:
        info["steno"] = subprocess.run([ctx.steno, "--version"], capture_output=True,
                                       timeout=10).stdout.decode().strip()
    except OSError as e:
        info["steno"] = str(e)
    if ctx.mode == "gpu":
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                  "--format=csv,noheader"], capture_output=True, timeout=30)
            info["gpus"] = out.stdout.decode().strip().splitlines()
            head = subprocess.run(["nvidia-smi"], capture_output=True, timeout=30).stdout.decode()
            cuda = re.search(r"CUDA Version:\s*([\d.]+)", head)
            info["cuda_driver_version"] = cuda.group(1) if cuda else None
        except OSError as e:
            info["gpus"] = ["nvidia-smi: %s" % e]
    else:
        info["gpus"] = ["simulated %s (dry run)" % ctx.simulate_spec]
    return info


def load_steps(ctx, rcs):
    steps = []
    for n, name in enumerate(STEP_NAMES, 1):
        path = os.path.join(ctx.out_dir, "steps", "%d.json" % n)
        rc = rcs.get(n)
        rec = None
        if os.path.isfile(path):
            with open(path) as f:
                rec = json.load(f)
        if rec is None:
            rec = {"step": n, "name": name, "status": "not run", "checks": [], "figures": {},
                   "notes": [], "error": None, "summary": ""}
        if rc in (124, 137):
            rec["status"] = "timed out"
            rec["error"] = rec.get("error") or "stopped by its time budget (%s s)" % rec.get("budget_s")
        elif rc == "not-selected":
            rec["status"] = "not selected"
            rec["error"] = "not in --steps"
        elif rc == "skipped":
            rec["status"] = "skipped"
            rec["error"] = "not started: the run's total time budget was spent"
        elif rec["status"] == "running":
            rec["status"] = "failed"
            rec["error"] = rec.get("error") or "the step's process ended early (exit %s)" % rc
        rec["exit_status"] = rc
        steps.append(rec)
    return steps


def fig(steps, n, *keys):
    v = steps[n - 1].get("figures", {})
    for k in keys:
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


def calibration(ctx, steps):
    """Each calibrated constant: its current value, the figures that measure it, a suggestion."""
    consts = read_constants(ctx.calibration_header)
    rows = []
    # The CUDA context: what a runner holds beyond the weights and streams it reports.
    contexts = {}
    for role in ("tiny", "base", "large"):
        contexts["step 2 %s" % role] = fig(steps, 2, role, "context_bytes")
    contexts["step 3 (8 streams' model, 1 stream)"] = fig(steps, 3, "stream_on_device", "context_bytes")
    contexts["step 8 tiny"] = fig(steps, 8, "context_per_runner", "context_bytes")
    contexts = {k: v for k, v in contexts.items() if v is not None}
    charged = fig(steps, 8, "context_per_runner", "context_charge_bytes") or \
        fig(steps, 2, "tiny", "context_charge_bytes")
    current = consts.get("kCudaContextBytes", charged)
    suggested, note = None, ""
    if contexts and ctx.mode == "gpu":
        biggest = max(contexts.values())
        suggested = int(math.ceil(biggest * 1.1 / (16 * MiB)) * 16 * MiB)  # +10 %, whole 16 MiB
        note = "max measured %s MiB + 10 %%, rounded up to 16 MiB" % mib(biggest)
    elif ctx.mode != "gpu":
        note = "dry run: no CUDA context exists; measure on a GPU"
    rows.append({"name": "kCudaContextBytes", "current": current, "charged_by_this_binary": charged,
                 "suggested": suggested, "measured": contexts, "from": "steps 2, 3, 8: context_bytes",
                 "note": note})
    # The compute factors: scaled by how much a stream really takes over the estimate.
    ratios = {}
    for role in ("tiny", "base", "large"):
        ratios["step 2 %s (reported)" % role] = fig(steps, 2, role, "stream_ratio")
    ratios["step 3 (reported)"] = fig(steps, 3, "stream_on_device", "stream_ratio")
    ratios["step 3 (on the device)"] = fig(steps, 3, "stream_on_device", "device_stream_ratio")
    ratios = {k: v for k, v in ratios.items() if v is not None}
    worst = max(ratios.values()) if ratios else None
    for name in COMPUTE_FACTORS:
        cur = consts.get(name)
        sug = cur
        if cur is not None and worst is not None and worst > 1:
            sug = int(math.ceil(cur * worst * 1.05))
        rows.append({"name": name, "current": cur, "suggested": sug, "measured": ratios,
                     "from": "steps 2, 3: measured stream / estimated stream",
                     "note": ("a stream measured %.2fx its estimate: factors scaled by that +5 %%"
                              % worst) if worst and worst > 1 else
                             "estimates cover every measured stream: keep"})
    return rows


def write(ctx, rc_args):
    rcs = {}
    for a in rc_args:
        k, v = a.split("=", 1)
        rcs[int(k)] = int(v) if v.lstrip("-").isdigit() else v
    steps = load_steps(ctx, rcs)
    passed = sum(1 for s in steps if s["status"] == "passed")
    selected = [s for s in steps if s["status"] != "not selected"]
    report = {
        "mode": ctx.mode,
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(float(os.environ.get("ACCEPTANCE_WALL_S", "0")), 1),
        "machine": machine(ctx),
        "substitutions": ctx.substitutions,
        "models": {r: {k: m.get(k) for k in ("name", "preset", "file_bytes", "tensor_bytes",
                                             "generate_s")} for r, m in ctx.models.items()},
        "prepare": ctx.prepare,
        "inputs": {"source": ctx.inputs["source"], "clips": len(ctx.inputs["clips"]),
                   "bench_seconds": ctx.inputs["bench_seconds"],
                   "long_seconds": ctx.inputs["long_seconds"]},
        "steps": steps,
        "calibration": calibration(ctx, steps),
        "result": {"passed": passed, "failed": len(selected) - passed,
                   "selected": len(selected), "all_passed": passed == len(selected)},
    }
    with open(os.path.join(ctx.out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    text = summary(report)
    with open(os.path.join(ctx.out_dir, "summary.txt"), "w") as f:
        f.write(text)
    print(text, end="")
    return 0 if report["result"]["all_passed"] else 1


def summary(r):
    out = ["steno GPU acceptance (%s), %s, %.0f s: %d of %d steps passed" % (
        r["mode"], "; ".join(r["machine"].get("gpus") or []), r["wall_s"],
        r["result"]["passed"], r["result"]["selected"])]
    for s in r["steps"]:
        tag = {"passed": "PASS", "failed": "FAIL"}.get(s["status"], s["status"].upper())
        out.append("[%s] %d %s (%s s): %s" % (tag, s["step"], s["name"], s.get("wall_s"),
                                              s.get("summary") or ""))
        for c in s["checks"]:
            if not c["ok"]:
                out.append("       failed: %s (%s)" % (c["name"], c["detail"]))
        if s.get("error"):
            out.append("       error: %s" % s["error"])
    out.append("calibration (src/sched/calibration.h): name current -> suggested")
    for c in r["calibration"]:
        out.append("  %-20s %s -> %s  %s" % (c["name"], c["current"], c["suggested"], c["note"]))
    for note in r["substitutions"]:
        out.append("dry run: %s" % note)
    return "\n".join(out) + "\n"
