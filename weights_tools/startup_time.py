#!/usr/bin/env python3
"""Start-up overhead of one model file: process start to first output, minus the steady forward.

Usage::

    python3 weights_tools/startup_time.py MODEL.gguf [--rounds 5] [--build build] [-t 2] -- [d2v-bench input options]
    e.g. ... seg.gguf -- --image-size 640;  ... text.gguf -- --tokens 128;  ... audio.gguf -- samples/seven.wav

Each round starts a fresh `d2v-bench --serve --warmup 0`: the time from the start to its
"ready" line is the load; it then runs one forward (the first call, with its one-time costs) and
three more (the steady forward), all in the same process, so that the difference is not blurred by
one process running faster than another. Overhead = load + first forward - steady forward (the
median of the three). The model file should already be in the page cache (run it once before).
Needs no Python packages.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("-t", "--threads", type=int, default=2)
    argv = sys.argv[1:]
    bench_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    bench = [os.path.join(args.build, "d2v-bench"), "-m", args.model, "-t", str(args.threads), "--serve", "--warmup", "0"]
    overheads = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        proc = subprocess.Popen(bench + bench_args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = proc.stdout.readline()
        load = time.perf_counter() - t0
        if not ready or not json.loads(ready).get("ready"):
            proc.kill()
            print(f"d2v-bench did not get ready: {ready!r}", file=sys.stderr)
            return 1
        times = []
        for runs in (1, 3):
            proc.stdin.write(f"{runs}\n")
            proc.stdin.flush()
            times.append(json.loads(proc.stdout.readline())["ms"])
        proc.stdin.close()
        proc.stdout.read()
        if proc.wait() != 0:
            print(f"d2v-bench failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        first, steady = times[0][0] / 1e3, statistics.median(times[1]) / 1e3
        overheads.append(load + first - steady)
        print(f"load {load:.3f} s, first forward {first:.3f} s, steady forward {steady:.3f} s: "
              f"overhead {overheads[-1]:.3f} s (load + first call's extra {first - steady:+.3f} s)", flush=True)
    print(f"overhead median {statistics.median(overheads):.3f} s (range {min(overheads):.3f}-{max(overheads):.3f}) over "
          f"{args.rounds} rounds, {args.threads} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
