#!/usr/bin/env bash
# Live captions latency (issue 19): end of utterance → completed event, p50 and p99, at 1, 10 and
# 20 sessions of OpenAI's Realtime transcription protocol against `steno serve`, each streaming
# the synthesised dialogue at real-time pace (bench/realtime_latency.mjs says what is measured).
#   bench/realtime_latency.sh cpu   the tiny generated model computing on the CPU, one runner
#                                   holding every session (one thread per stream; a simulated GPU,
#                                   as the CPU device gives a small machine a stream per core)
#   bench/realtime_latency.sh gpu   the same on cuda:0 with a large-v3-size generated model.
#                                   Without a GPU it says so and exits 0: `make bench` runs it
#                                   everywhere.
# Environment: BUILD (default build; a CUDA build for gpu, e.g. build-cuda90), SESSIONS (default
# 1,10,20), PRESET (make_test_model preset for gpu, default large-v3), SILERO (the VAD model;
# default: the models dir's, else ../shared/models beside the project, else `steno models pull`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD="${BUILD:-build}"
mode="${1:-cpu}"
data="$BUILD/test-data"
work="$BUILD/bench-data"
mkdir -p "$work"

if [ "$mode" = gpu ]; then
  if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "realtime_latency gpu: skipped, no GPU here (nvidia-smi lists none)"
    exit 0
  fi
  if ! ldd "$BUILD/steno" 2>/dev/null | grep -q libggml-cuda; then
    echo "realtime_latency gpu: skipped, $BUILD/steno is not a CUDA build (make STENO_CUDA=1 build, then BUILD=build-cuda90)"
    exit 0
  fi
  preset="${PRESET:-large-v3}"
  model="$work/ggml-$preset-random.bin"
  [ -f "$model" ] || "$BUILD/make_test_model" --preset "$preset" --seed 3 --out "$model" >/dev/null
  args=(--device cuda:0 --simulate-gpus '' --model-file "$model")
else
  args=(--device auto --simulate-gpus 1x16GiB)
fi
if [ ! -f "$data/models/tiny-random.bin" ]; then
  MAKE_TEST_MODEL="$BUILD/make_test_model" "$here/../tests/support/make_test_data.sh" "$data" >/dev/null
fi

vad=""
for c in "${SILERO:-}" "${STENO_MODELS:-$HOME/.local/share/steno/models}/ggml-silero-v6.2.0.bin" \
         "$here/../../shared/models/ggml-silero-v6.2.0.bin" "$work/vad-models/ggml-silero-v6.2.0.bin"; do
  [ -n "$c" ] && [ -f "$c" ] && { vad="$c"; break; }
done
if [ -z "$vad" ]; then
  STENO_MODELS="$work/vad-models" "$BUILD/steno" models pull silero-v6.2.0 >/dev/null
  vad="$work/vad-models/ggml-silero-v6.2.0.bin"
fi

echo "== realtime_latency $mode: end of utterance → completed, ${SESSIONS:-1,10,20} sessions"
GGML_NO_BACKTRACE=1 node "$here/realtime_latency.mjs" --bin "$BUILD/steno" --data "$data" \
  --sessions "${SESSIONS:-1,10,20}" --silero "$vad" "${args[@]}"
