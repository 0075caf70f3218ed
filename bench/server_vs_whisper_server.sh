#!/usr/bin/env bash
# steno in front of whisper.cpp's whisper-server (a `whisper-server` server model) against
# whisper-server alone, 1 client, the same 60 s clip, model file, threads and decoding. Prints
# the mean time per request of both and their ratio (target: steno / whisper-server <= 1.03), and
# steno's cold start to first answer: from the first request with nothing loaded to its answer
# (whisper-server started, its model loaded, its health check answered, the request forwarded),
# and from launching a fresh `steno serve` to that answer.
#   bench/server_vs_whisper_server.sh [PRESET] [RUNS]   (PRESET of make_test_model, default base)
# Environment: BUILD (default build), THREADS (default nproc), INPUT (another clip, e.g. a short
# one to check the script works; default the 60 s clip).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD="${BUILD:-build}"
preset="${1:-base}"
runs="${2:-5}"
threads="${THREADS:-$(nproc)}"
work="$BUILD/bench-data"
mkdir -p "$work"

input="${INPUT:-$work/speech_60s.wav}"
if [ -z "${INPUT:-}" ] && [ ! -f "$input" ]; then
  "$here/../tests/support/make_media.sh" "$work/media" >/dev/null
  cp "$work/media/speech_60s.wav" "$input"
fi
model="$work/ggml-$preset-random.bin"
[ -f "$model" ] || "$BUILD/make_test_model" --preset "$preset" --seed 3 --out "$model" >/dev/null
ws="$(cat "$BUILD/whisper-prefix")/bin/whisper-server"
[ -x "$ws" ] || STENO_CUDA=0 "$here/../scripts/build-whisper" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # URL: until it answers 200 (60 s at most)
  for _ in $(seq 600); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
[ -n "${KEEP_TMP:-}" ] && trap 'echo "kept $tmp"' EXIT

# The same decoding on both sides: greedy, no temperature fallback (deterministic).
decode=(-t "$threads" -bs 1 -nf)
cat > "$tmp/models.toml" <<TOML
[[models]]
name = "ws"
kind = "server"
protocol = "whisper-server"
command = ["$ws", "-m", "$model", $(printf '"%s", ' "${decode[@]}")"--host", "{host}", "--port", "{port}"]
ready_timeout = "300s"
TOML

ws_port="$(free_port)"
"$ws" -m "$model" "${decode[@]}" --host 127.0.0.1 --port "$ws_port" >"$tmp/ws.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ws_port/health"
# steno starts once whisper-server alone is up and idle: nothing else loads meanwhile.
steno_port="$(free_port)"
launched=$(date +%s.%N)
"$BUILD/steno" serve --host 127.0.0.1 --port "$steno_port" --data-dir "$tmp/data" \
  --models-dir "$tmp/models" --device cpu --models-config "$tmp/models.toml" >"$tmp/steno.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$steno_port/healthz"

steno_req=(curl -sf -F "file=@$input" -F model=ws -F response_format=json
           "http://127.0.0.1:$steno_port/v1/audio/transcriptions")
ws_req=(curl -sf -F "file=@$input" -F response_format=json -F language=auto -F temperature=0
        "http://127.0.0.1:$ws_port/inference")
start=$(date +%s.%N)
"${steno_req[@]}" > "$tmp/steno.json"
answered=$(date +%s.%N)
cold=$(printf "%.3f" "$(echo "$answered - $start" | bc)")
fresh=$(printf "%.3f" "$(echo "$answered - $launched" | bc)")
"${ws_req[@]}" > "$tmp/ws.json"
# whisper-server ends each segment's text with a newline; steno joins them: compare the words.
same="$(jq -n --slurpfile a "$tmp/steno.json" --slurpfile b "$tmp/ws.json" \
  'def norm: gsub("\\s+"; " ") | ltrimstr(" ") | rtrimstr(" "); ($a[0].text|norm) == ($b[0].text|norm)')"
echo "same text from both: $same"
[ "$same" = "true" ] || { echo "outputs differ: the timing would compare different work" >&2; exit 1; }
echo "steno cold start to first answer (whisper-server started and loaded): ${cold} s from the first request, ${fresh} s from launching steno serve"

echo "input: $input ($(soxi -D "$input") s), model: $preset (random weights), threads: $threads, runs: $runs"
hyperfine --warmup 1 --runs "$runs" --export-json "$tmp/result.json" \
  -n steno "${steno_req[*]}" -n whisper-server "${ws_req[*]}" >/dev/null
jq -r --argjson cold "$cold" '.results as $r | "steno mean \($r[0].mean) s, whisper-server mean \($r[1].mean) s, ratio steno/whisper-server = \(($r[0].mean / $r[1].mean * 1000 | round) / 1000) (target <= 1.03); cold start cost \((($cold - $r[0].mean) * 100 | round) / 100) s over a warm request"' "$tmp/result.json"
