#!/usr/bin/env python3
"""Start-up overhead of one model file: process start to first output, minus the steady forward.

Usage::

    python3 weights_tools/startup_time.py MODEL.gguf [--rounds 5] [--build build] [-t 2] -- [d2v-bench input options]
    e.g. ... seg.gguf -- --image-size 640;  ... text.gguf -- --tokens 128;  ... audio.gguf -- samples/seven.wav

Each round runs `d2v-bench -n 1 --warmup 0` (a fresh process: load + first forward) and times it
from the start to its JSON line, then `d2v-bench -n 3 --warmup 1` for the steady forward time,
interleaved so that both see the same machine. Overhead = start-to-output - steady forward; it
splits into the load (start-to-output - first forward) and the first call's extra time. The model
file should already be in the page cache (run it once before). Needs no Python packages.
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
    bench = [os.path.join(args.build, "d2v-bench"), "-m", args.model, "-t", str(args.threads)]
    overheads = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        proc = subprocess.Popen(bench + ["-n", "1", "--warmup", "0", *bench_args], stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        to_output = time.perf_counter() - t0
        if proc.wait() != 0 or not line:
            print(f"d2v-bench failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        first = json.loads(line)["median_ms"] / 1e3
        warm = subprocess.run(bench + ["-n", "3", "--warmup", "1", *bench_args], capture_output=True, text=True, check=True)
        steady = json.loads(warm.stdout)["median_ms"] / 1e3
        overheads.append(to_output - steady)
        print(f"start to output {to_output:.3f} s, first forward {first:.3f} s, steady forward {steady:.3f} s: "
              f"overhead {to_output - steady:.3f} s (load {to_output - first:.3f} s, first call +{first - steady:.3f} s)", flush=True)
    print(f"overhead median {statistics.median(overheads):.3f} s (range {min(overheads):.3f}-{max(overheads):.3f}) over "
          f"{args.rounds} rounds, {args.threads} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
