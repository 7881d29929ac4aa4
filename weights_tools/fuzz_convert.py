#!/usr/bin/env python3
"""Mutation fuzzing of the converter's readers: any exception other than the converter's own
(ConvertError / TorchLoadError), a MemoryError, or an input taking more than --slow CPU seconds is
a finding.  Needs only weights_tools/requirements.txt.

    python3 weights_tools/fuzz_convert.py [--seconds S | --iterations N] [--targets a,b] [--seed K]
                                          [--findings DIR]

Targets (seed inputs are valid files made by convert_test_util's writers):
  st_header  safetensors header JSON -> parse_safetensors_header + safetensors_layout (in memory)
  st_file    whole .safetensors file -> read_safetensors (one temp file, rewritten per input)
  pickle     data.pkl -> bounds check, restricted unpickler, tensor materialisation (in memory)
  zip        whole pytorch_model.bin -> load_torch_state_dict
  h5         whole tf_model.h5 -> read_tf_h5 (HDF5's own parser included)
Time is shared equally among the chosen targets.  Exit status 1 when anything was found.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
import traceback

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint_io  # noqa: E402
import safe_torch_pickle  # noqa: E402
from convert_test_util import safetensors_bytes, torch_pickle_bytes, write_torch_zip  # noqa: E402

EXPECTED = (checkpoint_io.ConvertError, safe_torch_pickle.TorchLoadError)
MEMORY_LIMIT = 3 * 1024 ** 3
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, ord("["), ord("{"), ord('"'), ord("9"), ord("-"), ord(",")]
INTERESTING_TEXT = [b"-1", b"0", b"4294967296", b"18446744073709551616", b"1e309", b"[[[[[[", b'"F32"',
                    b'"BF16"', b"null", b"[]", b"{}", b'"shape":[2147483647,2147483647,0]', b"9" * 30]


# ---------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------

def mutate(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        op = rng.randrange(9)
        pos = rng.randrange(len(b) + 1) if b else 0
        if op == 0 and b:                                   # bit flip
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:                                 # interesting byte
            b[rng.randrange(len(b))] = rng.choice(INTERESTING)
        elif op == 2:                                       # random bytes inserted
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 3 and b:                                 # delete a run
            del b[pos:pos + rng.randrange(1, 17)]
        elif op == 4 and b:                                 # duplicate a chunk
            j = rng.randrange(len(b))
            b[pos:pos] = b[j:j + rng.randrange(1, 65)]
        elif op == 5:                                       # interesting token
            b[pos:pos] = rng.choice(INTERESTING_TEXT)
        elif op == 6 and b:                                 # truncate
            del b[rng.randrange(len(b)):]
        elif op == 7 and len(b) >= 8:                       # little-endian integer field set to an edge value
            i = rng.randrange(len(b) - 7)
            width = rng.choice((1, 2, 4, 8))
            value = rng.choice((0, 1, 2 ** (8 * width - 1) - 1, 2 ** (8 * width) - 1, rng.randrange(2 ** (8 * width))))
            b[i:i + width] = value.to_bytes(width, "little")
        elif op == 8 and corpus:                            # splice with another seed
            other = rng.choice(corpus)
            j = rng.randrange(len(other) + 1)
            b = b[:pos] + bytearray(other[j:])
    return bytes(b)


# ---------------------------------------------------------------------------
# seeds and targets
# ---------------------------------------------------------------------------

def seed_tensors(rng):
    return {"a.weight": rng.standard_normal((3, 4)).astype("<f4"),
            "b.bias": rng.standard_normal(5).astype("<f2"),
            "c.ids": np.arange(6, dtype="<i8").reshape(2, 3),
            "d.scalar": np.array(1.5, dtype="<f4")}


class _MemoryStorages:
    """The storage side of a zip checkpoint, in memory, for the pickle target."""

    def __init__(self, blobs):
        self.blobs, self.big_endian, self.storage_bytes_read = blobs, False, 0

    def check_storage_exists(self, key):
        if key not in self.blobs:
            raise safe_torch_pickle.TorchLoadError(f"storage {safe_torch_pickle.describe(key)} missing")

    def read_storage(self, key):
        self.storage_bytes_read += len(self.blobs[key])
        return self.blobs[key]


class Targets:
    def __init__(self, workdir):
        rng = np.random.default_rng(0)
        t = seed_tensors(rng)
        st = safetensors_bytes(t)
        n = int.from_bytes(st[:8], "little")
        self.st_header_seeds = [st[8:8 + n], b'{"__metadata__":{"format":"pt"},"x":{"dtype":"BF16","shape":[2,2],'
                                             b'"data_offsets":[0,8]}}']
        self.st_data_size = len(st) - 8 - n
        self.st_seeds = [st, safetensors_bytes({"x": np.zeros((0, 3), "<f4")})]
        f32 = {k: v.astype("<f4") for k, v in t.items()}
        layout = {name: (str(i), list(a.shape)) for i, (name, a) in enumerate(f32.items())}
        self.pickle_seeds = [torch_pickle_bytes(layout)]
        self.pickle_blobs = {key: np.ascontiguousarray(f32[name]).tobytes() for name, (key, _) in layout.items()}
        zpath = os.path.join(workdir, "seed.bin")
        write_torch_zip(zpath, f32)
        with open(zpath, "rb") as f:
            self.zip_seeds = [f.read()]
        self.h5_seeds = [self._h5_seed(workdir)] if self._have_h5py() else []
        self.path = os.path.join(workdir, "input")

    @staticmethod
    def _have_h5py():
        try:
            import h5py  # noqa: F401
            return True
        except ImportError:
            return False

    @staticmethod
    def _h5_seed(workdir):
        import h5py
        path = os.path.join(workdir, "seed.h5")
        with h5py.File(path, "w") as f:
            f.attrs["layer_names"] = [b"m"]
            g = f.create_group("m")
            names = ["m/emb/cls_token:0", "m/enc/layer_._0/dense/kernel:0"]
            g.attrs["weight_names"] = [n.encode() for n in names]
            g.create_dataset(names[0], data=np.ones((1, 1, 4), "f4"))
            g.create_dataset(names[1], data=np.ones((4, 4), "f4"))
        with open(path, "rb") as f:
            return f.read()

    def _write(self, data):
        with open(self.path, "wb") as f:
            f.write(data)
        return self.path

    # each run_* takes one input and returns normally or raises
    def run_st_header(self, data):
        header = checkpoint_io.parse_safetensors_header(data, "fuzz")
        checkpoint_io.safetensors_layout(header, self.st_data_size, "fuzz")

    def run_st_file(self, data):
        out = checkpoint_io.read_safetensors(self._write(data))
        for a in out.values():
            np.asarray(a, dtype="<f4")

    def run_pickle(self, data):
        safe_torch_pickle.state_dict_from_pickle(data, _MemoryStorages(self.pickle_blobs), "fuzz")

    def run_zip(self, data):
        safe_torch_pickle.load_torch_state_dict(self._write(data))

    def run_h5(self, data):
        checkpoint_io.read_tf_h5(self._write(data), {"hidden_size": 4})

    def seeds(self, name):
        return {"st_header": self.st_header_seeds, "st_file": self.st_seeds, "pickle": self.pickle_seeds,
                "zip": self.zip_seeds, "h5": self.h5_seeds}[name]


def cpu_seconds():
    """CPU time of this process and its waited-for children (the h5 reader runs in a child)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


