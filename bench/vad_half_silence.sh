#!/usr/bin/env bash
# Wall time of `steno transcribe` with voice activity detection against without, on a
# 10-minute recording that is half silence (tests/support/make_long_recording.sh: espeak-ng
# speech in six voices, 18 silences of 6 s to 30 s). Prints both means and their ratio
# (target on the CPU: with VAD / without <= 0.55).
#   bench/vad_half_silence.sh [PRESET] [RUNS]   (PRESET of make_test_model, default base; RUNS 1)
# Environment: BUILD (default build), THREADS (default nproc), SECONDS_LONG (the recording's
# length, default 600), SILERO (the VAD model; default: the models dir's, else
# ../shared/models/ggml-silero-v6.2.0.bin beside the project, else `steno models pull`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD="${BUILD:-build}"
preset="${1:-base}"
runs="${2:-1}"
threads="${THREADS:-$(nproc)}"
length="${SECONDS_LONG:-600}"
work="$BUILD/bench-data"
mkdir -p "$work"

input="$work/half_silent_${length}s.wav"
"$here/../tests/support/make_long_recording.sh" "$input" "$length" 50
model="$work/ggml-$preset-random.bin"
[ -f "$model" ] || "$BUILD/make_test_model" --preset "$preset" --seed 3 --out "$model" >/dev/null

# The VAD model, linked into a models dir of the benchmark's own.
models="$work/vad-models"
mkdir -p "$models"
vad="$models/ggml-silero-v6.2.0.bin"
if [ ! -f "$vad" ]; then
  for c in "${SILERO:-}" "${STENO_MODELS:-$HOME/.local/share/steno/models}/ggml-silero-v6.2.0.bin" \
           "$here/../../shared/models/ggml-silero-v6.2.0.bin"; do
    [ -n "$c" ] && [ -f "$c" ] && { ln -sf "$(realpath "$c")" "$vad"; break; }
  done
  [ -f "$vad" ] || STENO_MODELS="$models" "$BUILD/steno" models pull silero-v6.2.0 >/dev/null
fi

common=(transcribe "$input" --model "$model" --language en --threads "$threads" --beam-size 1
        --temperature-inc 0 --device cpu --format verbose_json)
run() {  # run NAME [FLAGS...]: prints the mean wall seconds of RUNS runs
  local name="$1" total=0 t0 t1; shift
  for _ in $(seq "$runs"); do
    t0=$(date +%s.%N)
    STENO_MODELS="$models" "$BUILD/steno" "${common[@]}" "$@" > "$work/vad_bench_$name.json"
    t1=$(date +%s.%N)
    total=$(echo "$total + $t1 - $t0" | bc)
  done
  printf '%.3f' "$(echo "scale=4; $total / $runs" | bc)"
}

quiet="$(awk '{ s += $2 - $1 } END { printf "%.0f", s }' "$input.silences")"
echo "input: $input ($length s, $quiet s of it silence), model: $preset (random weights), threads: $threads, runs: $runs"
with="$(run vad --vad)"
without="$(run plain)"
segs() { jq '.segments | length' "$work/vad_bench_$1.json"; }
echo "with VAD mean $with s ($(segs vad) segments), without mean $without s ($(segs plain) segments)"
echo "ratio with VAD / without = $(printf '%.3f' "$(echo "scale=4; $with / $without" | bc)") (target <= 0.55)"
