#!/usr/bin/env bash
# A long synthetic recording with silences inserted at known places, for the VAD test and the
# long-form benchmarks: espeak-ng speech in six voices (several English accents, male and
# female, different speeds), each clip trimmed to its first and last sample above 1 % of full
# scale, laid out between exact digital silences.
# Usage: make_long_recording.sh OUT.wav SECONDS SILENT_PERCENT
#   SILENT_PERCENT 50: [silence][clip][silence][clip]...[silence], the silences (about 6 s to
#     30 s) adding up to the rest once the clips reach half of SECONDS.
#   SILENT_PERCENT 0: clips back to back with 0.4 s pauses, cut to SECONDS (a speech file).
# Writes OUT.wav (16 kHz mono s16, exactly SECONDS long) and OUT.wav.silences: one line per
# inserted silence, "START END" in seconds, exact to the sample. Idempotent: an existing OUT.wav
# with its .silences file is kept.
set -euo pipefail

out="${1:?usage: make_long_recording.sh OUT.wav SECONDS SILENT_PERCENT}"
seconds="${2:?seconds}"
silent_percent="${3:?silent percent}"
[[ -s "$out" && -f "$out.silences" ]] && exit 0
rate=16000
total=$((seconds * rate))

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

texts=(
  "Good morning, and welcome to the weekly planning meeting. We have three items on the agenda today, and the first one is the budget for the next quarter."
  "The river rises every spring when the snow melts in the mountains. Farmers along the valley have learned to plant their fields a little later than their grandparents did."
  "Please remember to lock the back door before you leave the office. The cleaning staff arrive at seven, and they have their own keys."
  "Our new model answers questions about the weather, the traffic and the opening hours of every shop in town. It still struggles with jokes, which is probably a good thing."
  "The train to the airport leaves from platform four every twenty minutes. Tickets can be bought on board, but they cost more than at the machine."
  "In the second half of the match the visiting team changed their tactics completely. They pressed high, won the ball back quickly and scored twice in ten minutes."
  "Bake the bread for forty minutes at two hundred degrees, then let it cool on a rack. Cutting it while it is still hot makes the crumb gummy."
  "The library will be closed on Monday for the public holiday. Books that are due that day can be returned on Tuesday without a late fee."
)
voices=(en-us en-gb en-gb-scotland en-us+f3 en-029 en-gb-x-rp+f4)
speeds=(150 165 140 175 155 160)

# clip I: texts I and I+3 (mod 8) in voice I mod 6, trimmed; prints its length in samples.
clip() {
  local i="$1" f="$work/clip$1.wav"
  espeak-ng -v "${voices[i % 6]}" -s "${speeds[i % 6]}" -w "$work/raw.wav" \
    "${texts[i % 8]} ${texts[(i + 3) % 8]}"
  sox -V1 -G -D "$work/raw.wav" -r "$rate" -c 1 -b 16 "$f" silence 1 1s 1% reverse silence 1 1s 1% reverse
  soxi -s "$f"
}
silence() {  # silence NAME SAMPLES
  sox -r "$rate" -c 1 -n -b 16 "$work/$1.wav" trim 0 "$2s"
}

parts=()
: > "$work/silences"
if [[ "$silent_percent" -eq 0 ]]; then
  pause=$((rate * 4 / 10))
  silence pause "$pause"
  have=0 i=0
  while ((have < total)); do
    n="$(clip "$i")"
    parts+=("$work/clip$i.wav" "$work/pause.wav")
    have=$((have + n + pause)) i=$((i + 1))
  done
  sox "${parts[@]}" "$work/all.wav"
  sox "$work/all.wav" "$work/out.wav" trim 0 "${total}s"
else
  want_speech=$((total * (100 - silent_percent) / 100))
  lens=() have=0 i=0
  while ((have < want_speech)); do
    n="$(clip "$i")"
    lens+=("$n")
    have=$((have + n)) i=$((i + 1))
  done
  # One silence before each clip and one after the last, weighted 1..5 so lengths vary; the
  # last takes what rounding left.
  weights=(2 5 1 3 4 1 5 2 3 1 4 2)
  gaps=$((${#lens[@]} + 1)) quiet=$((total - have)) sum=0
  for ((g = 0; g < gaps; g++)); do sum=$((sum + weights[g % 12])); done
  at=0 used=0
  for ((g = 0; g < gaps; g++)); do
    if ((g == gaps - 1)); then n=$((quiet - used)); else n=$((quiet * weights[g % 12] / sum)); fi
    silence "gap$g" "$n"
    parts+=("$work/gap$g.wav")
    awk -v a="$at" -v b="$((at + n))" -v r="$rate" 'BEGIN { printf "%.6f %.6f\n", a / r, b / r }' \
      >> "$work/silences"
    at=$((at + n)) used=$((used + n))
    if ((g < gaps - 1)); then
      parts+=("$work/clip$g.wav")
      at=$((at + lens[g]))
    fi
  done
  sox "${parts[@]}" "$work/out.wav"
fi
[[ "$(soxi -s "$work/out.wav")" -eq "$total" ]] || { echo "length mismatch" >&2; exit 1; }
mv -f "$work/silences" "$out.silences"
mv -f "$work/out.wav" "$out"
