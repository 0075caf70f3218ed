"""Entry point of the GPU acceptance run's helpers, called by scripts/gpu-acceptance.sh:

  main.py prepare WORK --mode gpu|dry-run --out OUT --steno BIN --make-test-model BIN
                  --whisper-server BIN [--whisper-cli BIN] [--media DIR] [--simulate-gpus SPEC]
                  [--calibration-header FILE] [--vad-model FILE]
      generates the models and inputs every step shares, writes WORK/context.json
  main.py step N WORK        runs step N (1..9), writing OUT/steps/N.json as it goes
  main.py report WORK RC...  writes OUT/report.json and OUT/summary.txt from the step records
                             (RC: each step's exit status as the script saw it, "N=rc")
"""
import argparse
import array
import json
import os
import subprocess
import sys
import time
import traceback
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402

# The model of each role. On a GPU the real sizes; in a dry run (CPU runners on a simulated
# card, 2 busy cores) smaller ones, and the jobs of steps 3-6 use the smallest.
PRESETS = {
    "gpu": {"tiny": "tiny", "base": "base", "large": "large-v3"},
    "dry-run": {"tiny": "tiny-test", "base": "tiny", "large": "base"},
}
JOB_ROLE = {"gpu": "large", "dry-run": "tiny"}
SUBSTITUTIONS = [
    "models: tiny-test instead of tiny, tiny instead of base, base instead of large-v3 "
    "(load/unload, load times)",
    "jobs (steps 3-6) run on the tiny-test model instead of large-v3, on CPU runners that "
    "charge a simulated 80 GiB card",
    "\"nvidia-smi\" figures are the simulated card's own readings (steno gpus --json): step 1 "
    "compares steno with itself, and no CUDA context exists (step 8 measures 0)",
    "the other tenant of step 5 is `steno gpus simulate-external`, not a PyTorch process",
    "step 4: whisper-server runs on the CPU (-ng) beside CPU runners, greedy (beam 1) instead of "
    "beam 5, 1 s per level instead of 8",
    "runners skip their warm-up pass (--no-warmup), and use one thread per stream",
]


def prepare(args):
    os.makedirs(args.work, exist_ok=True)
    for sub in ("steps", "logs"):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
    ctx = lib.Context({
        "mode": args.mode, "out_dir": os.path.abspath(args.out),
        "work_dir": os.path.abspath(args.work),
        "steno": args.steno, "make_test_model": args.make_test_model,
        "whisper_server": args.whisper_server, "whisper_cli": args.whisper_cli,
        "simulate_spec": args.simulate_gpus, "calibration_header": args.calibration_header,
        "vad_model": args.vad_model,
        "models_dir": os.path.join(os.path.abspath(args.work), "models"),
        "job_role": JOB_ROLE[args.mode],
        "substitutions": SUBSTITUTIONS if args.mode == "dry-run" else [],
        "models": {}, "inputs": {}, "prepare": {}})
    os.makedirs(ctx.models_dir, exist_ok=True)
    t0 = time.monotonic()
    for role, preset in PRESETS[args.mode].items():
        path = os.path.join(ctx.models_dir, "acc-%s.bin" % role)
        t = time.monotonic()
        subprocess.run([args.make_test_model, "--preset", preset, "--seed", "1", "--out", path],
                       check=True, stdout=subprocess.DEVNULL, timeout=300)
        ctx.models[role] = {"name": "acc-" + role, "preset": preset, "path": path,
                            "generate_s": round(time.monotonic() - t, 2)}
    listed = subprocess.run([args.steno, "--models-dir", ctx.models_dir, "models", "list",
                             "--json"], check=True, capture_output=True, timeout=60)
    for m in json.loads(listed.stdout)["models"]:
        for role, info in ctx.models.items():
            if info["name"] == m["name"]:
                info.update({k: m.get(k) for k in ("file_bytes", "tensor_bytes", "n_mels",
                                                   "n_audio_state", "n_audio_layer",
                                                   "n_text_layer", "n_vocab")})
    ctx.prepare["models_s"] = round(time.monotonic() - t0, 2)
    ctx.inputs = make_inputs(ctx, args.media)
    ctx.prepare["total_s"] = round(time.monotonic() - t0, 2)
    ctx.save()
    print("prepared %s in %.1f s: models %s" % (
        ctx.work_dir, ctx.prepare["total_s"],
        ", ".join("%s=%s (%.0f MB)" % (r, m["preset"], (m.get("file_bytes") or 0) / 1e6)
                  for r, m in ctx.models.items())))


