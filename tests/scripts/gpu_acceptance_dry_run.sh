#!/usr/bin/env bash
# The GPU acceptance script's dry run (scripts/gpu-acceptance.sh --dry-run: simulated GPUs, CPU
# runners) end to end, every step selected (step 9, the chunk-streams benchmark, runs only when
# named): it exits 0, writes report.json and summary.txt, the report has its shape,
# every step ran and passed, and the calibration table names every constant of
# src/sched/calibration.h with its current value. Needs STENO, MAKE_TEST_MODEL, WHISPER_SERVER
# and MEDIA (the tests' environment sets them).
set -euo pipefail
source_dir="${STENO_SOURCE_DIR:?}"
out="$(mktemp -d "${TMPDIR:-/tmp}/steno-acceptance-test.XXXXXX")"
trap 'rm -rf "$out"' EXIT

rc=0
# Step 9 needs the Silero VAD model (SILERO, or ../shared/models beside the repository).
TOTAL_BUDGET="${TOTAL_BUDGET:-250}" \
  "$source_dir/scripts/gpu-acceptance.sh" --dry-run --steps 1,2,3,4,5,6,7,8,9 "$out" || rc=$?
if [[ -f "$out/summary.txt" ]]; then cat "$out/summary.txt"; fi
if ((rc != 0)); then
  echo "gpu-acceptance.sh --dry-run exited $rc" >&2
  for log in "$out"/logs/*.log; do [[ -f "$log" ]] && { echo "--- $log"; tail -20 "$log"; }; done
  exit 1
fi

python3 - "$out" "$source_dir/src/sched/calibration.h" <<'PY'
import json, os, re, sys
out, header = sys.argv[1], sys.argv[2]
r = json.load(open(os.path.join(out, "report.json")))
problems = []
def need(cond, what):
    if not cond:
        problems.append(what)
for key in ("mode", "generated_at", "wall_s", "machine", "substitutions", "models", "steps",
            "calibration", "result"):
    need(key in r, "report.json has no %r" % key)
need(r.get("mode") == "dry-run", "mode is %r, not dry-run" % r.get("mode"))
need(r.get("substitutions"), "a dry run must say what it substituted")
names = ["gpus_vs_nvidia_smi", "load_unload", "concurrent_streams", "throughput_vs_whisper_server",
         "other_tenant", "sigterm", "load_times", "context_size", "chunk_streams"]
steps = r.get("steps", [])
need([s.get("name") for s in steps] == names, "steps %s" % [s.get("name") for s in steps])
for s in steps:
    need(s.get("status") == "passed", "step %s: %s %s" % (s.get("name"), s.get("status"), s.get("error")))
    need(s.get("checks") and all("ok" in c and "name" in c for c in s["checks"]),
         "step %s has no checks" % s.get("name"))
    need(s.get("figures"), "step %s has no figures" % s.get("name"))
    need(isinstance(s.get("wall_s"), (int, float)), "step %s has no wall time" % s.get("name"))
f = {s["name"]: s.get("figures", {}) for s in steps}
for role in ("tiny", "base", "large"):
    fig = f.get("load_unload", {}).get(role, {})
    for k in ("estimated_stream_bytes", "measured_stream_bytes", "release_s", "load_s"):
        need(isinstance(fig.get(k), (int, float)), "load_unload.%s.%s missing" % (role, k))
need(set(f.get("throughput_vs_whisper_server", {}).get("ratios", {})) == {"1", "4", "8"},
     "throughput ratios at 1, 4, 8 clients")
need(f.get("concurrent_streams", {}).get("streams") == 8, "8 streams")
chunks = f.get("chunk_streams", {})
need(set(chunks.get("latency_s", {})) == {"1", "2"}, "chunk_streams latencies on 2 and 1 streams")
need(chunks.get("same_text") is True, "chunk_streams: the same text on 2 streams as on 1")
consts = set(re.findall(r"constexpr\s+int64_t\s+(k\w+)", open(header).read()))
table = {c["name"]: c for c in r.get("calibration", [])}
need("kCudaContextBytes" in table and table["kCudaContextBytes"].get("current") == 300 << 20,
     "calibration: kCudaContextBytes's current value")
need(set(table) <= consts, "calibration names %s not in calibration.h" % (set(table) - consts))
for c in table.values():
    need(isinstance(c.get("current"), int), "calibration %s has no current value" % c["name"])
    need("suggested" in c, "calibration %s has no suggestion field" % c["name"])
need(r.get("result", {}).get("all_passed") is True, "result.all_passed")
summary = open(os.path.join(out, "summary.txt")).read()
need(summary.count("[PASS]") == 9, "summary.txt lists 9 passed steps")
if problems:
    print("\n".join("FAIL: " + p for p in problems))
    sys.exit(1)
print("report.json: 9 steps passed, shape as expected (%.0f s)" % r["wall_s"])
PY
