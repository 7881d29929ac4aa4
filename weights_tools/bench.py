"""Side-by-side benchmark: data2vec.cpp vs PyTorch eager, same weights, same input, same threads.

    ~/.cache/d2v-ref/bin/python weights_tools/bench.py audio    # base Data2VecAudioModel on jfk.wav (11 s)
    ~/.cache/d2v-ref/bin/python weights_tools/bench.py text     # base Data2VecTextModel, 128 and 512 tokens
    ~/.cache/d2v-ref/bin/python weights_tools/bench.py vision   # base ForImageClassification 224^2, ForSemanticSegmentation 640^2

Each builds the model from Transformers' default (base-size) config with seeded random weights,
saves and converts it with convert.py, times PyTorch (torch.no_grad, eager mode, default attention)
and `d2v-bench` for each thread count, batch 1, and prints both medians and the ratio
(PyTorch time / ours: > 1 means we are faster). It also checks that the C++ output equals
PyTorch's on that input (max abs diff). Needs the reference venv (torch + transformers); it is
not part of the build or the tests.
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
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.join(REPO, "..", "shared", "data")


def time_torch(fn, threads, runs):
    torch.set_num_threads(threads)
    with torch.no_grad():
        fn()  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def time_ours(build, gguf, threads, runs, extra):
    out = subprocess.run([os.path.join(build, "d2v-bench"), "-m", gguf, "-t", str(threads), "-n", str(runs)] + extra,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def convert(ckpt, gguf):
    subprocess.run([sys.executable, os.path.join(HERE, "convert.py"), ckpt, gguf], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(name, rows):
    print(f"\n{name}")
    print(f"{'case':>22} {'threads':>7} {'pytorch ms':>11} {'d2v ms':>9} {'ratio pt/d2v':>13}")
    for case, t, pt, ours in rows:
        print(f"{case:>22} {t:>7} {pt:>11.1f} {ours:>9.1f} {pt / ours:>13.2f}")


def bench_audio(args, tmp):
    import soundfile
    from transformers import Data2VecAudioConfig, Data2VecAudioModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    model = Data2VecAudioModel(Data2VecAudioConfig()).eval()
    audio = os.path.join(SHARED, "speech", "jfk.wav")
    wave, rate = soundfile.read(audio, dtype="float32")
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    inputs = extractor(wave, sampling_rate=rate, return_tensors="pt")
    ckpt, gguf = os.path.join(tmp, "audio"), os.path.join(tmp, "audio.gguf")
    model.save_pretrained(ckpt)
    extractor.save_pretrained(ckpt)
    convert(ckpt, gguf)
    with torch.no_grad():
        ref = model(**inputs).last_hidden_state[0].numpy()
    dump = os.path.join(tmp, "audio-dump")
    subprocess.run([os.path.join(args.build, "d2v-audio"), "-m", gguf, "--dump", dump, audio], check=True, stdout=subprocess.DEVNULL)
    ours = np.load(os.path.join(dump, "last_hidden_state.npy"))[0]
    print(f"audio parity: last_hidden_state {ours.shape}, max abs diff vs PyTorch = {np.abs(ours - ref).max():.3g}")
    rows = []
    for t in args.threads:
        pt = time_torch(lambda: model(**inputs), t, args.runs)
        rows.append(("jfk.wav 11 s", t, pt, time_ours(args.build, gguf, t, args.runs, [audio])["median_ms"]))
    report("Data2VecAudioModel (base: 768 hidden, 12 layers), batch 1", rows)


def bench_text(args, tmp):
    from transformers import Data2VecTextConfig, Data2VecTextModel

    torch.manual_seed(0)
    # facebook/data2vec-text-base's shape: RoBERTa vocabulary, 514 positions, one token type, eps 1e-5.
    config = Data2VecTextConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)
    model = Data2VecTextModel(config).eval()
    ckpt, gguf = os.path.join(tmp, "text"), os.path.join(tmp, "text.gguf")
    model.save_pretrained(ckpt)
    convert(ckpt, gguf)
    rows = []
    for tokens in (128, 512):
        ids = torch.tensor([[3 + i % 1000 for i in range(tokens)]])
        mask = torch.ones_like(ids)
        for t in args.threads:
            pt = time_torch(lambda: model(input_ids=ids, attention_mask=mask), t, args.runs)
            rows.append((f"{tokens} tokens", t, pt, time_ours(args.build, gguf, t, args.runs, ["--tokens", str(tokens)])["median_ms"]))
    report("Data2VecTextModel (base: 768 hidden, 12 layers), batch 1", rows)


def bench_vision(args, tmp):
    from transformers import (Data2VecVisionConfig, Data2VecVisionForImageClassification,
                              Data2VecVisionForSemanticSegmentation)

    rows = []
    cases = [
        ("classify 224x224", Data2VecVisionForImageClassification,
         dict(use_relative_position_bias=True, num_labels=1000), 224, args.runs),
        ("segment 640x640", Data2VecVisionForSemanticSegmentation,
         dict(use_relative_position_bias=True, image_size=640, num_labels=150), 640, max(1, args.runs // 2)),
    ]
    for name, cls, kwargs, size, runs in cases:
        torch.manual_seed(0)
        model = cls(Data2VecVisionConfig(**kwargs)).eval()
        ckpt, gguf = os.path.join(tmp, name.split()[0]), os.path.join(tmp, name.split()[0] + ".gguf")
        model.save_pretrained(ckpt)
        convert(ckpt, gguf)
        pixels = torch.full((1, 3, size, size), 0.1)
        for t in args.threads:
            pt = time_torch(lambda: model(pixel_values=pixels), t, runs)
            rows.append((name, t, pt, time_ours(args.build, gguf, t, runs, ["--image-size", str(size)])["median_ms"]))
    report("Data2VecVision (base: patch 16, 768 hidden, 12 layers; UperNet head for segmentation), batch 1", rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modality", choices=["audio", "text", "vision"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    args = ap.parse_args()
    print(f"torch {torch.__version__}; data2vec.cpp backend: see d2v-bench's 'backend' field")
    with tempfile.TemporaryDirectory() as tmp:
        {"audio": bench_audio, "text": bench_text, "vision": bench_vision}[args.modality](args, tmp)


if __name__ == "__main__":
    main()