# ---- inputs ---------------------------------------------------------------------------------

RATE = 16000


def read_speech(media_dir):
    """16 kHz mono s16 samples of the bundle's speech.wav; a synthetic signal when there is
    none (random-weight models make garbage text of either)."""
    path = os.path.join(media_dir or "", "speech.wav")
    if media_dir and os.path.isfile(path):
        with wave.open(path) as w:
            if w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2:
                samples = array.array("h")
                samples.frombytes(w.readframes(w.getnframes()))
                return samples, path
    import math
    samples = array.array("h", (int(8000 * math.sin(2 * math.pi * (200 + 50 * (i // 4000)) *
                                                    i / RATE)) for i in range(RATE * 8)))
    return samples, None


def write_wav(path, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())


def make_inputs(ctx, media_dir):
    d = os.path.join(ctx.work_dir, "inputs")
    os.makedirs(d, exist_ok=True)
    speech, source = read_speech(media_dir)
    inputs = {"source": source or "synthetic (no speech.wav in the media dir)", "clips": []}
    # Eight different clips (the speech, each cut a little later), so a stream that answered
    # with another stream's text would show.
    for i in range(8):
        p = os.path.join(d, "clip%d.wav" % i)
        write_wav(p, speech[int(i * 0.25 * RATE):])
        inputs["clips"].append(p)
    inputs["bench"] = os.path.join(d, "bench.wav")
    write_wav(inputs["bench"], speech)
    inputs["bench_seconds"] = len(speech) / RATE
    # A long recording for the SIGTERM of step 6: still running when the signal comes.
    seconds = 180 if ctx.dry_run else 600
    long = array.array("h")
    while len(long) < seconds * RATE:
        long.extend(speech)
        long.extend(array.array("h", bytes(2 * RATE)))
    inputs["long"] = os.path.join(d, "long.wav")
    write_wav(inputs["long"], long[:seconds * RATE])
    inputs["long_seconds"] = seconds
    return inputs


# ---- steps ----------------------------------------------------------------------------------

def run_step(n, work):
    import steps
    ctx = lib.Context.load(work)
    number, name, title, fn = steps.STEPS[n - 1]
    step = lib.Step(ctx, number, name, title, int(os.environ.get("STEP_BUDGET_S", "0")))
    try:
        fn(ctx, step)
        step.finish()
    except Exception as e:  # the step's own failure, recorded; the script goes on
        step.note(traceback.format_exc()[-2000:])
        step.finish("%s: %s" % (type(e).__name__, e))
    finally:
        lib.stop_all_children()
    print("step %d %s: %s (%.1f s) %s" % (number, name, step.rec["status"], step.rec["wall_s"],
                                         step.rec.get("summary") or step.rec.get("error") or ""))
    return 0 if step.rec["status"] == "passed" else 1


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "step":
        sys.exit(run_step(int(sys.argv[2]), sys.argv[3]))
    if len(sys.argv) >= 2 and sys.argv[1] == "report":
        import report
        sys.exit(report.write(lib.Context.load(sys.argv[2]), sys.argv[3:]))
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["prepare"])
    p.add_argument("work")
    p.add_argument("--mode", choices=["gpu", "dry-run"], required=True)
    p.add_argument("--out", required=True)
    for b in ("steno", "make-test-model", "whisper-server"):
        p.add_argument("--" + b, required=True)
    p.add_argument("--whisper-cli", default="")
    p.add_argument("--media", default="")
    p.add_argument("--simulate-gpus", default="1x80GiB")
    p.add_argument("--calibration-header", default="")
    p.add_argument("--vad-model", default="")
    prepare(p.parse_args())


if __name__ == "__main__":
    main()
