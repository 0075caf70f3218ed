#!/usr/bin/env bash
# Compute-aware admission (issue 23): the same burst of small jobs on one simulated 8 GiB card
# whose runners compute on this machine's cores, once with no compute limit (memory alone:
# --max-concurrency-per-device 0, dozens of jobs share the cores) and once with the learned limit
# (auto). Prints, for each, the median and 90th-percentile latency (submission to result), the
# median run time (claimed to result), the throughput in audio seconds per second (all the audio
# over the time from the first submission to the last result) and the limit the card ended at;
# then the ratios auto / unlimited, measured in this one run. Target: median latency below
# unlimited's at equal or better throughput (throughput ratio >= 1.0 within noise).
# History: the first runs here (JOBS=40, a machine busy with other builds) and a quiet JOBS=200 run
# did not meet the target (median latency 1.2-2.0x): the submissions came from a loop of curl and
# jq processes that competed with the runners for the cores, slowed most by the unlimited
# setting's dozens of threads, so its jobs arrived over 12 s against 3 s for auto's; and the
# learner, fed two-job windows while that loop ran, probed back down to one stream twice.
# Quiet machine (load ~0.5), one curl sending the burst, the learner not re-probing a level it
# measured as worse (2026-12-06, ROUNDS=2): auto settled at 2; median latency 0.897 and 0.852,
# throughput 1.093 and 1.149, median run time 0.05x; again with auto the server's default and live
# sessions outside the limit: 0.843 and 0.766, throughput 1.106 and 1.103. Met.
#
# "cores used" is the CPU time the server and its runners got over the run's span: on a machine
# shared with other work, dozens of runnable threads (unlimited) take a larger share of the cores
# from the other tenants than two do, which the throughput ratio then credits to "unlimited";
# throughput per core used compares the two without that share.
#
#   bench/compute_limit.sh            Environment: BUILD (default build), JOBS (default 200),
#                                     CLIP_S (seconds of speech per job, default 3), ROUNDS
#                                     (unlimited/auto pairs run one after the other, default 1)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD="${BUILD:-build}"
JOBS="${JOBS:-200}"
ROUNDS="${ROUNDS:-1}"
CLIP_S="${CLIP_S:-3}"
data="$BUILD/test-data"
if [ ! -f "$data/media/speech.wav" ] || [ ! -f "$data/models/tiny-random.bin" ]; then
  MAKE_TEST_MODEL="$BUILD/make_test_model" "$here/../tests/support/make_test_data.sh" "$data" >/dev/null
fi
tmp="$(mktemp -d /tmp/steno-compute-limit.XXXXXX)"
server=""
stop_server() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
  fi
  server=""
}
trap 'stop_server; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/models" "$tmp/audio"
cp "$data/models/tiny-random.bin" "$tmp/models/tiny-random.bin"
ffmpeg -loglevel error -i "$data/media/speech.wav" -t "$CLIP_S" -ac 1 -ar 16000 "$tmp/audio/clip.wav"
clip_s="$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$tmp/audio/clip.wav")"

