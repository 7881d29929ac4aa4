#!/usr/bin/env python3
"""Load generator for d2v-server (standard library only): requests/s and p50/p99 latency at each
concurrency level, every client on its own keep-alive connection.

Against a running server:

  python3 examples/server/bench_server.py --port 8080 --audio jfk.wav -c 1,4,16 -n 8
  python3 examples/server/bench_server.py --port 8080 --tokens 128 -c 1,4,16 -n 20

The whole benchmark table of the README (one command; about 4-6 min on an idle 2-core machine):

  python3 examples/server/bench_server.py --full --build build

--full makes base-size models once (Transformers' default configs, seeded random weights: a CTC
model and a text base model, in --models, default /tmp/d2v-server-bench; this step needs the
reference venv, --ref-python, default ~/.cache/d2v-ref/bin/python), times the engine alone
(`d2v-bench -t 1`) on jfk.wav (../shared/data/speech/jfk.wav) and on 128 tokens, then starts
`d2v-server --workers 2 -t 1 --chunk 0` on each model (127.0.0.1, a free port) and measures
concurrency 1, 4 and 16: CTC on jfk.wav (1 x 4, 4 x 3, 16 x 2 requests) and text /embed of 128
tokens (1 x 20, 4 x 10, 16 x 4). It prints each level as JSON, then the markdown table. The
server's overhead at c=1 is client latency minus the queue and run times the server reports in
its Server-Timing header (so machine load does not enter it), also as a share of the p50; the
table gives p50 - engine median too (that one does move with load). p99 over 8-64 requests is
close to the maximum. `--full --tiny` runs the same on the tiny test fixtures (32 tokens) in
seconds, to check the script itself.
"""
import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid


def multipart(path):
    boundary = uuid.uuid4().hex
    data = open(path, "rb").read()
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(conn, route, body, ctype):
    conn.request("POST", route, body=body, headers={"Content-Type": ctype})
    r = conn.getresponse()
    payload = r.read()
    timing = dict(part.strip().split(";dur=") for part in r.getheader("Server-Timing", "").split(",") if ";dur=" in part)
    return r.status, payload, {k: float(v) / 1e3 for k, v in timing.items()}


def text_of_tokens(host, port, tokens):
    """A text that /tokenize turns into exactly `tokens` ids (<s> and </s> included)."""
    conn = http.client.HTTPConnection(host, port, timeout=600)

    def count(text):
        status, payload, _ = post(conn, "/tokenize", json.dumps({"inputs": text}).encode(), "application/json")
        assert status == 200, payload
        return len(json.loads(payload)[0])

    words = "the quick brown fox jumps over the lazy dog".split()
    make = lambda n: " ".join(words[i % len(words)] for i in range(n))
    lo, hi = 1, tokens  # the most words whose text stays within `tokens`
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if count(make(mid)) <= tokens else (lo, mid - 1)
    text = make(lo)
    for _ in range(tokens):  # top up with single-token pieces
        n = count(text)
        if n == tokens:
            return text
        text += " a" if n < tokens else ""
    raise SystemExit("could not build a text of %d tokens" % tokens)


def level(host, port, route, body, ctype, clients, per_client):
    latencies, overheads, runs, statuses, lock = [], [], [], {}, threading.Lock()

    def run():
        conn = http.client.HTTPConnection(host, port, timeout=600)
        for _ in range(per_client):
            t0 = time.perf_counter()
            status, _, timing = post(conn, route, body, ctype)
            dt = time.perf_counter() - t0
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(dt)
                    runs.append(timing.get("run", 0.0))
                    # everything but the run itself and the wait for a busy worker: HTTP, parsing, hand-off
                    overheads.append(dt - timing.get("run", 0.0) - timing.get("queue", 0.0))

    threads = [threading.Thread(target=run) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    def pick(xs, q):
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3, 2) if xs else float("nan")
    return {"concurrency": clients, "requests": clients * per_client, "statuses": statuses,
            "rps": round(len(latencies) / wall, 3), "p50_ms": pick(latencies, 0.5), "p99_ms": pick(latencies, 0.99),
            "run_p50_ms": pick(runs, 0.5), "overhead_p50_ms": pick(overheads, 0.5),
            "overhead_pct_of_p50": round(100 * pick(overheads, 0.5) / pick(latencies, 0.5), 2) if latencies else None}


HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Base-size random-weight checkpoints (Transformers' default configs) for --full; run by the reference venv.
MAKE_MODELS = r"""
import json, os, shutil, sys, torch
from transformers import (Data2VecAudioConfig, Data2VecAudioForCTC, Data2VecTextConfig, Data2VecTextModel,
                          Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor)
out, tokenizer_dir = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
a = os.path.join(out, "audio-ctc"); os.makedirs(a, exist_ok=True)
Data2VecAudioForCTC(Data2VecAudioConfig()).save_pretrained(a)
vocab = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list("ETAONIHSRDLUMWCFGYPBVK'XJQZ")
json.dump({t: i for i, t in enumerate(vocab)}, open(os.path.join(a, "vocab.json"), "w"))
Wav2Vec2CTCTokenizer(os.path.join(a, "vocab.json")).save_pretrained(a)
Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(a)
t = os.path.join(out, "text-base"); os.makedirs(t, exist_ok=True)
Data2VecTextModel(Data2VecTextConfig()).save_pretrained(t)
for f in os.listdir(tokenizer_dir):
    shutil.copy(os.path.join(tokenizer_dir, f), t)
"""


def base_models(a):
    """The two base-size GGUFs in a.models, made (once) if missing."""
    audio, text = os.path.join(a.models, "audio-ctc.gguf"), os.path.join(a.models, "text-base.gguf")
    if os.path.exists(audio) and os.path.exists(text):
        return audio, text
    os.makedirs(a.models, exist_ok=True)
    print(f"making base-size models in {a.models} ...", file=sys.stderr, flush=True)
    subprocess.run([a.ref_python, "-c", MAKE_MODELS, a.models, os.path.join(REPO, "tests/fixtures/text/tokenizer")], check=True)
    for name, gguf in (("audio-ctc", audio), ("text-base", text)):
        subprocess.run([a.ref_python, os.path.join(REPO, "weights_tools/convert.py"), os.path.join(a.models, name), gguf],
                       check=True, stdout=subprocess.DEVNULL)
    return audio, text


def engine_ms(a, model, runs, extra):
    out = subprocess.run([os.path.join(a.build, "d2v-bench"), "-m", model, "-t", "1", "-n", str(runs)] + extra,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_ms"]


class Server:
    """d2v-server on 127.0.0.1, a free port; stopped with SIGTERM (it finishes what it accepted)."""

    def __init__(self, a, model):
        self.proc = subprocess.Popen([os.path.join(a.build, "d2v-server"), "-m", model, "--workers", "2", "-t", "1", "--chunk", "0",
                                      "--port", "0", "--quiet", "--timeout", "3600", "--max-queue", "256"],
                                     stderr=subprocess.PIPE, text=True)
        self.port = None
        for line in self.proc.stderr:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            self.port = int(m.group(1)) if m else self.port
            if " ready (" in line:
                return
        raise SystemExit("d2v-server did not start: " + model)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def full(a):
    t_start, load_before = time.perf_counter(), os.getloadavg()[0]
    jfk = os.path.join(REPO, "..", "shared", "data", "speech", "jfk.wav")
    if a.tiny:
        audio, text, tokens = (os.path.join(REPO, "tests/fixtures/audio/ctc/model.gguf"),
                               os.path.join(REPO, "tests/fixtures/text/model_absolute/model.gguf"), 32)
    else:
        (audio, text), tokens = base_models(a), 128
    # case: (label, model, engine runs, d2v-bench args, requests per client at c = 1, 4, 16)
    cases = [("CTC `jfk.wav` (11 s)", audio, 3, [jfk], (4, 3, 2)),
             (f"text `/embed`, {tokens} tokens", text, 10, ["--tokens", str(tokens)], (20, 10, 4))]
    rows = []
    for label, model, runs, bench_args, per_client in cases:
        engine = engine_ms(a, model, runs, bench_args)
        server = Server(a, model)
        try:
            if model == audio:
                route, (body, ctype) = "/v1/audio/transcriptions", multipart(jfk)
            else:
                route, ctype = "/embed", "application/json"
                body = json.dumps({"inputs": text_of_tokens("127.0.0.1", server.port, tokens)}).encode()
            level("127.0.0.1", server.port, route, body, ctype, 1, 1)  # warm-up
            levels = []
            for c, n in zip((1, 4, 16), per_client):
                r = level("127.0.0.1", server.port, route, body, ctype, c, n)
                r["case"], r["engine_median_ms"] = label, engine
                print(json.dumps(r), flush=True)
                levels.append(r)
        finally:
            server.stop()
        rows.append((label, engine, levels))
    ms = lambda x: f"{x / 1e3:.2f} s" if x >= 1000 else f"{x:.1f} ms"
    print(f"\n{'tiny fixture models (--tiny)' if a.tiny else 'base-size models'}, server --workers 2 -t 1 --chunk 0, "
          f"engine d2v-bench -t 1; 1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; total {time.perf_counter() - t_start:.0f} s\n")
    print("| | engine alone (median) | c=1: req/s, p50 | c=4: req/s, p50 / p99 | c=16: req/s, p50 / p99 | overhead at c=1 (Server-Timing) | c=1 p50 - engine |")
    print("|---|---|---|---|---|---|---|")
    for label, engine, (l1, l4, l16) in rows:
        bad = [f"c={l['concurrency']}: {l['statuses']}" for l in (l1, l4, l16) if set(l["statuses"]) != {200}]
        print(f"| {label} | {ms(engine)} | {l1['rps']:.2f}, {ms(l1['p50_ms'])} | {l4['rps']:.2f}, {ms(l4['p50_ms'])} / {ms(l4['p99_ms'])} | "
              f"{l16['rps']:.2f}, {ms(l16['p50_ms'])} / {ms(l16['p99_ms'])} | {l1['overhead_p50_ms']:.2f} ms ({l1['overhead_pct_of_p50']} %) | "
              f"{l1['p50_ms'] - engine:+.1f} ms ({100 * (l1['p50_ms'] - engine) / engine:+.1f} %) |" + (" not 200: " + "; ".join(bad) if bad else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--audio", help="POST this file to /v1/audio/transcriptions")
    ap.add_argument("--tokens", type=int, help="POST a text of this many tokens to /embed")
    ap.add_argument("-c", "--concurrency", default="1,4,16")
    ap.add_argument("-n", "--per-client", type=int, default=5, help="requests per client at each level")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="the README's whole table: models, engine, server at c = 1, 4, 16")
    ap.add_argument("--tiny", action="store_true", help="with --full: the tiny test fixtures instead of base-size models")
    ap.add_argument("--build", default=os.path.join(REPO, "build"), help="with --full: where d2v-server and d2v-bench are")
    ap.add_argument("--models", default="/tmp/d2v-server-bench", help="with --full: base-size models, made here once")
    ap.add_argument("--ref-python", default=os.path.expanduser("~/.cache/d2v-ref/bin/python"),
                    help="with --full: Python with torch + transformers, to make the base-size models")
    a = ap.parse_args()
    if a.full:
        return full(a)
    if a.port is None:
        raise SystemExit("give --port (a running server) or --full")
    if a.audio:
        route, (body, ctype) = "/v1/audio/transcriptions", multipart(a.audio)
    elif a.tokens:
        route, ctype = "/embed", "application/json"
        body = json.dumps({"inputs": text_of_tokens(a.host, a.port, a.tokens)}).encode()
    else:
        raise SystemExit("give --audio FILE or --tokens N")
    level(a.host, a.port, route, body, ctype, 1, a.warmup)
    for c in (int(x) for x in a.concurrency.split(",")):
        r = level(a.host, a.port, route, body, ctype, c, a.per_client)
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
