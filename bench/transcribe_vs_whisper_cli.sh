#!/usr/bin/env bash
# Wall time of `steno transcribe` against upstream `whisper-cli` on the same 60 s input, model and
# threads. Prints both means and their ratio (target: steno / whisper-cli <= 1.03).
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
hyperfine --warmup 1 --runs "$runs" --export-json "$work/result.json" \
  -n steno "$BUILD/steno transcribe $common_steno $input" \
  -n whisper-cli "$cli $common_cli -f $input"
jq -r '.results as $r | "steno mean \($r[0].mean|tostring) s, whisper-cli mean \($r[1].mean|tostring) s, ratio steno/whisper-cli = \(($r[0].mean / $r[1].mean * 1000 | round) / 1000)"' "$work/result.json"