# One run: start the server with this limit, submit every job at once, wait for all, summarise.
run() {  # LIMIT → prints "median_ms p90_ms median_run_ms throughput limit_at_end"
  local limit="$1" dir="$tmp/run-$1" url=""
  rm -rf "$dir"  # a fresh store each round: the list below counts every job in it
  mkdir -p "$dir"
  GGML_NO_BACKTRACE=1 "$BUILD/steno" --log-level warn serve --host 127.0.0.1 --port 0 \
    --data-dir "$dir/data" --models-dir "$tmp/models" --device auto --simulate-gpus 1x8GiB \
    --threads 1 --cpu-cores "$(nproc)" --max-streams 4 --temperature-inc 0 --no-warmup \
    --allow-path "$tmp/audio" --max-concurrency-per-device "$limit" \
    >"$dir/serve.out" 2>"$dir/serve.err" &
  server=$!
  for _ in $(seq 600); do
    url="$(grep -so 'http://127.0.0.1:[0-9]*' "$dir/serve.out" | head -1 || true)"
    [ -n "$url" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$dir/serve.err" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { echo "steno serve did not start" >&2; exit 1; }
  # The burst: one curl process sends every submission, 16 at a time, so that the submissions
  # reach the server within about a second under either setting (a loop of curl and jq processes
  # competed for the cores with the runners, and at nice 0 against their nice 5 it was slowed most
  # by the unlimited setting's dozens of threads: its jobs arrived over 12 s against 3 s for auto's,
  # which the latency from each job's creation then credited to "unlimited").
  jq -cn --arg p "$tmp/audio/clip.wav" '{path: $p, model: "tiny-random", language: "en"}' \
    >"$dir/body.json"
  mkdir -p "$dir/sent"
  {
    printf 'header = "Content-Type: application/json"\ndata = "@%s"\n' "$dir/body.json"
    for i in $(seq "$JOBS"); do printf 'url = "%s/v1/jobs"\noutput = "%s/sent/%d.json"\n' "$url" "$dir" "$i"; done
  } >"$dir/burst.curl"
  curl -sf --no-progress-meter --parallel --parallel-max 16 --config "$dir/burst.curl" ||
    { echo "submissions failed" >&2; exit 1; }
  [ "$(cat "$dir"/sent/*.json | jq -r .id | grep -c .)" -eq "$JOBS" ] ||
    { echo "submissions failed" >&2; exit 1; }
  # Waiting costs the machine almost nothing: one list of the jobs a second (a client polling
  # every job with curl and jq ten times a second took a share of the 2 cores from the runners,
  # more from 2 streams than from dozens). The times come from the jobs' own records.
  local pending
  for _ in $(seq 36000); do
    curl -sf "$url/v1/jobs?limit=1000" >"$dir/list.json"
    if jq -e '.data[] | select(.state == "failed" or .state == "cancelled")' "$dir/list.json" >/dev/null; then
      echo "a job failed or was cancelled" >&2
      exit 1
    fi
    pending="$(jq '[.data[] | select(.state != "completed")] | length' "$dir/list.json")"
    [ "$(jq '.data | length' "$dir/list.json")" -eq "$JOBS" ] && [ "$pending" -eq 0 ] && break
    sleep 1
  done
  jq -c '.data[]' "$dir/list.json" >"$dir/jobs.jsonl"
  local limit_at_end cpu_s
  limit_at_end="$(curl -sf "$url/v1/gpus" | jq -r '.data[0].compute.limit // "none"')"
  cpu_s="$(cpu_seconds "$server")"
  stop_server
  jq -rs --argjson clip "$clip_s" --arg limit "$limit_at_end" --argjson cpu "$cpu_s" '
    def median: sort | .[(length / 2 | floor)];
    def p90: sort | .[((length * 9 / 10) | floor)];
    (map(.finished_ms - .created_ms)) as $lat
    | (map(.finished_ms - .started_ms)) as $run
    | ((map(.finished_ms) | max) - (map(.created_ms) | min)) as $span
    | "\($lat | median) \($lat | p90) \($run | median) \(length * $clip / ($span / 1000)) \($limit) \($cpu / ($span / 1000))"
  ' "$dir/jobs.jsonl"
}

# CPU seconds used by the server and its runners so far (live children, and those it reaped).
cpu_seconds() {  # PID
  local tck total=0 pid
  tck="$(getconf CLK_TCK)"
  total="$(awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat")"
  for pid in $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  awk -v t="$total" -v k="$tck" 'BEGIN { printf "%.2f", t / k }'
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "workload: $JOBS jobs of ${clip_s} s (tiny random model, beam 5, 1 thread a stream) on one simulated 8 GiB card"
for round in $(seq "$ROUNDS"); do
  [ "$ROUNDS" -eq 1 ] || echo "round $round (load average $(cut -d' ' -f1 /proc/loadavg))"
  read -r u_med u_p90 u_run u_tput u_lim u_cores <<<"$(run 0)"
  read -r a_med a_p90 a_run a_tput a_lim a_cores <<<"$(run auto)"
  printf '%-10s median latency %6d ms  p90 %6d ms  median run %6d ms  throughput %.2f audio s/s  limit %s  cores used %.2f\n' \
    unlimited "$u_med" "$u_p90" "$u_run" "$u_tput" "$u_lim" "$u_cores" \
    auto "$a_med" "$a_p90" "$a_run" "$a_tput" "$a_lim" "$a_cores"
  awk -v am="$a_med" -v um="$u_med" -v at="$a_tput" -v ut="$u_tput" -v ar="$a_run" -v ur="$u_run" \
    -v ac="$a_cores" -v uc="$u_cores" 'BEGIN {
    printf "auto / unlimited: median latency %.3f (target < 1), throughput %.3f (target >= 1.0), median run time %.3f, cores used %.3f, throughput per core used %.3f\n",
      am / um, at / ut, ar / ur, ac / uc, (at / ac) / (ut / uc) }'
done
