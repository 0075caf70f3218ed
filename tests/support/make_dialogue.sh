#!/usr/bin/env bash
# A synthesised dialogue of about 60 s for the live-caption tests and benchmark (issue 19):
# short sentences in six espeak-ng voices taking turns, each clip trimmed to its first and last
# sample above 1 % of full scale, laid out between exact digital silences of 1.2 to 2.4 s (well
# over the 500 ms that ends an utterance under OpenAI's server_vad defaults), after 1 s of silence
# and before 1.5 s of it.
# Usage: make_dialogue.sh OUT_DIR
# Writes OUT_DIR/dialogue-16k.wav and OUT_DIR/dialogue-24k.wav (mono s16; the same timeline: the
# 24 kHz file is the 16 kHz one resampled) and OUT_DIR/dialogue.json:
#   {"duration_ms": N, "utterances": [{"start_ms", "end_ms", "voice", "text"}, ...]}
# with each clip's bounds exact to the 16 kHz sample (in ms, as fractions). Idempotent: an
# existing dialogue.json (written last) means the set is complete and is kept.
set -euo pipefail

out="${1:?usage: make_dialogue.sh OUT_DIR}"
[[ -s "$out/dialogue.json" && -s "$out/dialogue-16k.wav" && -s "$out/dialogue-24k.wav" ]] && exit 0
mkdir -p "$out"
rate=16000

work="$(mktemp -d "$out/.dialogue.XXXXXX")"
trap 'rm -rf "$work"' EXIT

texts=(
  "Good morning everyone and thank you for joining the call today"
  "Thanks for having me it is good to be here"
  "Let us start with the budget for the next quarter"
  "The numbers look better than we expected last month"
  "Sales in the north went up by almost twenty percent"
  "That is great news for the whole team"
  "What about the new office that opens in the spring"
  "The builders say the roof will be finished in April"
  "Then we can move the first people in by early May"
  "Please send me the plans before the end of the week"
  "I will put them in the shared folder this afternoon"
  "One more thing the train to the airport leaves every twenty minutes"
  "Good to know I will take the early one on Friday"
  "Thank you all and see you next week"
)
voices=(en-us en-gb en-gb-scotland en-us+f3 en-029 en-gb-x-rp+f4)
speeds=(150 165 140 175 155 160)
pauses_ms=(1200 1800 1400 2200 1600 2400 1300 2000 1500 1700 2300 1400 1900)

silence() {  # silence FILE MS
  sox -r "$rate" -c 1 -n -b 16 "$1" trim 0 "$(($2 * rate / 1000))s"
}

parts=()
silence "$work/lead.wav" 1000
parts+=("$work/lead.wav")
at=$rate  # samples so far
json="$work/utterances"
: > "$json"
for ((i = 0; i < ${#texts[@]}; i++)); do
  voice="${voices[i % 6]}"
  espeak-ng -v "$voice" -s "${speeds[i % 6]}" -w "$work/raw.wav" "${texts[i]}"
  sox -V1 -G -D "$work/raw.wav" -r "$rate" -c 1 -b 16 "$work/clip$i.wav" \
    silence 1 1s 1% reverse silence 1 1s 1% reverse
  n="$(soxi -s "$work/clip$i.wav")"
  parts+=("$work/clip$i.wav")
  [[ -s "$json" ]] && printf ',\n' >> "$json"
  awk -v a="$at" -v b="$((at + n))" -v r="$rate" -v v="$voice" -v t="${texts[i]}" \
    'BEGIN { printf "    {\"start_ms\": %.4f, \"end_ms\": %.4f, \"voice\": \"%s\", \"text\": \"%s\"}", a * 1000 / r, b * 1000 / r, v, t }' \
    >> "$json"
  at=$((at + n))
  if ((i < ${#pauses_ms[@]})); then gap="${pauses_ms[i]}"; else gap=1500; fi
  silence "$work/gap$i.wav" "$gap"
  parts+=("$work/gap$i.wav")
  at=$((at + gap * rate / 1000))
done
sox "${parts[@]}" "$work/dialogue-16k.wav"
[[ "$(soxi -s "$work/dialogue-16k.wav")" -eq "$at" ]] || { echo "make_dialogue: length mismatch" >&2; exit 1; }
sox -V1 "$work/dialogue-16k.wav" -r 24000 "$work/dialogue-24k.wav"
{
  printf '{\n  "duration_ms": %d,\n  "utterances": [\n' "$((at * 1000 / rate))"
  cat "$json"
  printf '\n  ]\n}\n'
} > "$work/dialogue.json"
mv -f "$work/dialogue-16k.wav" "$work/dialogue-24k.wav" "$out/"
mv -f "$work/dialogue.json" "$out/dialogue.json"
