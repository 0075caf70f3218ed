#!/usr/bin/env bash
# Wall time of `steno transcribe` against upstream `whisper-cli` on the same 60 s input, model and
# threads, run alternately. Prints both means and medians and their ratio (target: steno /
# whisper-cli <= 1.03, of the means).
#   bench/transcribe_vs_whisper_cli.sh [PRESET] [RUNS]   (PRESET of make_test_model, default base)
set -euo pipefail
BUILD="${BUILD:-build}"
preset="${1:-base}"
runs="${2:-5}"
threads="${THREADS:-$(nproc)}"
work="$BUILD/bench-data"
mkdir -p "$work"

input="$work/speech_60s.wav"
if [ ! -f "$input" ]; then
  "$(dirname "$0")/../tests/support/make_media.sh" "$work/media" >/dev/null
  cp "$work/media/speech_60s.wav" "$input"
fi
model="$work/ggml-$preset-random.bin"
[ -f "$model" ] || "$BUILD/make_test_model" --preset "$preset" --seed 3 --out "$model" >/dev/null
cli="$(cat "$BUILD/whisper-prefix")/bin/whisper-cli"

common_steno="--model $model --language en --threads $threads --beam-size 1 --temperature-inc 0 --format txt"
common_cli="-m $model -l en -t $threads -bs 1 -tpi 0 -np"
# Both must do the same work: check that they produce the same segments before timing them.
"$BUILD/steno" transcribe $common_steno --format json "$input" > "$work/steno.json"
$cli $common_cli -oj -of "$work/whisper-cli" -f "$input" >/dev/null
same="$(jq -n --slurpfile a "$work/steno.json" --slurpfile b "$work/whisper-cli.json" \
  '[$a[0].segments[].text] == [$b[0].transcription[].text]')"
echo "same segments from both: $same ($(jq '.segments|length' "$work/steno.json") segments)"
[ "$same" = "true" ] || { echo "outputs differ: the timing would compare different work" >&2; exit 1; }

echo "input: $input ($(soxi -D "$input") s), model: $preset (random weights), threads: $threads, runs: $runs"
# The two alternate run by run (steno first in odd rounds, whisper-cli first in even ones) after a
# warm-up of each: a machine whose speed drifts during the benchmark (a shared host) slows both
# alike, where timing all of one and then all of the other would charge the drift to one side.
steno_cmd=("$BUILD/steno" transcribe $common_steno "$input")
cli_cmd=($cli $common_cli -f "$input")
wall_ms() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
wall_ms "${steno_cmd[@]}" >/dev/null
wall_ms "${cli_cmd[@]}" >/dev/null
: > "$work/steno.ms"
: > "$work/whisper-cli.ms"
for ((i = 1; i <= runs; i++)); do
  if ((i % 2)); then
    wall_ms "${steno_cmd[@]}" >> "$work/steno.ms"
    wall_ms "${cli_cmd[@]}" >> "$work/whisper-cli.ms"
  else
    wall_ms "${cli_cmd[@]}" >> "$work/whisper-cli.ms"
    wall_ms "${steno_cmd[@]}" >> "$work/steno.ms"
  fi
done
# mean and median (ms) of a file of one figure per line
stats() { sort -n "$1" | awk '{ v[NR] = $1; s += $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print s / NR, m }'; }
read -r steno_mean steno_median < <(stats "$work/steno.ms")
read -r cli_mean cli_median < <(stats "$work/whisper-cli.ms")
awk -v sm="$steno_mean" -v cm="$cli_mean" -v sd="$steno_median" -v cd="$cli_median" 'BEGIN {
  printf "steno mean %.3f s (median %.3f), whisper-cli mean %.3f s (median %.3f), ratio steno/whisper-cli = %.3f (of medians %.3f)\n",
    sm / 1000, sd / 1000, cm / 1000, cd / 1000, sm / cm, sd / cd }'
