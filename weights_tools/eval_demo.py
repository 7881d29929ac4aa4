#!/usr/bin/env python3
"""Measure the shipped demo models with the C++ binary, and check it against PyTorch.

Usage (reference venv: torch + transformers + soundfile + soxr + gguf)::

    python weights_tools/eval_demo.py [--bin build/d2v-audio] [--ctc models/digits-ctc.gguf]
                                      [--classify models/digits-classify.gguf]
                                      [--fsdd ../shared/data/speech/fsdd]

Held-out data: one FSDD speaker (``--speaker``, default yweweler), which the models measured must not
have been trained on (train_demo.py --held-out; weights_tools/loso_demo.py runs every fold).

* classification: all 500 yweweler clips (8 kHz files, given to d2v-audio as they are);
  accuracy of the top label printed by ``d2v-audio --json``, overall and per digit.
* CTC: 500 sequences of 3-5 digits built deterministically (seed 2024) from yweweler's clips,
  resampled to 16 kHz with soxr (HQ), joined with 0.05-0.25 s of silence, written as 16 kHz PCM16
  WAVs to a temporary folder; word error rate of the ``d2v-audio --json`` transcripts, greedy and
  with ``--words`` (the ten digit words).
* parity: the PyTorch model is rebuilt from the same GGUF file (config + tensors) with
  Transformers, fed by the same files (soundfile + soxr HQ + Wav2Vec2FeatureExtractor from the
  file's preprocessor config), in the same padded batches for the classifier and file by file for
  CTC (as d2v-audio runs each); its top labels / greedy transcripts must equal the C++ ones on
  every file, and on 30 files per model (one file per run,
  ``d2v-audio --dump``) the logits must agree to ``--tol`` (default 1e-4) max abs difference.

Exit status 0 only if the parity checks pass (the metrics are reported, not enforced, unless
``--min-accuracy`` / ``--max-wer`` are given).
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from demo_data import SR, WORDS, edit_distance, fsdd_clips, read16k

sys.dont_write_bytecode = True
# ----------------------------------------------------------------------------- PyTorch from GGUF

def torch_model_from_gguf(path: Path):
    """(model, feature extractor, tokenizer or None) rebuilt from our GGUF file."""
    import gguf
    from transformers import logging as hf_logging
    from transformers import (Data2VecAudioConfig, Data2VecAudioForCTC, Data2VecAudioForSequenceClassification,
                              Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor)
    hf_logging.set_verbosity_error()
    r = gguf.GGUFReader(str(path))

    def text(key):
        f = r.fields.get(key)
        return None if f is None else bytes(f.parts[f.data[0]]).decode("utf-8")

    cfg = Data2VecAudioConfig.from_dict(json.loads(text("d2v.config_json")))
    cls = {"Data2VecAudioForCTC": Data2VecAudioForCTC,
           "Data2VecAudioForSequenceClassification": Data2VecAudioForSequenceClassification}[text("d2v.model_class")]
    model = cls(cfg).eval()
    state = {}
    for t in r.tensors:
        shape = tuple(int(s) for s in reversed(t.shape.tolist()))  # gguf stores ggml order
        state[t.name] = torch.from_numpy(np.array(t.data, dtype=np.float32).reshape(shape))
    own = model.state_dict()
    missing = [k for k in own if k not in state and own[k].is_floating_point()]
    extra = [k for k in state if k not in own]
    if missing or extra:
        raise SystemExit(f"eval_demo.py: {path}: tensors do not match {cls.__name__}: missing {missing[:5]} extra {extra[:5]}")
    model.load_state_dict(state, strict=False)
    fe = Wav2Vec2FeatureExtractor(**json.loads(text("d2v.preprocessor_json")))
    tok = None
    if text("d2v.vocab_json"):
        td = Path(tempfile.mkdtemp(prefix="d2v-tok-"))
        (td / "vocab.json").write_text(text("d2v.vocab_json"))
        tc = json.loads(text("d2v.tokenizer_config_json") or "{}")
        kw = {k: tc[k] for k in ("unk_token", "pad_token", "bos_token", "eos_token", "word_delimiter_token",
                                 "do_lower_case") if k in tc and isinstance(tc[k], (str, bool))}
        tok = Wav2Vec2CTCTokenizer(str(td / "vocab.json"), **kw)
    return model, fe, tok


def torch_logits(model, fe, waves):
    b = fe(waves, sampling_rate=SR, padding=True, return_attention_mask=True, return_tensors="pt")
    with torch.no_grad():
        out = model(b["input_values"], attention_mask=b["attention_mask"])
    logits = out.logits.numpy()
    frames = None
    if logits.ndim == 3:
        frames = model.data2vec_audio._get_feat_extract_output_lengths(b["attention_mask"].sum(-1)).tolist()
    return logits, frames


# ----------------------------------------------------------------------------- C++

THREADS = 2


def run_cpp(binary, model, files, extra=()):
    cmd = [str(binary), "-m", str(model), "-t", str(THREADS), *extra, *map(str, files)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"eval_demo.py: {' '.join(cmd[:4])} ... failed ({p.returncode}): {p.stderr.strip()}")
    return p


def cpp_json(binary, model, files, extra=()):
    return json.loads(run_cpp(binary, model, files, ["--json", "-k", "1", *extra]).stdout)["results"]


def cpp_dump_logits(binary, model, f, tmp: Path):
    d = tmp / "dump"
    d.mkdir(exist_ok=True)
    for old in d.glob("*.npy"):
        old.unlink()
    run_cpp(binary, model, [f], ["--dump", str(d)])
    return np.load(d / "logits.npy")


# ----------------------------------------------------------------------------- main

def main():
    here = Path(__file__).resolve().parent
    root = here.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=root / "build/d2v-audio")
    ap.add_argument("--ctc", type=Path, default=root / "models/digits-ctc.gguf")
    ap.add_argument("--classify", type=Path, default=root / "models/digits-classify.gguf")
    ap.add_argument("--fsdd", type=Path, default=root.parent / "shared/data/speech/fsdd")
    ap.add_argument("--sequences", type=int, default=500)
    ap.add_argument("--parity-files", type=int, default=30)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--chunk", type=int, default=25, help="files per d2v-audio run (one padded batch)")
    ap.add_argument("--min-accuracy", type=float, default=None, help="fail below this accuracy (%%)")
    ap.add_argument("--max-wer", type=float, default=None, help="fail above this WER (%%)")
    ap.add_argument("--speaker", default="yweweler", help="the held-out FSDD speaker")
    ap.add_argument("--threads", type=int, default=2, help="d2v-audio and torch threads")
    ap.add_argument("--json-out", type=Path, help="also write the JSON summary here")
    args = ap.parse_args()
    global THREADS
    THREADS = args.threads
    torch.set_num_threads(args.threads)
    SPEAKER = args.speaker
    t0 = time.time()
    ok = True

    clips = fsdd_clips(args.fsdd, SPEAKER)
    if len(clips) != 500:
        print(f"eval_demo.py: warning: {len(clips)} {SPEAKER} clips (expected 500)", file=sys.stderr)
    digit = {p: int(p.name.split("_")[0]) for p in clips}
    summary = {}

    with tempfile.TemporaryDirectory(prefix="d2v-eval-") as td:
        tmp = Path(td)

        # ---- classification
        model, fe, _ = torch_model_from_gguf(args.classify)
        labels = model.config.id2label
        correct = mismatched = 0
        per_digit = [0] * 10
        for i in range(0, len(clips), args.chunk):
            chunk = clips[i: i + args.chunk]
            res = cpp_json(args.bin, args.classify, chunk)
            pt, _ = torch_logits(model, fe, [read16k(p) for p in chunk])
            for p, r, row in zip(chunk, res, pt):
                cpp_label = r["labels"][0]["label"]
                correct += cpp_label == WORDS[digit[p]]
                per_digit[digit[p]] += cpp_label == WORDS[digit[p]]
                if cpp_label != labels[int(row.argmax())]:
                    mismatched += 1
                    print(f"  label mismatch {p.name}: C++ {cpp_label} PyTorch {labels[int(row.argmax())]}")
        acc = 100.0 * correct / len(clips)
        sub = random.Random(7).sample(clips, min(args.parity_files, len(clips)))
        diff_cls = 0.0
        for p in sub:
            c = cpp_dump_logits(args.bin, args.classify, p, tmp)
            t, _ = torch_logits(model, fe, [read16k(p)])
            diff_cls = max(diff_cls, float(np.abs(c - t).max()))
        ok &= mismatched == 0 and diff_cls <= args.tol
        counts = [sum(1 for p in clips if digit[p] == d) for d in range(10)]
        per_digit_acc = {WORDS[d]: round(100.0 * per_digit[d] / max(1, counts[d]), 1) for d in range(10)}
        summary["classify"] = dict(files=len(clips), accuracy=acc, per_digit_accuracy=per_digit_acc,
                                   label_mismatches=mismatched,
                                   logits_max_abs_diff=diff_cls, parity_files=len(sub))
        print(f"classification ({args.classify.name}): {SPEAKER} accuracy {correct}/{len(clips)} = {acc:.1f}%; "
              f"C++ vs PyTorch: {mismatched} label mismatches, logits max abs diff {diff_cls:.2e} on {len(sub)} files")

        # ---- CTC on digit sequences
        model, fe, tok = torch_model_from_gguf(args.ctc)
        rng = random.Random(2024)
        pool = {d: [p for p in clips if digit[p] == d] for d in range(10)}
        cache = {}
        seqs = []
        for k in range(args.sequences):
            ds = [rng.randrange(10) for _ in range(rng.randint(3, 5))]
            parts = [np.zeros(int(rng.uniform(0.05, 0.25) * SR), np.float32)]
            for d in ds:
                p = rng.choice(pool[d])
                if p not in cache:
                    cache[p] = read16k(p)
                parts += [cache[p], np.zeros(int(rng.uniform(0.05, 0.25) * SR), np.float32)]
            f = tmp / f"seq{k:03d}_{'_'.join(WORDS[d] for d in ds)}.wav"
            sf.write(str(f), np.clip(np.concatenate(parts), -1, 1), SR, subtype="PCM_16")
            seqs.append((f, " ".join(WORDS[d].upper() for d in ds)))
        errs = words = mismatched = errs_words = 0
        for i in range(0, len(seqs), args.chunk):
            chunk = seqs[i: i + args.chunk]
            res = cpp_json(args.bin, args.ctc, [f for f, _ in chunk])
            # the same files decoded with the digit words only (d2v-audio --words)
            for (f, ref), r in zip(chunk, cpp_json(args.bin, args.ctc, [f for f, _ in chunk], ["--words", " ".join(WORDS)])):
                errs_words += edit_distance(ref.split(), r["transcript"].split())
            # one file per PyTorch pass: d2v-audio runs a CTC model file by file (as Transformers'
            # ASR pipeline does), and a padded batch is not the same computation for this model
            # (its second positional conv layer sees the first one's output on the padding)
            per_file = [torch_logits(model, fe, [read16k(f)]) for f, _ in chunk]
            pt, frames = [p[0][0] for p in per_file], [p[1][0] for p in per_file]
            for (f, ref), r, row, n in zip(chunk, res, pt, frames):
                hyp = r["transcript"]
                errs += edit_distance(ref.split(), hyp.split())
                words += len(ref.split())
                pt_hyp = tok.decode(row[:n].argmax(-1).tolist())
                if hyp != pt_hyp:
                    mismatched += 1
                    print(f"  transcript mismatch {f.name}: C++ '{hyp}' PyTorch '{pt_hyp}'")
        wer = 100.0 * errs / words
        wer_words = 100.0 * errs_words / words
        sub = random.Random(8).sample(seqs, min(args.parity_files, len(seqs)))
        diff_ctc = 0.0
        for f, _ in sub:
            c = cpp_dump_logits(args.bin, args.ctc, f, tmp)
            t, _ = torch_logits(model, fe, [read16k(f)])
            diff_ctc = max(diff_ctc, float(np.abs(c - t).max()))
        ok &= mismatched == 0 and diff_ctc <= args.tol
        summary["ctc"] = dict(sequences=len(seqs), words=words, word_errors=errs, wer=wer, wer_words=wer_words,
                              transcript_mismatches=mismatched, logits_max_abs_diff=diff_ctc, parity_files=len(sub))
        print(f"CTC ({args.ctc.name}): {len(seqs)} sequences of 3-5 {SPEAKER} digits, WER {errs}/{words} = {wer:.1f}% "
              f"(with --words: {wer_words:.1f}%); "
              f"C++ vs PyTorch: {mismatched} transcript mismatches, logits max abs diff {diff_ctc:.2e} on {len(sub)} files")

    if args.min_accuracy is not None and acc < args.min_accuracy:
        ok = False
    if args.max_wer is not None and wer > args.max_wer:
        ok = False
    report = json.dumps({"speaker": SPEAKER, "summary": summary, "pass": bool(ok),
                         "seconds": round(time.time() - t0, 1)}, indent=2)
    print(report)
    if args.json_out:
        args.json_out.write_text(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