TARGET_NAMES = ["st_header", "st_file", "pickle", "zip", "h5"]


def fuzz_target(targets, name, rng, seconds, iterations, slow_s, findings_dir, report):
    seeds = targets.seeds(name)
    if not seeds:
        print(f"{name}: skipped (h5py not installed)")
        return 0, 0
    run = getattr(targets, "run_" + name)
    for s in seeds:                              # the seeds themselves must pass
        run(s)
    deadline = time.monotonic() + seconds if seconds else None
    n, found, seen = 0, 0, set()
    while (iterations is None or n < iterations) and (deadline is None or time.monotonic() < deadline):
        data = mutate(rng.choice(seeds), rng, seeds)
        n += 1
        t0 = cpu_seconds()            # CPU time: a loaded machine must not make inputs look slow
        bounded = False
        try:
            run(data)
            problem = None
        except checkpoint_io.H5TimeLimit:   # refused at the reader's CPU limit: handled, and slow by design
            problem, bounded = None, True
        except EXPECTED:
            problem = None
        except MemoryError:
            problem = "MemoryError"
        except Exception as e:  # noqa: BLE001 -- every other exception is what we look for
            frame = traceback.extract_tb(e.__traceback__)[-1]
            problem = f"{type(e).__name__} at {os.path.basename(frame.filename)}:{frame.lineno}: {str(e)[:200]}"
        elapsed = cpu_seconds() - t0
        if problem is None and not bounded and elapsed > slow_s:
            problem = f"slow input: {elapsed:.1f} s of CPU"
        if problem is not None:
            found += 1
            key = problem.split(":")[0] + problem.split(":")[1] if ":" in problem else problem
            if key not in seen:
                seen.add(key)
                report.append(f"{name}: {problem}")
                if findings_dir:
                    os.makedirs(findings_dir, exist_ok=True)
                    with open(os.path.join(findings_dir, f"{name}-{len(seen)}.bin"), "wb") as f:
                        f.write(data)
    return n, found


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=None, help="total time budget (shared by the targets)")
    ap.add_argument("--iterations", type=int, default=None, help="inputs per target")
    ap.add_argument("--targets", default=",".join(TARGET_NAMES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slow", type=float, default=2.0, help="CPU seconds after which one input counts as a finding")
    ap.add_argument("--findings", default=None, help="directory to save the inputs of new findings in")
    args = ap.parse_args(argv)
    names = [t for t in args.targets.split(",") if t]
    unknown = [t for t in names if t not in TARGET_NAMES]
    if unknown:
        ap.error(f"unknown targets {unknown} (choose from {', '.join(TARGET_NAMES)})")
    if args.seconds is None and args.iterations is None:
        args.seconds = 60.0
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    rng = random.Random(args.seed)
    report: list[str] = []
    total = 0
    with tempfile.TemporaryDirectory(prefix="d2v_fuzz_", dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as work:
        targets = Targets(work)
        for name in names:
            per = args.seconds / len(names) if args.seconds else None
            t0 = time.monotonic()
            n, found = fuzz_target(targets, name, rng, per, args.iterations, args.slow, args.findings, report)
            dt = time.monotonic() - t0
            total += n
            print(f"{name}: {n} inputs in {dt:.0f} s ({n / max(dt, 1e-9):.0f}/s), {found} findings", flush=True)
    for line in report:
        print("FINDING " + line)
    print(f"fuzz_convert.py: {total} inputs, {len(report)} distinct findings")
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
