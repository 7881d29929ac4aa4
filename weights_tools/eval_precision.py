#!/usr/bin/env python3
"""Accuracy of reduced-precision model files (convert.py --outtype bf16 / q8) against f32, run by our C++.

Usage (reference venv: torch + transformers + soundfile + soxr + gguf)::

    ~/.cache/d2v-ref/bin/python weights_tools/eval_precision.py [--build build] [--work /tmp/d2v-precision]
                                                                [--skip-base] [--skip-demo]

(a) Base-size models, seeded random weights (Transformers' default configs, torch.manual_seed(0), as
    weights_tools/bench.py builds them), converted to f32, bf16 and q8. Real inputs from
    ../shared/data: speech (jfk.wav, the LibriSpeech clip, 8 FSDD clips), text (16 sentences of
    wiki_text, tokenized with the committed fixture tokenizer tests/fixtures/text/tokenizer, whose ids
    fit the base vocabulary), photos (the COCO and ADE20K images). Each file runs through d2v-audio /
    d2v-text / d2v-vision --dump; printed: cosine similarity of last_hidden_state to the f32 file's,
    over the whole tensor and the worst single row (token / frame / patch). Targets: >= 0.999 (bf16),
    >= 0.99 (q8), checked on the whole-tensor cosine of every input.
(b) The bundled demo models (models/digits-classify.gguf, models/digits-ctc.gguf; their checkpoints
    are not kept, so convert.py --from-gguf re-writes them): digit classification accuracy on all
    2,500 FSDD clips (5 speakers), and CTC word error rate on 500 sequences of 3-5 digits drawn from
    all speakers (built as weights_tools/eval_demo.py builds them, seed 2024). Target: within 0.5
    points of f32.

bf16 is run with D2V_BF16=native (activations rounded to bf16 too, oneDNN's AVX512_BF16 kernels):
the default on CPUs without AMX expands bf16 weights to f32 at load, which only adds the weight
rounding and is closer to f32 still. Every C++ run uses one thread (a 2-thread OpenMP run on a busy
machine spends most of its time spinning).

Prints one table per part; exit status 1 if a target is missed. The model files are kept under
--work (reused when present) so that speed runs can use them too.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data"
OUTTYPES = ("f32", "bf16", "q8")
TARGET = {"bf16": 0.999, "q8": 0.99}


def run(cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit(f"eval_precision.py: {' '.join(map(str, cmd[:4]))} ... failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p


def convert(src, dst, outtype, from_gguf=False):
    if Path(dst).exists():
        return
    cmd = [sys.executable, HERE / "convert.py", src, dst, "--outtype", outtype]
    cmd += ["--from-gguf"] if from_gguf else ["--allow-no-tokenizer"]
    run(cmd)


# ----------------------------------------------------------------------------- (a) base models

def build_base(work: Path) -> dict[str, dict[str, Path]]:
    """{modality: {outtype: gguf}} for base-size seeded models."""
    import torch
    from transformers import (AutoFeatureExtractor, BeitImageProcessor, Data2VecAudioConfig, Data2VecAudioModel,
                              Data2VecTextConfig, Data2VecTextModel, Data2VecVisionConfig, Data2VecVisionModel,
                              Wav2Vec2FeatureExtractor)
    from transformers import logging as hf_logging
    hf_logging.set_verbosity_error()
    del AutoFeatureExtractor
    files = {}
    for modality in ("audio", "text", "vision"):
        d = work / f"base_{modality}"
        ckpt = d / "ckpt"
        out = {t: d / f"{modality}_{t}.gguf" for t in OUTTYPES}
        files[modality] = out
        if all(p.exists() for p in out.values()):
            continue
        if not (ckpt / "config.json").exists():
            torch.manual_seed(0)
            if modality == "audio":
                model = Data2VecAudioModel(Data2VecAudioConfig()).eval()
                model.save_pretrained(ckpt)
                Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(ckpt)
            elif modality == "text":
                model = Data2VecTextModel(Data2VecTextConfig(), add_pooling_layer=False).eval()
                model.save_pretrained(ckpt)
                for f in (ROOT / "tests/fixtures/text/tokenizer").iterdir():
                    shutil.copy(f, ckpt / f.name)
                vocab = json.loads((ckpt / "vocab.json").read_text())
                assert max(vocab.values()) < model.config.vocab_size
            else:
                model = Data2VecVisionModel(Data2VecVisionConfig(), add_pooling_layer=False).eval()
                model.save_pretrained(ckpt)
                BeitImageProcessor().save_pretrained(ckpt)
        for t, p in out.items():
            convert(ckpt, p, t)
    return files


def sentences(n=16):
    text = (DATA / "text/wiki_text/wiki_00").read_text(encoding="utf-8", errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if 200 <= len(ln.strip()) <= 600 and not ln.startswith("<")]
    return lines[:n]


def dump_hidden(binary, model, args, tmp: Path) -> np.ndarray:
    d = tmp / "dump"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    run([binary, "-m", model, "-t", "1", *args, "--dump", d])
    return np.load(d / "last_hidden_state.npy").astype(np.float64)


def cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    whole = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    a2, b2 = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    rows = (a2 * b2).sum(-1) / np.sqrt((a2 * a2).sum(-1) * (b2 * b2).sum(-1))
    return whole, float(rows.min())


def eval_base(build: Path, work: Path) -> bool:
    files = build_base(work)
    fsdd = sorted((DATA / "speech/fsdd").glob("*.wav"))
    inputs = {
        "audio": [("jfk.wav", [DATA / "speech/jfk.wav"]),
                  ("librispeech", [DATA / "speech/librispeech_1272-128104-0000.flac"])] +
                 [(p.stem, [p]) for p in random.Random(3).sample(fsdd, 8)],
        "text": [(f"wiki sentence {i}", ["-p", s]) for i, s in enumerate(sentences())],
        "vision": [("coco 39769", [DATA / "images/coco_000000039769.png"]),
                   ("ade20k 1", [DATA / "images/ade20k_val_00000001.jpg"])],
    }
    ok = True
    print("\n(a) base-size models, seeded random weights: cosine similarity of last_hidden_state to f32")
    print(f"{'modality':8} {'inputs':>6} | {'bf16 whole (min)':>17} {'bf16 worst row':>15} | {'q8 whole (min)':>15} {'q8 worst row':>13} | pass")
    with tempfile.TemporaryDirectory(prefix="d2v-prec-") as td:
        tmp = Path(td)
        for modality, cases in inputs.items():
            binary = build / f"d2v-{modality}"
            res = {t: [] for t in TARGET}
            for name, args in cases:
                ref = dump_hidden(binary, files[modality]["f32"], args, tmp)
                for t in TARGET:
                    res[t].append(cosines(dump_hidden(binary, files[modality][t], args, tmp), ref))
            passed = all(min(w for w, _ in res[t]) >= TARGET[t] for t in TARGET)
            ok &= passed
            print(f"{modality:8} {len(cases):>6} | {min(w for w, _ in res['bf16']):>17.6f} {min(r for _, r in res['bf16']):>15.6f} | "
                  f"{min(w for w, _ in res['q8']):>15.6f} {min(r for _, r in res['q8']):>13.6f} | {'yes' if passed else 'NO'}")
    for modality, out in files.items():
        sizes = " / ".join(f"{t} {out[t].stat().st_size / 2**20:.0f} MiB" for t in OUTTYPES)
        print(f"  {modality} file sizes: {sizes}")
    return ok


# ----------------------------------------------------------------------------- (b) demo models

def cpp_results(binary, model, files, chunk=50):
    out = []
    for i in range(0, len(files), chunk):
        p = run([binary, "-m", model, "-t", "1", "--json", "-k", "1", *files[i: i + chunk]])
        out += json.loads(p.stdout)["results"]
    return out


def eval_demo(build: Path, work: Path) -> bool:
    import soundfile as sf
    from demo_data import SR, WORDS, edit_distance, read16k
    binary = build / "d2v-audio"
    models = {}
    for name in ("digits-classify", "digits-ctc"):
        src = ROOT / "models" / f"{name}.gguf"
        models[name] = {"f32": src}
        for t in TARGET:
            models[name][t] = work / f"{name}_{t}.gguf"
            convert(src, models[name][t], t, from_gguf=True)
    clips = sorted((DATA / "speech/fsdd").glob("*.wav"))
    digit = {p: int(p.name.split("_")[0]) for p in clips}
    rows = {}
    for t in OUTTYPES:
        res = cpp_results(binary, models["digits-classify"][t], clips)
        rows.setdefault(t, {})["acc"] = 100.0 * sum(r["labels"][0]["label"] == WORDS[digit[p]] for p, r in zip(clips, res)) / len(clips)
    with tempfile.TemporaryDirectory(prefix="d2v-prec-ctc-") as td:
        tmp = Path(td)
        rng = random.Random(2024)
        pool = {d: [p for p in clips if digit[p] == d] for d in range(10)}
        cache, seqs = {}, []
        for k in range(500):
            ds = [rng.randrange(10) for _ in range(rng.randint(3, 5))]
            parts = [np.zeros(int(rng.uniform(0.05, 0.25) * SR), np.float32)]
            for d in ds:
                p = rng.choice(pool[d])
                if p not in cache:
                    cache[p] = read16k(p)
                parts += [cache[p], np.zeros(int(rng.uniform(0.05, 0.25) * SR), np.float32)]
            f = tmp / f"seq{k:03d}.wav"
            sf.write(str(f), np.clip(np.concatenate(parts), -1, 1), SR, subtype="PCM_16")
            seqs.append((f, " ".join(WORDS[d].upper() for d in ds)))
        for t in OUTTYPES:
            res = cpp_results(binary, models["digits-ctc"][t], [f for f, _ in seqs], chunk=25)
            errs = sum(edit_distance(ref.split(), r["transcript"].split()) for (_, ref), r in zip(seqs, res))
            rows[t]["wer"] = 100.0 * errs / sum(len(ref.split()) for _, ref in seqs)
    ok = True
    print(f"\n(b) demo models on all FSDD speakers ({len(clips)} clips; 500 CTC sequences of 3-5 digits)")
    print(f"{'precision':9} | {'classify accuracy %':>19} {'vs f32':>7} | {'CTC WER %':>9} {'vs f32':>7} | {'sizes (classify / ctc)':>22} | pass")
    for t in OUTTYPES:
        da, dw = rows[t]["acc"] - rows["f32"]["acc"], rows[t]["wer"] - rows["f32"]["wer"]
        passed = abs(da) <= 0.5 and abs(dw) <= 0.5
        ok &= passed
        sizes = " / ".join(f"{models[n][t].stat().st_size / 2**20:.1f} MiB" for n in ("digits-classify", "digits-ctc"))
        print(f"{t:9} | {rows[t]['acc']:>19.2f} {da:>+7.2f} | {rows[t]['wer']:>9.2f} {dw:>+7.2f} | {sizes:>22} | {'yes' if passed else 'NO'}")
    return ok


def main() -> int:
    global DATA
    os.environ["D2V_BF16"] = "native"  # the stricter bf16 path (see the docstring)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", type=Path, default=ROOT / "build", help="build folder with d2v-audio/-text/-vision")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "d2v-precision")
    ap.add_argument("--skip-base", action="store_true")
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)")
    args = ap.parse_args()
    DATA = args.data
    args.work.mkdir(parents=True, exist_ok=True)
    ok = True
    if not args.skip_demo:
        ok &= eval_demo(args.build, args.work)
    if not args.skip_base:
        ok &= eval_base(args.build, args.work)
    print("\nall targets met" if ok else "\nTARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
