#!/usr/bin/env bash
# Generates the test media at test time (nothing binary is committed): synthetic speech in every
# container steno reads, plus one file per kind of bad input.
# Usage: make_media.sh OUT_DIR
#
# Idempotent: a file that already exists is kept (each file is written to a temporary name and
# renamed, so an interrupted run never leaves a half-written file that a later run would keep).
#
#   speech.wav            espeak-ng, three sentences (~8 s), 16 kHz mono s16. The whisper-cli parity
#                         test feeds this exact file to both programs.
#   speech_60s.wav        ~60 s of speech (a longer passage, padded to exactly 60 s), 16 kHz mono s16.
#   speech_44k_stereo.wav the speech of speech.wav at 44.1 kHz, both channels equal.
#   speech.{mp3,flac,ogg,opus,m4a}   the same speech: mp3, flac, vorbis, opus, aac.
#   speech.{mp4,mkv,webm} a tiny video track plus the same speech (aac / vorbis / opus).
#   speech_streamed.webm  as written by a live recorder: no duration in the header.
#   speech.{g722,gsm}     raw G.722 (16 kHz) and raw GSM (8 kHz): headerless telephone formats that
#                         FFmpeg recognises only by the file name's extension.
#   speech_short.wav      the first 1.08 s of speech.wav: far shorter than a 30 s window.
#   not_media.txt         text.
#   video_only.mp4        a video track and no audio stream.
#   truncated.wav         speech.wav cut in half: its header still declares the full length.
#   empty.wav             a valid wav header and zero samples.
#   long.wav              20 s of a tone, for maximum-duration limits.
set -euo pipefail

out="${1:?usage: make_media.sh OUT_DIR}"
mkdir -p "$out"
ff=(ffmpeg -nostdin -hide_banner -loglevel error -y)

# gen NAME CMD...: unless OUT/NAME exists, runs CMD with a temporary output path appended as its
# last argument, then renames it into place. The temporary name keeps NAME's extension, so
# ffmpeg picks the container from it.
gen() {
  local name="$1"; shift
  [[ -e "$out/$name" ]] && return 0
  local tmp="$out/.partial.$$.$name"
  "$@" "$tmp"
  mv -f "$tmp" "$out/$name"
}

# --- speech -------------------------------------------------------------------------------------
speech_text="The quick brown fox jumps over the lazy dog. Steno turns speech into text on \
shared graphics cards. Every job gets its memory before it starts."

long_text="Speech recognition has changed a great deal over the last few years. Models that once \
needed a data centre now run on a single graphics card, and small ones run well on an ordinary \
laptop. The hard part of running them for many people at once is no longer the model itself. It \
is memory. A model that stays loaded holds its memory even when nobody is using it, and two jobs \
that start at the same moment can both ask for more than the card has. A good service admits work \
only when the memory for it exists, keeps popular models loaded while they are busy, and gives \
every byte back when they are idle. It should also tell its users what it is doing, how long \
their work will take, and why a file could not be read. This passage exists only to give the \
benchmark a minute of realistic speech to transcribe, so it keeps talking about nothing in \
particular until the minute is nearly over."

espeak_to_wav() {  # espeak_to_wav TEXT OUT: 16 kHz mono s16, plain 44-byte header
  local raw="$2.espeak.wav"
  espeak-ng -w "$raw" "$1"
  "${ff[@]}" -i "$raw" -ar 16000 -ac 1 -c:a pcm_s16le -bitexact -map_metadata -1 "$2"
  rm -f "$raw"
}
gen speech.wav espeak_to_wav "$speech_text"

sixty_seconds() {
  local raw="$1.espeak.wav"
  espeak-ng -s 150 -w "$raw" "$long_text"
  # Pad with silence (or cut) to exactly 60 s, so benchmark figures compare like with like.
  "${ff[@]}" -i "$raw" -af apad -t 60 -ar 16000 -ac 1 -c:a pcm_s16le -bitexact -map_metadata -1 "$1"
  rm -f "$raw"
}
gen speech_60s.wav sixty_seconds

src="$out/speech.wav"
enc() { "${ff[@]}" -i "$src" "$@"; }
# A small video track the length of the speech: tiny frames, few of them, fastest settings.
with_video() {
  "${ff[@]}" -f lavfi -i "color=c=navy:s=64x48:r=5" -i "$src" -map 0:v -map 1:a -shortest "$@"
}

gen speech_44k_stereo.wav enc -ar 44100 -ac 2 -c:a pcm_s16le
gen speech.mp3  enc -ar 44100 -ac 2 -c:a libmp3lame -b:a 96k
gen speech.flac enc -c:a flac
gen speech.ogg  enc -ar 22050 -c:a libvorbis -q:a 3
gen speech.opus enc -ar 48000 -c:a libopus -b:a 32k
gen speech.m4a  enc -ar 44100 -ac 2 -c:a aac -b:a 64k
gen speech.mp4  with_video -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -b:a 48k \
                -movflags +faststart
gen speech.mkv  with_video -c:v mpeg4 -q:v 10 -c:a libvorbis -q:a 2
gen speech.webm with_video -c:v libvpx -deadline realtime -cpu-used 8 -b:v 50k -c:a libopus -b:a 32k

# A live recorder (a browser's MediaRecorder, ffmpeg to a pipe) cannot seek back to write the
# duration: the header has none, so a probe must fall back to reading the stream.
streamed_webm() { enc -c:a libopus -b:a 32k -f webm - > "$1"; }
gen speech_streamed.webm streamed_webm

# Headerless: FFmpeg knows these only by the extension (an upload must keep its name's).
gen speech.g722 enc -ar 16000 -ac 1 -c:a g722
gen speech.gsm  enc -ar 8000 -ac 1 -c:a libgsm
# Shorter than one window: whisper.cpp's segment times can run past the end of such audio.
gen speech_short.wav enc -t 1.08 -c:a pcm_s16le -bitexact -map_metadata -1

# --- bad inputs ----------------------------------------------------------------------------------
not_media() { printf 'These are meeting notes, not a recording.\nNothing here is audio.\n' > "$1"; }
gen not_media.txt not_media

gen video_only.mp4 "${ff[@]}" -f lavfi -i "color=c=red:s=64x48:r=5:d=2" \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -an

truncate_half() {
  local size; size=$(stat -c %s "$src")
  head -c $((size / 2)) "$src" > "$1"
}
gen truncated.wav truncate_half

empty_wav() {
  "${ff[@]}" -f lavfi -i "anullsrc=r=16000:cl=mono" -frames:a 0 -c:a pcm_s16le -bitexact \
    -map_metadata -1 "$1"
}
gen empty.wav empty_wav

gen long.wav "${ff[@]}" -f lavfi -i "sine=frequency=440:sample_rate=16000:duration=20" \
    -c:a pcm_s16le -bitexact -map_metadata -1

echo "media ready in $out"
