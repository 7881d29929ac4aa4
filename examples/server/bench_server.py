#!/usr/bin/env python3
"""Load generator for d2v-server (standard library only): requests/s and p50/p99 latency at each
concurrency level, every client on its own keep-alive connection.

  python3 examples/server/bench_server.py --port 8080 --audio jfk.wav -c 1,4,16 -n 8
  python3 examples/server/bench_server.py --port 8080 --tokens 128 -c 1,4,16 -n 20

Compare concurrency 1 with the engine alone (d2v-bench, same threads) for the server's overhead.
"""
import argparse
import http.client
import json
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--audio", help="POST this file to /v1/audio/transcriptions")
    ap.add_argument("--tokens", type=int, help="POST a text of this many tokens to /embed")
    ap.add_argument("-c", "--concurrency", default="1,4,16")
    ap.add_argument("-n", "--per-client", type=int, default=5, help="requests per client at each level")
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
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
