#!/usr/bin/env python3
"""Converter tests for the checkpoint layouts Transformers 4 and 5 write (issue #9), with
hand-written checkpoints: needs only weights_tools/requirements.txt (CI runs it).

    python3 weights_tools/test_convert_layouts.py [-k NAME]

What Transformers 5.24 writes (checked with save_pretrained):
  Wav2Vec2Processor      processor_config.json {"feature_extractor": {...}, "processor_class": ...}
                         + vocab.json + tokenizer_config.json (no preprocessor_config.json)
  Wav2Vec2FeatureExtractor / BeitImageProcessor alone: preprocessor_config.json
  a processor holding an image processor: processor_config.json {"image_processor": {...}}
  RobertaTokenizerFast   tokenizer.json + tokenizer_config.json only
  Data2VecTextForMaskedLM model.safetensors without lm_head.decoder.weight / .bias (tied)
Transformers 4.57: preprocessor_config.json (a "feature_extractor" section unwrapped if present),
vocab.json + merges.txt + tokenizer.json, and both tied tensors in pytorch_model.bin.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_test_util import (  # noqa: E402
    Failure, check, expect_ok, expect_refused, make_checkpoint, read_gguf, tiny_audio, tiny_text_mlm,
    tiny_vision, write_torch_zip)

FE_V5 = {"do_normalize": False, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
         "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True, "sampling_rate": 16000}
CTC_VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5}
IMAGE_PROC = {"image_processor_type": "BeitImageProcessor", "do_resize": True, "size": {"height": 40, "width": 48},
              "resample": 3, "do_center_crop": True, "crop_size": {"height": 32, "width": 32},
              "image_mean": [0.4, 0.5, 0.6], "image_std": [0.5, 0.5, 0.5]}
TOKENIZER_JSON = {"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}}


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def test_audio_processor_config_v5(tmp):
    cfg, t = tiny_audio(np.random.default_rng(0), "Data2VecAudioForCTC")
    d = make_checkpoint(f"{tmp}/ctc_v5", cfg, t, {
        "processor_config.json": {"feature_extractor": FE_V5, "processor_class": "Wav2Vec2Processor"},
        "vocab.json": CTC_VOCAB, "tokenizer_config.json": {"tokenizer_class": "Wav2Vec2CTCTokenizer"}})
    err = expect_ok(d, f"{tmp}/a.gguf")
    kv, _ = read_gguf(f"{tmp}/a.gguf")
    check(json.loads(kv["d2v.preprocessor_json"]) == FE_V5, kv.get("d2v.preprocessor_json"))
    check(json.loads(kv["d2v.preprocessor_json"])["do_normalize"] is False, "do_normalize lost")
    check("processor_config.json['feature_extractor']" in err, err)
    check(kv["d2v.vocab_json"] == compact(CTC_VOCAB), "vocab")


def test_audio_processor_section_audio_processor(tmp):
    cfg, t = tiny_audio(np.random.default_rng(0))
    d = make_checkpoint(f"{tmp}/ap", cfg, t, {"processor_config.json": {"audio_processor": FE_V5}})
    expect_ok(d, f"{tmp}/a.gguf")
    check(json.loads(read_gguf(f"{tmp}/a.gguf")[0]["d2v.preprocessor_json"]) == FE_V5, "audio_processor section")


def test_audio_preprocessor_config_v4(tmp):
    cfg, t = tiny_audio(np.random.default_rng(0))
    d = make_checkpoint(f"{tmp}/v4", cfg, t, {"preprocessor_config.json": FE_V5})
    expect_ok(d, f"{tmp}/a.gguf")
    check(json.loads(read_gguf(f"{tmp}/a.gguf")[0]["d2v.preprocessor_json"]) == FE_V5, "preprocessor_config.json")
    # Transformers 4 unwraps a "feature_extractor" section of the file it reads
    d = make_checkpoint(f"{tmp}/v4nested", cfg, t, {"preprocessor_config.json": {"feature_extractor": FE_V5}})
    expect_ok(d, f"{tmp}/b.gguf")
    check(json.loads(read_gguf(f"{tmp}/b.gguf")[0]["d2v.preprocessor_json"]) == FE_V5, "nested v4 section")


def test_audio_both_files_v5_wins(tmp):
    cfg, t = tiny_audio(np.random.default_rng(0))
    other = {**FE_V5, "do_normalize": True}
    d = make_checkpoint(f"{tmp}/both", cfg, t, {"processor_config.json": {"feature_extractor": FE_V5},
                                                "preprocessor_config.json": other})
    err = expect_ok(d, f"{tmp}/a.gguf")
    check(json.loads(read_gguf(f"{tmp}/a.gguf")[0]["d2v.preprocessor_json"]) == FE_V5, "v5 section must win")
    check("differs" in err, err)


def test_missing_preprocessing_warns_with_defaults(tmp):
    cfg, t = tiny_audio(np.random.default_rng(0))
    d = make_checkpoint(f"{tmp}/none", cfg, t)
    err = expect_ok(d, f"{tmp}/a.gguf")
    check("warning: no preprocessing settings" in err and "do_normalize=True" in err and "sampling_rate=16000" in err, err)
    check("d2v.preprocessor_json" not in read_gguf(f"{tmp}/a.gguf")[0], "no key without settings")
    cfg, t = tiny_vision(np.random.default_rng(0))
    d = make_checkpoint(f"{tmp}/vnone", cfg, t)
    err = expect_ok(d, f"{tmp}/v.gguf")
    check("BeitImageProcessor defaults" in err and "224x224" in err, err)
    # a processor_config.json without the section is named, not silently ignored
    d = make_checkpoint(f"{tmp}/nosection", cfg, t, {"processor_config.json": {"processor_class": "X"}})
    err = expect_ok(d, f"{tmp}/w.gguf")
    check("processor_config.json has no image_processor section" in err, err)


def test_vision_image_processor_section(tmp):
    cfg, t = tiny_vision(np.random.default_rng(0))
    d = make_checkpoint(f"{tmp}/vis", cfg, t, {"processor_config.json": {"image_processor": IMAGE_PROC,
                                                                         "processor_class": "SomeProcessor"}})
    expect_ok(d, f"{tmp}/v.gguf")
    check(json.loads(read_gguf(f"{tmp}/v.gguf")[0]["d2v.preprocessor_json"]) == IMAGE_PROC, "image_processor section")


def test_bad_processor_section_refused(tmp):
    cfg, t = tiny_vision(np.random.default_rng(0))
    d = make_checkpoint(f"{tmp}/bad", cfg, t, {"processor_config.json": {"image_processor": [1, 2]}})
    expect_refused(d, f"{tmp}/v.gguf", "image_processor", "not an object")


def test_text_tokenizer_json_only_v5(tmp):
    cfg, t = tiny_text_mlm(np.random.default_rng(0))
    d = make_checkpoint(f"{tmp}/tok", cfg, t, {"tokenizer.json": TOKENIZER_JSON,
                                               "tokenizer_config.json": {"tokenizer_class": "RobertaTokenizer"}})
    expect_ok(d, f"{tmp}/t.gguf")
    kv, _ = read_gguf(f"{tmp}/t.gguf")
    check(kv["d2v.tokenizer_json"] == compact(TOKENIZER_JSON), "tokenizer.json not packed")
    check(kv["d2v.tokenizer_config_json"] == compact({"tokenizer_class": "RobertaTokenizer"}), "tokenizer_config")
    check("d2v.vocab_json" not in kv and "d2v.merges_txt" not in kv, "absent files must not add keys")


def test_text_without_tokenizer_refused(tmp):
    cfg, t = tiny_text_mlm(np.random.default_rng(0))
    d = make_checkpoint(f"{tmp}/notok", cfg, t, {"tokenizer_config.json": {}})
    expect_refused(d, f"{tmp}/t.gguf", "needs its tokenizer", "tokenizer.json", "--allow-no-tokenizer")
    err = expect_ok(d, f"{tmp}/t.gguf", "--allow-no-tokenizer")
    check("warning:" in err and "needs its tokenizer" in err, err)
    d = make_checkpoint(f"{tmp}/vocabonly", cfg, t, {"vocab.json": {"a": 0}})
    expect_refused(d, f"{tmp}/u.gguf", "needs its tokenizer", "found: vocab.json")
    d = make_checkpoint(f"{tmp}/bpe", cfg, t, {"vocab.json": {"a": 0, "b": 1, "ab": 2}, "merges.txt": "#version: 0.2\na b\n"})
    expect_ok(d, f"{tmp}/w.gguf")
    check(read_gguf(f"{tmp}/w.gguf")[0]["d2v.merges_txt"] == "#version: 0.2\na b\n", "merges verbatim")


def test_ctc_without_vocab_refused(tmp):
    cfg, t = tiny_audio(np.random.default_rng(0), "Data2VecAudioForCTC")
    d = make_checkpoint(f"{tmp}/ctc", cfg, t, {"preprocessor_config.json": FE_V5})
    expect_refused(d, f"{tmp}/c.gguf", "Data2VecAudioForCTC", "vocab.json", "--allow-no-tokenizer")
    expect_ok(d, f"{tmp}/c.gguf", "--allow-no-tokenizer")
    d = make_checkpoint(f"{tmp}/ctcbad", cfg, t, {"preprocessor_config.json": FE_V5, "vocab.json": [1, 2]})
    expect_refused(d, f"{tmp}/d.gguf", "vocab.json", "not a JSON object")
    # a base model needs no vocabulary
    cfg, t = tiny_audio(np.random.default_rng(0))
    expect_ok(make_checkpoint(f"{tmp}/base", cfg, t, {"preprocessor_config.json": FE_V5}), f"{tmp}/e.gguf")


def _tied_size_bound(kv, tensors):
    """Bytes a GGUF needs beyond its float data: the metadata strings and each tensor's entry
    (name, dims, type, offset) and alignment padding (< 64 bytes per tensor)."""
    meta = sum(len(k) + len(v.encode()) + 16 for k, v in kv.items() if isinstance(v, str))
    return meta + sum(len(n) + 64 + 64 for n in tensors) + 1024


def test_tied_weights_stored_once(tmp):
    tok = {"tokenizer.json": TOKENIZER_JSON}
    # Transformers 5: the decoder weight and bias are omitted from model.safetensors
    cfg, t = tiny_text_mlm(np.random.default_rng(1), vocab=400, hidden=32)
    d = make_checkpoint(f"{tmp}/v5", cfg, t, tok)
    err = expect_ok(d, f"{tmp}/v5.gguf")
    kv, g = read_gguf(f"{tmp}/v5.gguf")
    check("lm_head.decoder.weight" not in g and "lm_head.bias" not in g, sorted(g))
    check(np.array_equal(g["lm_head.decoder.bias"], t["lm_head.bias"]), "decoder bias")
    st_size = os.path.getsize(f"{d}/model.safetensors")
    gguf_size = os.path.getsize(f"{tmp}/v5.gguf")
    check(gguf_size <= st_size + _tied_size_bound(kv, g),
          f"tied GGUF {gguf_size} bytes > safetensors {st_size} + metadata {_tied_size_bound(kv, g)}")
    check("stored once" in err, err)
    # Transformers 4: pytorch_model.bin holds the copy; it is dropped, the file gets no bigger than v5's
    cfg, t4 = tiny_text_mlm(np.random.default_rng(1), vocab=400, hidden=32, tie_in_file=True)
    d4 = make_checkpoint(f"{tmp}/v4", cfg, {}, tok)
    os.unlink(f"{d4}/model.safetensors")
    write_torch_zip(f"{d4}/pytorch_model.bin", t4)
    expect_ok(d4, f"{tmp}/v4.gguf")
    _, g4 = read_gguf(f"{tmp}/v4.gguf")
    check(sorted(g4) == sorted(g), f"v4 tensors {sorted(set(g4) ^ set(g))}")
    check(os.path.getsize(f"{tmp}/v4.gguf") <= gguf_size + 64, "v4 layout stored the tied copy")
    for n in g:
        check(np.array_equal(g[n], g4[n]), f"{n} differs between the v4 and v5 layouts")
    # untied (tie_word_embeddings false, a different decoder): kept
    cfg, tu = tiny_text_mlm(np.random.default_rng(1), untied=True)
    expect_ok(make_checkpoint(f"{tmp}/untied", cfg, tu, tok), f"{tmp}/u.gguf")
    gu = read_gguf(f"{tmp}/u.gguf")[1]
    check(np.array_equal(gu["lm_head.decoder.weight"], tu["lm_head.decoder.weight"]), "untied decoder kept")
    # untied config without a decoder: Transformers would draw it randomly
    del tu["lm_head.decoder.weight"]
    d = make_checkpoint(f"{tmp}/untied_missing", cfg, tu, tok)
    expect_refused(d, f"{tmp}/x.gguf", "lm_head.decoder.weight", "tie_word_embeddings=false")


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]


def main(argv):
    only = argv[argv.index("-k") + 1] if "-k" in argv else None
    failed = 0
    for test in TESTS:
        if only and only not in test.__name__:
            continue
        with tempfile.TemporaryDirectory(prefix="d2v_layout_") as tmp:
            try:
                test(tmp)
                print(f"ok    {test.__name__}")
            except Failure as e:
                failed += 1
                print(f"FAIL  {test.__name__}: {e}")
    print(f"{os.path.basename(__file__)}: {'all passed' if not failed else f'{failed} FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
