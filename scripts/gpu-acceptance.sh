#!/usr/bin/env bash
# Measures every VRAM promise of steno on a real GPU in one call, or (--dry-run) runs the same
# steps' logic on simulated GPUs with CPU runners, and writes OUT_DIR/report.json (every figure,
# check and the calibration table) and OUT_DIR/summary.txt (one line per step).
#
#   gpu-acceptance.sh [--dry-run] [--simulate-gpus 1x80GiB] [--steps 1,2,...] OUT_DIR
#
# Steps (each with its own time budget; a failed or timed-out step does not stop the others):
#   1 steno gpus --json against nvidia-smi; the runner listed as its own process
#   2 tiny-, base-, large-v3-size models: load -> unload, memory back, footprint vs estimate
#   3 8 concurrent jobs on one large-v3-size runner with 8 streams: no crash, same segments
#   4 throughput at 1, 4, 8 clients against whisper-server (same model file, same beam)
#   5 another tenant holding 90 % of the free memory: nothing that does not fit starts
#   6 SIGTERM mid-job: every byte back, exit 0, how long
#   7 cold and warm load times of the large-v3-size model
#   8 the CUDA context's size per runner process
#   9 (only when --steps names it) one long recording's chunks on 4 streams against 1:
#     bench/chunk_streams.sh gpu for a machine without its tools (gpu-acceptance/chunk_streams.py)
#
# Binaries: STENO, MAKE_TEST_MODEL, WHISPER_SERVER, WHISPER_CLI, else beside this script (the
# dist/gpu-bundle layout), else the repository's build dir (BUILD, default build). Media: MEDIA
# (a dir with speech.wav), else ./media beside the script, else BUILD/test-data/media. Models are
# generated (make_test_model) into a temporary work dir (TMPDIR), removed at the end (KEEP_WORK=1
# keeps it). TOTAL_BUDGET (seconds; default 470 on a GPU, 170 in a dry run) bounds the whole run.
# Step 9's Silero VAD model: SILERO, else ggml-silero-v6.2.0.bin beside this script (the bundle),
# else the repository's ../shared/models, else the models dir ($STENO_MODELS).
# Needs bash, coreutils' timeout and python3 (standard library only; PyTorch for step 5 on a GPU).
# Exit: 0 every step passed, 1 a step failed, 2 bad usage or nothing to run with.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONDONTWRITEBYTECODE=1  # nothing written beside the script (the bundle may be read-only)
helpers="$here/gpu-acceptance"
repo="$(cd "$here/.." && pwd)"
build="${BUILD:-$repo/build}"
[[ "$build" = /* ]] || build="$repo/$build"

mode=gpu
simulate="1x80GiB"
only="1,2,3,4,5,6,7,8"
out=""

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# Per-step budgets in seconds (a step past its budget is stopped and reported as timed out).
declare -A budget=([prepare]=90 [1]=30 [2]=60 [3]=70 [4]=100 [5]=60 [6]=40 [7]=50 [8]=25 [9]=240)

parse_args() {
  while (($#)); do
    case "$1" in
      --dry-run) mode=dry-run ;;
      --simulate-gpus) simulate="${2:?--simulate-gpus needs a spec}"; shift ;;
      --simulate-gpus=*) simulate="${1#*=}" ;;
      --steps) only="${2:?--steps needs a list}"; shift ;;
      --steps=*) only="${1#*=}" ;;
      -h|--help) usage ;;
      -*) echo "gpu-acceptance: unknown option $1" >&2; usage ;;
      *) [[ -z "$out" ]] || { echo "gpu-acceptance: one OUT_DIR only" >&2; usage; }; out="$1" ;;
    esac
    shift
  done
  [[ -n "$out" ]] || { echo "gpu-acceptance: OUT_DIR is required" >&2; usage; }
}

# find_bin VAR NAME [FALLBACK...]: $VAR, else NAME beside this script, else the fallbacks.
find_bin() {
  local var="$1" name="$2" c
  shift 2
  for c in "${!var:-}" "$here/$name" "$@"; do
    if [[ -n "$c" && -x "$c" ]]; then echo "$c"; return 0; fi
  done
  echo "gpu-acceptance: $name not found (set $var, or run from the bundle)" >&2
  return 1
}

whisper_prefix() {
  if [[ -f "$build/whisper-prefix" ]]; then cat "$build/whisper-prefix"; fi
}

first_dir() {  # the first of its arguments that is a directory
  local d
  for d in "$@"; do [[ -n "$d" && -d "$d" ]] && { echo "$d"; return 0; }; done
  echo ""
}

first_file() {
  local f
  for f in "$@"; do [[ -n "$f" && -f "$f" ]] && { echo "$f"; return 0; }; done
  echo ""
}

setup() {
  command -v python3 >/dev/null || { echo "gpu-acceptance: python3 is required" >&2; exit 2; }
  command -v timeout >/dev/null || { echo "gpu-acceptance: timeout (coreutils) is required" >&2; exit 2; }
  [[ -f "$helpers/main.py" ]] || { echo "gpu-acceptance: $helpers/ is missing (copy it beside the script)" >&2; exit 2; }
  if [[ "$mode" = gpu ]] && ! command -v nvidia-smi >/dev/null; then
    echo "gpu-acceptance: nvidia-smi not found: no GPU here (--dry-run runs on simulated GPUs)" >&2
    exit 2
  fi
  local prefix; prefix="$(whisper_prefix)"
  steno="$(find_bin STENO steno "$build/steno")" || exit 2
  make_test_model="$(find_bin MAKE_TEST_MODEL make_test_model "$build/make_test_model")" || exit 2
  whisper_server="$(find_bin WHISPER_SERVER whisper-server "${prefix:+$prefix/bin/whisper-server}")" || exit 2
  whisper_cli="$(find_bin WHISPER_CLI whisper-cli "${prefix:+$prefix/bin/whisper-cli}" 2>/dev/null || true)"
  media="$(first_dir "${MEDIA:-}" "$here/media" "$build/test-data/media")"
  calibration_h="$(first_file "${CALIBRATION_H:-}" "$here/calibration.h" "$repo/src/sched/calibration.h")"
  vad_model="$(first_file "${SILERO:-}" "$here/ggml-silero-v6.2.0.bin" \
    "$repo/../shared/models/ggml-silero-v6.2.0.bin" \
    "${STENO_MODELS:-$HOME/.local/share/steno/models}/ggml-silero-v6.2.0.bin")"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  rm -rf "$out/steps" "$out/logs" "$out/report.json" "$out/summary.txt"
  work="$(mktemp -d "${TMPDIR:-/tmp}/steno-acceptance.XXXXXX")"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

cleanup() {
  if [[ "${KEEP_WORK:-0}" = 1 ]]; then
    echo "gpu-acceptance: work dir kept: $work" >&2
  else
    rm -rf "$work"
  fi
}

elapsed() { echo $((SECONDS - started)); }

# run_step N: runs step N under its budget (shortened to what the run has left); records its
# exit status for the report (124/137: stopped by the budget; "skipped": no time left).
run_step() {
  local n="$1" left b rc
  left=$((total - $(elapsed) - 10))  # 10 s kept for the report
  b="${budget[$n]}"
  ((left < b)) && b="$left"
  if ((b < 5)); then
    rcs+=("$n=skipped")
    echo "step $n: skipped (the run's ${total} s are spent)"
    return 0
  fi
  if STEP_BUDGET_S="$b" timeout -k 5 "$b" python3 -u "$helpers/main.py" step "$n" "$work"; then
    rc=0
  else
    rc=$?
  fi
  ((rc == 124 || rc == 137)) && echo "step $n: stopped after its ${b} s budget"
  rcs+=("$n=$rc")
}

main() {
  parse_args "$@"
  setup
  started=$SECONDS
  total="${TOTAL_BUDGET:-$([[ "$mode" = gpu ]] && echo 470 || echo 170)}"
  echo "gpu-acceptance ($mode): steno $steno; report in $out"
  local prepare_args=(prepare "$work" --mode "$mode" --out "$out" --steno "$steno"
    --make-test-model "$make_test_model" --whisper-server "$whisper_server"
    --whisper-cli "$whisper_cli" --media "$media" --simulate-gpus "$simulate"
    --calibration-header "$calibration_h" --vad-model "$vad_model")
  if ! timeout -k 5 "${budget[prepare]}" python3 -u "$helpers/main.py" "${prepare_args[@]}"; then
    echo "gpu-acceptance: preparing the models and inputs failed" >&2
    exit 2
  fi
  rcs=()
  local n
  for n in 1 2 3 4 5 6 7 8 9; do
    [[ ",$only," == *",$n,"* ]] || { rcs+=("$n=not-selected"); continue; }
    run_step "$n"
  done
  echo
  local rc=0
  ACCEPTANCE_WALL_S="$(elapsed)" python3 -u "$helpers/main.py" report "$work" "${rcs[@]}" || rc=$?
  echo "report: $out/report.json, summary: $out/summary.txt ($(elapsed) s)"
  exit "$rc"
}

main "$@"
