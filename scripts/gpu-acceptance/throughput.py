"""Step 4: aggregate throughput (audio seconds per wall second) of `steno serve` against upstream
whisper-server, the same model file, input, beam and threads, at 1, 4 and 8 clients.

The logic of bench/api_throughput.mjs (which bench/api_vs_whisper_server.sh runs on the CPU),
in Python because the GPU machine has no Node.js: both servers stay up and take turns level by
level, the order alternating; one request to each first checks that both return the same text
(the same decoding work, whitespace aside); each level starts with untimed requests (one per
client for steno, growing a stream per client; one for whisper-server, which serves one request
at a time whatever the clients: its warm-up would only cost device time), then every client
sends one request after another until the level's time is up and each sent its minimum; wall
time runs from the first request to the last response.
"""
import os
import socket
import threading

from lib import Server, Steno, http, multipart, now, wait_until

LEVELS = (1, 4, 8)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def beam(ctx):
    """The bench's (and whisper-cli's) default, beam 5 and best of 5, on a GPU; greedy in a dry
    run, where a CPU beam search would take most of the run's time."""
    return 1 if ctx.dry_run else 5


def start_whisper_server(ctx, model_path, threads):
    for _ in range(3):
        port = free_port()
        argv = [ctx.whisper_server, "--host", "127.0.0.1", "--port", str(port), "-m", model_path,
                "-t", str(threads), "-bs", str(beam(ctx)), "-bo", "5"]
        if ctx.dry_run:
            argv.append("-ng")  # beside CPU runners
        srv = Server("whisper-server", argv, os.path.join(ctx.out_dir, "logs", "step4-whisper-server.log"))
        srv.url = "http://127.0.0.1:%d" % port
        ok, _ = wait_until(lambda: srv.exited() or http("GET", srv.url + "/health", timeout=5).status == 200,
                           180, 0.1)
        if ok and not srv.exited():
            return srv
        srv.stop(grace_s=5)
        if not any("bind" in l for l in srv.lines):
            break
    raise RuntimeError("whisper-server did not become healthy: %s" % " | ".join(srv.lines[-8:]))


class Client:
    def __init__(self, kind, url, model_name, wav):
        with open(wav, "rb") as f:
            audio = f.read()
        fields = {"response_format": "json", "temperature": "0", "language": "en"}
        if kind == "steno":
            fields["model"] = model_name
            self.endpoint = url + "/v1/audio/transcriptions"
        else:
            self.endpoint = url + "/inference"
        self.body, self.headers = multipart(fields, "file", os.path.basename(wav), audio)
        self.kind = kind

    def once(self):
        r = http("POST", self.endpoint, self.body, self.headers, timeout=300)
        j = r.json()
        if r.status != 200 or not isinstance((j or {}).get("text"), str):
            raise RuntimeError("%s: HTTP %d %s" % (self.kind, r.status, r.body[:300]))
        return j["text"], r.ms


def measure(client, concurrency, seconds, min_requests, audio_s):
    errors = []

    def parallel(fn):
        threads = [threading.Thread(target=fn) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def warm():
        try:
            client.once()
        except Exception as e:
            errors.append(str(e))

    # One untimed request per client where the server has streams to grow (steno); one for
    # whisper-server, which serves one request at a time anyway.
    warmups = [threading.Thread(target=warm)
               for _ in range(concurrency if client.kind == "steno" else 1)]
    for t in warmups:
        t.start()
    for t in warmups:
        t.join()
    latencies = []
    lock = threading.Lock()
    t0 = now()

    def worker():
        n = 0
        while n < min_requests or now() - t0 < seconds:
            try:
                _, ms = client.once()
            except Exception as e:
                errors.append(str(e))
                return
            with lock:
                latencies.append(ms)
            n += 1

    parallel(worker)
    wall = now() - t0
    if errors:
        raise RuntimeError(errors[0])
    lat = sorted(latencies)
    return {"server": client.kind, "clients": concurrency, "requests": len(lat),
            "wall_s": round(wall, 3), "throughput": round(len(lat) * audio_s / wall, 3),
            "latency_ms": {"p50": round(lat[len(lat) // 2]), "max": round(lat[-1])}}


def run(ctx, st):
    m = ctx.model(ctx.job_role)
    wav, audio_s = ctx.inputs["bench"], ctx.inputs["bench_seconds"]
    threads = 1 if ctx.dry_run else min(4, os.cpu_count() or 1)
    seconds = 1 if ctx.dry_run else 8
    min_requests = 1
    st.figure("setup", {"model": m["preset"], "input_s": round(audio_s, 2), "beam": beam(ctx), "best_of": 5,
                        "threads": threads, "levels": list(LEVELS), "seconds_per_level": seconds})
    steno = Steno(ctx, 4, ["--beam-size", str(beam(ctx)), "--threads", str(threads), "--max-streams", "8"])
    whisper = start_whisper_server(ctx, m["path"], threads)
    clients = {"steno": Client("steno", steno.url, m["name"], wav),
               "whisper-server": Client("whisper-server", whisper.url, m["name"], wav)}
    texts = {k: c.once()[0].strip() for k, c in clients.items()}
    same = "".join(texts["steno"].split()) == "".join(texts["whisper-server"].split())
    st.figure("texts", texts)
    st.check("both servers return the same text (the same work)", same,
             "steno %r, whisper-server %r" % (texts["steno"][:120], texts["whisper-server"][:120]))
    results, ratios = [], {}
    kinds = ["steno", "whisper-server"]
    for i, c in enumerate(LEVELS):
        for kind in kinds if i % 2 == 0 else list(reversed(kinds)):
            results.append(measure(clients[kind], c, seconds, min_requests, audio_s))
            st.figure("results", results)
        s = next(r for r in results if r["server"] == "steno" and r["clients"] == c)
        w = next(r for r in results if r["server"] == "whisper-server" and r["clients"] == c)
        ratios[str(c)] = round(s["throughput"] / max(w["throughput"], 1e-9), 3)
        st.figure("ratios", ratios)
    st.check("every level measured on both servers", len(results) == 2 * len(LEVELS))
    steno.stop()
    whisper.stop()
    st.summary("steno / whisper-server at %s clients: %s" % (
        ",".join(str(c) for c in LEVELS), ", ".join("%.2f" % ratios[str(c)] for c in LEVELS)))
