#!/usr/bin/env bash
# Aggregate throughput over HTTP (audio seconds per wall second) of `steno serve` against upstream
# `whisper-server` built from the same whisper.cpp source (scripts/build-whisper), with the same
# model file, input and threads, at 1, 4 and 8 concurrent clients; prints both and the ratios
# steno / whisper-server. Both servers run on loopback and are stopped at the end.
#
#   bench/api_vs_whisper_server.sh [MODEL_PATH]
#     MODEL_PATH   a ggml model file (default: the tiny generated test model, CI size). On a GPU
#                  machine, a large-v3-size model: $BUILD/make_test_model --preset large-v3 --out M
# Environment: BUILD (build dir, default build), THREADS (default nproc), DEVICE (cpu, or cuda:0
# for a CUDA build: whisper-server then uses its default GPU), LEVELS (default 1,4,8),
# BENCH_SECONDS (per level, default 15), BEAM (beam size of both, default 5), INPUT (a 16 kHz
# wav, default the 8 s test speech), STENO_ARGS / WHISPER_ARGS (extra flags, space-separated)
# for either server, ALLOW_DIFFERENT_TEXT=1 (report the ratios even when the two servers' texts
# differ; by default that is an error).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD="${BUILD:-build}"
threads="${THREADS:-$(nproc)}"
device="${DEVICE:-cpu}"
levels="${LEVELS:-1,4,8}"
seconds="${BENCH_SECONDS:-15}"

data="$BUILD/test-data"
if [ ! -f "$data/media/speech.wav" ] || [ ! -f "$data/models/tiny-random.bin" ]; then
  MAKE_TEST_MODEL="$BUILD/make_test_model" "$here/../tests/support/make_test_data.sh" "$data" >/dev/null
fi
model="${1:-$data/models/tiny-random.bin}"
input="${INPUT:-$data/media/speech.wav}"
[ -f "$model" ] || { echo "no model file: $model" >&2; exit 2; }

# The whisper.cpp prefix this build links (make writes it to BUILD/whisper-prefix).
if [ -f "$BUILD/whisper-prefix" ]; then
  prefix="$(cat "$BUILD/whisper-prefix")"
else
  prefix="$(sed -n 's/^STENO_WHISPER_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")"
fi
whisper_server="$prefix/bin/whisper-server"
if [ ! -x "$whisper_server" ]; then
  # Prefixes built before whisper-server was part of them get it added (that target only).
  STENO_CUDA="$([[ "$device" == cuda* ]] && echo 1 || echo 0)" "$here/../scripts/build-whisper" >/dev/null
fi

# Decoding must be the same on both sides: steno's server decodes like whisper-cli (beam 5,
# best of 5, temperature fallback +0.2) while whisper-server defaults to greedy best-of-2, so
# both are given the beam size (BEAM, default 5) and best-of 5. The script checks that both
# return the same text.
beam="${BEAM:-5}"
args=(--steno "$BUILD/steno" --whisper-server "$whisper_server" --model "$model" --input "$input"
      --threads "$threads" --device "$device" --levels "$levels" --seconds "$seconds"
      "--steno-arg=--beam-size" "--steno-arg=$beam"
      --whisper-arg=-bs "--whisper-arg=$beam" --whisper-arg=-bo --whisper-arg=5)
[ "${ALLOW_DIFFERENT_TEXT:-0}" = "1" ] && args+=(--allow-different-text)
for a in ${STENO_ARGS:-}; do args+=("--steno-arg=$a"); done
for a in ${WHISPER_ARGS:-}; do args+=("--whisper-arg=$a"); done
exec node "$here/api_throughput.mjs" "${args[@]}"
