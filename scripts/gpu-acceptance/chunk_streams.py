"""Step 9 (run it with --steps 9; not in the default run, whose steps fill one call's time):
latency of one long recording through `steno serve` with chunking_strategy=auto, the job's
chunks on 4 streams against 1 (bench/chunk_streams.sh gpu, where the machine has no FFmpeg,
espeak-ng, curl or bc: the input is the run's speech.wav repeated with 1 s pauses, as step 6's).

On a GPU: the large-v3-size model, 600 s, `--chunk-streams 4 --max-streams 4` against
`--chunk-streams 1 --max-streams 1` (the issue's target: at least 3x faster). In a dry run: the
job model on CPU runners of the simulated card, 60 s, 2 streams against 1 (it checks the path).
Each server gets one untimed request first (the runner loads and grows its streams), then one
timed one. Needs the Silero VAD model (ggml-silero-v6.2.0.bin: SILERO, beside the script in the
bundle, or ../shared/models beside the repository), linked into a models dir of the step's own
so that no other step runs with VAD.
"""
import array
import os
import wave

from lib import Steno, http, multipart, now


def long_input(ctx, seconds):
    """The step's recording: the prepared long one (speech and 1 s pauses), cut to `seconds`."""
    path = os.path.join(ctx.step_dir(9), "long%d.wav" % seconds)
    with wave.open(ctx.inputs["long"]) as w:
        samples = array.array("h")
        samples.frombytes(w.readframes(min(w.getnframes(), seconds * w.getframerate())))
        rate = w.getframerate()
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path, len(samples) / rate


def transcribe_chunked(s, model, path, timeout):
    with open(path, "rb") as f:
        audio = f.read()
    body, hdrs = multipart({"model": model, "language": "en", "temperature": "0",
                            "chunking_strategy": "auto", "response_format": "json"},
                           "file", os.path.basename(path), audio)
    r = http("POST", s.url + "/v1/audio/transcriptions", body, hdrs, timeout=timeout)
    if r.status != 200:
        raise RuntimeError("transcription: HTTP %d %s" % (r.status, r.body[:300]))
    return r


def latency(ctx, st, models_dir, model, path, streams, extra):
    """Starts a server whose jobs' chunks run on `streams` streams; returns (seconds of the timed
    request, its text, the most streams a runner of the model had)."""
    # The streams are what is measured, not the learned compute limit: memory alone decides.
    s = Steno(ctx, 9, ["--models-dir", models_dir, "--chunk-streams", str(streams),
                       "--max-streams", str(streams), "--beam-size", "1",
                       "--temperature-inc", "0", "--max-concurrency-per-device", "0"] + extra,
              tag="-%d" % streams)
    try:
        transcribe_chunked(s, model, path, 900)  # untimed: loads the runner, grows its streams
        t0 = now()
        r = transcribe_chunked(s, model, path, 900)
        seconds = now() - t0
        runners = s.runners(model)
        st.figure("runners_%d_streams" % streams,
                  [{k: x.get(k) for k in ("device", "streams", "jobs_done")} for x in runners])
        most = max([x.get("streams", 0) for x in runners] or [0])
        return seconds, (r.json() or {}).get("text", ""), most
    finally:
        s.stop(grace_s=30)


def run(ctx, st):
    vad = ctx.vad_model
    if not vad or not os.path.isfile(vad):
        raise RuntimeError("no Silero VAD model (ggml-silero-v6.2.0.bin): set SILERO, or put it "
                           "beside gpu-acceptance.sh")
    m = ctx.model(ctx.job_role)
    models_dir = os.path.join(ctx.step_dir(9), "models")
    os.makedirs(models_dir, exist_ok=True)
    for src, name in ((m["path"], os.path.basename(m["path"])), (vad, "ggml-silero-v6.2.0.bin")):
        link = os.path.join(models_dir, name)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(src), link)
    many, seconds = (2, 60) if ctx.dry_run else (4, 600)
    path, audio_s = long_input(ctx, seconds)
    st.figure("input", {"seconds": round(audio_s, 2), "model": m["preset"], "streams": many})
    a, text_many, grown = latency(ctx, st, models_dir, m["name"], path, many, [])
    b, text_one, _ = latency(ctx, st, models_dir, m["name"], path, 1, [])
    speedup = b / a if a > 0 else 0
    st.figure("latency_s", {str(many): round(a, 3), "1": round(b, 3)})
    st.figure("speedup", round(speedup, 3))
    st.figure("same_text", text_many == text_one)
    st.check("both runs transcribed the recording", bool(text_many) and bool(text_one))
    st.check("the job's chunks ran on %d streams of one runner" % many, grown == many,
             "%d streams" % grown)
    if ctx.dry_run:
        st.check("the same text on %d streams as on 1" % many, text_many == text_one)
    else:
        st.check("%d streams at least 3x faster than 1 (the issue's target)" % many,
                 speedup >= 3, "%.2fx" % speedup)
    st.summary("%.0f s of speech: %d streams %.2f s, 1 stream %.2f s: %.2fx" % (
        audio_s, many, a, b, speedup))
