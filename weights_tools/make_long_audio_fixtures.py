#!/usr/bin/env python3
"""Long-audio reference outputs: Transformers' ASR pipeline, chunked, on about a minute of real speech.

Usage (reference venv: torch, transformers, soundfile, soxr, gguf)::

    ~/.cache/d2v-ref/bin/python weights_tools/make_long_audio_fixtures.py

The clip: FSDD recordings of speaker yweweler (a training speaker of the current demo models), digits drawn with
seed 2026, each followed by 0.1-0.6 s of silence, joined at their own 8 kHz until 64 s; the test
rebuilds the same clip from ../shared/data by the recipe (file list + silence lengths) and writes it
as an 8 kHz PCM16 WAV, so d2v-audio resamples it exactly as here (soxr HQ of the whole clip).

The model: models/digits-ctc.gguf rebuilt as a PyTorch Data2VecAudioForCTC (eval_demo.py), so the
transcripts are real digit words. For each setting in SETTINGS, the pipeline's transcript and its
word timestamps (return_timestamps="word"), and - for the first setting - the joined logits: the
logits of every chunk the model produced, cut by the very strides the pipeline computed (captured
from its postprocess step), concatenated. The unchunked setting (chunk 0) also checks that the
tokenizer's word offsets times inputs_to_logits_ratio / sampling_rate equal the pipeline's times.

Writes tests/fixtures/audio/long/{recipe.json, expected.json, logits.npy}.
"""
import json
import os
import random
import sys

import numpy as np
import soundfile as sf
import soxr
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_demo import torch_model_from_gguf  # noqa: E402
from fixture_common import REPO, init_torch_reference, log, save_json, save_npy  # noqa: E402

FSDD = os.path.join(REPO, "..", "shared", "data", "speech", "fsdd")
OUT = os.path.join(REPO, "tests", "fixtures", "audio", "long")
MODEL = os.path.join(REPO, "models", "digits-ctc.gguf")
SOURCE_RATE, RATE, SECONDS = 8000, 16000, 64
# (chunk_length_s, stride_length_s): the CLI default (10 s, strides 10/6 s: Transformers' default), an
# odd asymmetric one (rounding of chunk and strides to frames), and the unchunked pass.
SETTINGS = [(10.0, None), (7.3, (1.5, 0.7)), (0, None)]


def recipe():
    rng = random.Random(2026)
    items, total = [], 0
    while total < SECONDS * SOURCE_RATE:
        name = f"{rng.randrange(10)}_yweweler_{rng.randrange(50)}.wav"
        pause = rng.randrange(SOURCE_RATE // 10, SOURCE_RATE * 6 // 10)
        items.append({"file": name, "silence_after": pause})
        total += sf.info(os.path.join(FSDD, name)).frames + pause
    return items


def build_clip(items):
    parts = []
    for it in items:
        x, sr = sf.read(os.path.join(FSDD, it["file"]), dtype="float32")
        assert sr == SOURCE_RATE and x.ndim == 1, it
        parts += [x, np.zeros(it["silence_after"], np.float32)]
    return np.concatenate(parts)


def run_pipeline(asr, wave, chunk, stride):
    """(text, word chunks, joined logits or None, joined ids) of one pipeline call."""
    captured_logits, captured_strides = [], []
    model = asr.model
    original_forward = model.forward

    def forward(*args, **kwargs):
        out = original_forward(*args, **kwargs)
        captured_logits.append(out.logits.detach().numpy())
        return out

    original_post = asr.postprocess

    def postprocess(model_outputs, **kwargs):
        captured_strides.extend(o.get("stride") for o in model_outputs)
        return original_post(model_outputs, **kwargs)

    model.forward, asr.postprocess = forward, postprocess
    try:
        kwargs = {"chunk_length_s": chunk, "return_timestamps": "word"}
        if stride is not None:
            kwargs["stride_length_s"] = list(stride)
        result = asr(wave.copy(), **kwargs)
    finally:
        model.forward, asr.postprocess = original_forward, original_post
    pieces = []
    for logits, s in zip(captured_logits, captured_strides):
        if s is None:  # unchunked
            pieces.append(logits)
        else:
            total_n, left, right = s
            pieces.append(logits[:, left:total_n - right])
    joined = np.concatenate(pieces, axis=1)
    return result, joined


def main():
    init_torch_reference()
    from transformers import pipeline

    items = recipe()
    wave8k = build_clip(items)
    wave = soxr.resample(wave8k, SOURCE_RATE, RATE, quality="HQ").astype(np.float32)
    log(f"clip: {len(items)} recordings, {len(wave8k) / SOURCE_RATE:.2f} s")
    model, fe, tok = torch_model_from_gguf(MODEL)
    asr = pipeline("automatic-speech-recognition", model=model, tokenizer=tok, feature_extractor=fe, device="cpu")
    ratio = model.config.inputs_to_logits_ratio

    expected = {"model": "models/digits-ctc.gguf", "source_rate": SOURCE_RATE, "samples_16k": len(wave), "settings": []}
    for k, (chunk, stride) in enumerate(SETTINGS):
        with torch.no_grad():
            result, joined = run_pipeline(asr, wave, chunk, stride)
        ids = joined[0].argmax(-1)
        # The pipeline decodes the joined argmax ids: our joined logits must give its transcript.
        assert tok.decode(ids) == result["text"], (chunk, stride)
        words = [{"word": c["text"], "start": c["timestamp"][0], "end": c["timestamp"][1]} for c in result["chunks"]]
        offsets = tok.decode(ids, output_word_offsets=True)["word_offsets"]
        from_tokenizer = [{"word": o["word"], "start": o["start_offset"] * ratio / RATE, "end": o["end_offset"] * ratio / RATE}
                          for o in offsets]
        assert from_tokenizer == words, "tokenizer word offsets and the pipeline's word timestamps differ"
        expected["settings"].append({"chunk": chunk, "stride": stride, "frames": int(joined.shape[1]),
                                     "text": result["text"], "words": words})
        log(f"chunk {chunk} stride {stride}: {joined.shape[1]} frames, {len(words)} words: {result['text'][:80]}...")
        if k == 0:
            save_npy(os.path.join(OUT, "logits.npy"), joined)
    spoken = " ".join(["zero one two three four five six seven eight nine".split()[int(it["file"][0])] for it in items]).upper()
    expected["spoken"] = spoken
    save_json(os.path.join(OUT, "recipe.json"), {"fsdd_dir": "speech/fsdd", "items": items})
    save_json(os.path.join(OUT, "expected.json"), expected)


if __name__ == "__main__":
    main()
