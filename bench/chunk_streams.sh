#!/usr/bin/env bash
# Latency of one long recording through `steno serve` and the OpenAI endpoint with
# chunking_strategy=auto (VAD cuts the speech into chunks of at most 30 s, which run on as many
# free streams as the job is granted), with N streams against 1, in one run. Prints both mean
# latencies and the speedup.
#   bench/chunk_streams.sh cpu [RUNS]   one 10-minute speech file, the generated base model: 2
#                                       streams of 1 thread against 1 stream of 2 threads (these
#                                       2 cores; report the figure)
#   bench/chunk_streams.sh gpu [RUNS]   a large-v3-size generated model on cuda:0: 4 streams
#                                       against 1 (target >= 3x faster). Without a GPU it says so
#                                       and exits 0: `make bench` runs it everywhere. A bare GPU
#                                       machine (no FFmpeg, espeak-ng, curl, bc, CUDA build) runs
#                                       the same measurement from the GPU bundle:
#                                       `dist/gpu-bundle/run.sh --steps 9 OUT_DIR` (step 9 of
#                                       scripts/gpu-acceptance.sh, Silero model included).
# Environment: BUILD (default build; a CUDA build for gpu, e.g. build-cuda90), SECONDS_LONG (the
# recording's length, default 600), PRESET (make_test_model preset; default base, large-v3 on
# the GPU), SILERO (the VAD model, as bench/vad_half_silence.sh finds it).
# Chunks spread over streams only where the server splits a job (its --chunk-streams flag, passed
# when `steno serve --help` lists it); before that both sides run the job on one stream.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD="${BUILD:-build}"
mode="${1:-cpu}"
runs="${2:-1}"
length="${SECONDS_LONG:-600}"
work="$BUILD/bench-data"
mkdir -p "$work"

if [ "$mode" = gpu ]; then
  if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "chunk_streams gpu: skipped, no GPU here (nvidia-smi lists none)"
    exit 0
  fi
  if ! ldd "$BUILD/steno" 2>/dev/null | grep -q libggml-cuda; then
    echo "chunk_streams gpu: skipped, $BUILD/steno is not a CUDA build (make STENO_CUDA=1 build, then BUILD=build-cuda90; or the bundle's step 9: dist/gpu-bundle/run.sh --steps 9 OUT_DIR)"
    exit 0
  fi
  preset="${PRESET:-large-v3}" many=4 device=(--device cuda:0)
  many_flags=(--max-streams 4 --threads 1) one_flags=(--max-streams 1 --threads 1)
else
  preset="${PRESET:-base}" many=2 device=(--device cpu)
  many_flags=(--max-streams 2 --threads 1 --cpu-cores 2)
  one_flags=(--max-streams 1 --threads 2 --cpu-cores 2)
fi

input="$work/long_speech_${length}s.wav"
"$here/../tests/support/make_long_recording.sh" "$input" "$length" 0
model="$work/ggml-$preset-random.bin"
[ -f "$model" ] || "$BUILD/make_test_model" --preset "$preset" --seed 3 --out "$model" >/dev/null

tmp="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/models"
ln -s "$(realpath "$model")" "$tmp/models/bench-model.bin"
for c in "${SILERO:-}" "${STENO_MODELS:-$HOME/.local/share/steno/models}/ggml-silero-v6.2.0.bin" \
         "$here/../../shared/models/ggml-silero-v6.2.0.bin" "$work/vad-models/ggml-silero-v6.2.0.bin"; do
  [ -n "$c" ] && [ -f "$c" ] && { ln -s "$(realpath "$c")" "$tmp/models/"; break; }
done
[ -e "$tmp/models/ggml-silero-v6.2.0.bin" ] ||
  STENO_MODELS="$tmp/models" "$BUILD/steno" models pull silero-v6.2.0 >/dev/null

chunk_flag=()
"$BUILD/steno" serve --help 2>&1 | grep -q -- '--chunk-streams' && chunk_flag=(--chunk-streams)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# latency NAME STREAMS FLAGS...: starts a server, one warm-up request (the runner loads), then
# RUNS timed ones; prints the mean seconds per request.
latency() {
  local name="$1" streams="$2"; shift 2
  local port total=0 t0 t1
  port="$(free_port)"
  local flags=("$@")
  [ ${#chunk_flag[@]} -gt 0 ] && flags+=("${chunk_flag[0]}" "$streams")
  "$BUILD/steno" serve --host 127.0.0.1 --port "$port" --data-dir "$tmp/data-$name" \
    --models-dir "$tmp/models" "${device[@]}" --beam-size 1 --temperature-inc 0 \
    "${flags[@]}" > "$tmp/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1200); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.25; done
  local req=(curl -sf --max-time 3600 -F "file=@$input" -F model=bench-model -F language=en
             -F chunking_strategy=auto -F response_format=json
             "http://127.0.0.1:$port/v1/audio/transcriptions")
  "${req[@]}" > "$tmp/$name.json" || { cat "$tmp/$name.log" >&2; return 1; }
  for _ in $(seq "$runs"); do
    t0=$(date +%s.%N)
    "${req[@]}" > "$tmp/$name.json"
    t1=$(date +%s.%N)
    total=$(echo "$total + $t1 - $t0" | bc)
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  printf '%.3f' "$(echo "scale=4; $total / $runs" | bc)"
}

echo "input: $input ($length s of speech), model: $preset (random weights), device: ${device[1]}," \
     "runs: $runs, chunk streams flag: ${chunk_flag[*]:-none (jobs run on one stream)}"
a="$(latency many "$many" "${many_flags[@]}")"
b="$(latency one 1 "${one_flags[@]}")"
echo "$many streams (${many_flags[*]}) mean $a s, 1 stream (${one_flags[*]}) mean $b s"
target=""
[ "$mode" = gpu ] && target=" (target >= 3)"
echo "speedup 1 stream / $many streams = $(printf '%.2f' "$(echo "scale=4; $b / $a" | bc)")x$target"
