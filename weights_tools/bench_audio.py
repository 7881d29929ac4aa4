"""Side-by-side benchmark: data2vec.cpp vs PyTorch eager on a base-size Data2VecAudio model.

Builds Data2VecAudioModel with Transformers' default (base) config and random weights (seeded),
converts it with convert.py, then times one forward pass on jfk.wav (batch 1) for each thread
count, PyTorch and `d2v-bench-audio` on the same weights and input, and prints both times and the
ratio. It also checks the C++ output against PyTorch's on that input (max abs diff).

Needs the reference venv (torch + transformers), not part of the build:
    ~/.cache/d2v-ref/bin/python weights_tools/bench_audio.py [--threads 1 2] [--runs 5] [--build build]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile
import torch
from transformers import Data2VecAudioConfig, Data2VecAudioModel, Wav2Vec2FeatureExtractor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
JFK = os.path.join(REPO, "..", "shared", "data", "speech", "jfk.wav")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--audio", default=JFK)
    args = ap.parse_args()

    torch.manual_seed(0)
    model = Data2VecAudioModel(Data2VecAudioConfig()).eval()  # default attention (sdpa), eager mode
    wave, rate = soundfile.read(args.audio, dtype="float32")
    assert rate == 16000, "benchmark input must be 16 kHz"
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    inputs = extractor(wave, sampling_rate=16000, return_tensors="pt")

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "ckpt")
        model.save_pretrained(ckpt)
        extractor.save_pretrained(ckpt)
        gguf = os.path.join(tmp, "base.gguf")
        subprocess.run([sys.executable, os.path.join(HERE, "convert.py"), ckpt, gguf], check=True,
                       stdout=subprocess.DEVNULL)

        # Parity on the real-size model.
        with torch.no_grad():
            ref = model(**inputs).last_hidden_state[0].numpy()
        dump = os.path.join(tmp, "dump")
        subprocess.run([os.path.join(args.build, "d2v-audio"), "-m", gguf, "--dump", dump, args.audio], check=True,
                       stdout=subprocess.DEVNULL)
        ours = np.load(os.path.join(dump, "last_hidden_state.npy"))[0]
        print(f"parity: last_hidden_state {ours.shape}, max abs diff vs PyTorch = {np.abs(ours - ref).max():.3g}")

        print(f"{'threads':>7} {'pytorch ms':>11} {'d2v ms':>9} {'ratio (pt/d2v)':>15}")
        for t in args.threads:
            torch.set_num_threads(t)
            with torch.no_grad():
                model(**inputs)  # warm-up
                times = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    model(**inputs)
                    times.append((time.perf_counter() - t0) * 1000)
            pt = statistics.median(times)
            out = subprocess.run([os.path.join(args.build, "d2v-bench-audio"), "-m", gguf, "-t", str(t), "-n",
                                  str(args.runs), args.audio], check=True, capture_output=True, text=True)
            ours_ms = json.loads(out.stdout)["median_ms"]
            print(f"{t:>7} {pt:>11.1f} {ours_ms:>9.1f} {pt / ours_ms:>15.2f}")
        print(f"(input {inputs['input_values'].shape[1] / 16000:.2f} s of audio, batch 1, median of {args.runs} runs; "
              f"torch {torch.__version__}, backend: {json.loads(out.stdout)['backend']})")


if __name__ == "__main__":
    main()
