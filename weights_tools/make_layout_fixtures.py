#!/usr/bin/env python3
"""Checkpoint-layout fixtures: tiny models of the existing generators' tables, saved the way
Transformers 5 saves them by default and the way Transformers 4.57 does, then converted.

    ~/.cache/d2v-ref/bin/python weights_tools/make_layout_fixtures.py [--only NAME ...]

Transformers 4.57 comes from ~/.cache/d2v-tf4-pkgs (see make_text_fixtures.py), run in a
subprocess that re-saves the checkpoint Transformers 5 wrote.

  variant (fixture dir)                 base variant   how the checkpoint folder is written
  audio/ctc_v5_layout                   ctc            Wav2Vec2Processor(do_normalize=False).save_pretrained (5.x):
                                                       processor_config.json + vocab.json + tokenizer_config.json
  audio/ctc_v4_layout                   ctc            4.57 re-save: pytorch_model.bin, preprocessor_config.json,
                                                       vocab.json, tokenizer_config.json, special_tokens_map.json
  text/masked_lm_v5_layout              masked_lm      RobertaTokenizerFast.save_pretrained (5.x): tokenizer.json +
                                                       tokenizer_config.json; model.safetensors without the tied tensors
  text/masked_lm_v4_layout              masked_lm      4.57 re-save: pytorch_model.bin with both tied tensors, the slow
                                                       RobertaTokenizer's vocab.json + merges.txt (no tokenizer.json)
  vision/models/model_base_v5_layout    model_base     a processor holding a non-default BeitImageProcessor (5.x):
                                                       processor_config.json {"image_processor": {...}}

Each variant directory is laid out like its base variant's (meta.json, model.gguf, one folder of
Transformers outputs per input set), so the parameterised parity tests run it unchanged.  It also
holds layout_check.json + the reference for tests/test_checkpoint_layouts.cpp: what the processor
or tokenizer that Transformers 5 loads FROM THE SAVED FOLDER makes of real data (jfk.wav; the two
vision images; five sentences), which the C++ side must reproduce from the settings packed in
model.gguf.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common  # noqa: E402
from fixture_common import init_torch_reference, log, save_json, save_npy  # noqa: E402

TF4 = os.path.expanduser("~/.cache/d2v-tf4-pkgs")
LAYOUT_SAMPLES = 32000   # the first 2 s of jfk.wav
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Data2vec learns from speech, text and images.",
         "  Leading spaces, émigré café, naïve — and 12,345 numbers!", "<mask> is the capital of France.",
         "Hello<s>world</s>"]


def run_transformers4(code, *args):
    env = dict(os.environ, PYTHONPATH=TF4 + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    prelude = ("import sys, transformers\n"
               "assert transformers.__version__.startswith('4.'), transformers.__version__\n"
               "transformers.logging.set_verbosity_error()\n")
    r = subprocess.run([sys.executable, "-c", prelude + code, *args], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"Transformers 4.x re-save failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")


def resave_model_with_transformers4(cls_name, src, dst):
    """The checkpoint Transformers 5 wrote, loaded and saved again by 4.57 as pytorch_model.bin."""
    run_transformers4(
        "import transformers\n"
        f"m = getattr(transformers, {cls_name!r}).from_pretrained(sys.argv[1])\n"
        "m.save_pretrained(sys.argv[2], safe_serialization=False)\n", src, dst)


def layout_dir_files(ckpt_dir):
    return sorted(os.listdir(ckpt_dir))


# --------------------------------------------------------------------------------------------
# audio


def audio_variants(names, ckpt_root):
    import make_fixtures as audio
    from transformers import AutoFeatureExtractor, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    wanted = [n for n in ("ctc_v5_layout", "ctc_v4_layout") if n in names]
    if not wanted:
        return []
    for n in wanted:
        audio.VARIANTS[n] = lambda n=n: {**audio.VARIANTS["ctc"](), "layout": n.split("_")[1]}
    base_save = audio.save_checkpoint

    def save_checkpoint(model, spec, ckpt_dir):
        if spec.get("layout") is None:
            return base_save(model, spec, ckpt_dir)
        fixture_common.save_pretrained_fresh(model, ckpt_dir)
        vocab_path = os.path.join(ckpt_dir, "vocab_source.json")
        with open(vocab_path, "w", encoding="utf-8") as f:
            json.dump(audio.VOCAB, f, ensure_ascii=False)
        tok = Wav2Vec2CTCTokenizer(vocab_path)
        os.remove(vocab_path)
        if spec["layout"] == "v5":
            fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False,
                                          return_attention_mask=True)
            Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(ckpt_dir)
            assert not os.path.exists(os.path.join(ckpt_dir, "preprocessor_config.json"))
        else:
            src = ckpt_dir + "_v5_source"
            shutil.rmtree(src, ignore_errors=True)
            os.rename(ckpt_dir, src)
            resave_model_with_transformers4("Data2VecAudioForCTC", src, ckpt_dir)
            with open(vocab_path, "w", encoding="utf-8") as f:
                json.dump(audio.VOCAB, f, ensure_ascii=False)
            run_transformers4(
                "from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor\n"
                "fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,\n"
                "                              do_normalize=True, return_attention_mask=True)\n"
                "Wav2Vec2Processor(feature_extractor=fe, tokenizer=Wav2Vec2CTCTokenizer(sys.argv[1])).save_pretrained(sys.argv[2])\n",
                vocab_path, ckpt_dir)
            os.remove(vocab_path)
            assert os.path.exists(os.path.join(ckpt_dir, "pytorch_model.bin"))
        return tok

    audio.save_checkpoint = save_checkpoint
    inputs = audio.build_inputs()
    pending = []
    for n in wanted:
        audio.run_variant(n, inputs, ckpt_root, pending)
        ckpt_dir = os.path.join(ckpt_root, n)
        fe = AutoFeatureExtractor.from_pretrained(ckpt_dir)
        raw = inputs["jfk"]["raw"][:LAYOUT_SAMPLES]
        values = fe(raw, sampling_rate=16000, return_tensors="np")["input_values"].astype(np.float32)
        vdir = os.path.join(audio.OUT, n)
        save_npy(os.path.join(vdir, "layout_input_values.npy"), values)
        save_json(os.path.join(vdir, "layout_check.json"), {
            "modality": "audio", "raw": "inputs/jfk/raw.npy", "raw_samples": LAYOUT_SAMPLES,
            "expected": "layout_input_values.npy",
            "reference": "AutoFeatureExtractor.from_pretrained(<saved folder>)(raw[:raw_samples], sampling_rate=16000)",
            "do_normalize": bool(fe.do_normalize), "checkpoint_files": layout_dir_files(ckpt_dir),
            "transformers_that_saved_it": "4.57" if n.endswith("v4_layout") else "5.x"})
    return pending


# --------------------------------------------------------------------------------------------
# text


def text_variants(names, ckpt_root):
    import make_text_fixtures as text
    from transformers import AutoTokenizer

    wanted = [n for n in ("masked_lm_v5_layout", "masked_lm_v4_layout") if n in names]
    if not wanted:
        return []
    tok = text.load_tokenizer()
    inputs = text.build_inputs(tok)
    arrays = {s: {k: v for k, v in inp["arrays"].items() if k in text.INPUT_ARRAYS} for s, inp in inputs.items()}
    pending = []
    for n in wanted:
        text.VARIANTS[n] = text.VARIANTS["masked_lm"]
        spec = text.VARIANTS[n]()
        labels = spec["labels"](inputs) if spec.get("labels") else {}
        ckpt_dir = os.path.join(ckpt_root, n)
        log(f"variant {n}")
        res = text.compute_variant(n, arrays, labels, len(tok), ckpt_dir)
        if n.endswith("v5_layout"):
            tok.save_pretrained(ckpt_dir)
            assert sorted(f for f in os.listdir(ckpt_dir) if "token" in f or f in ("vocab.json", "merges.txt")) == \
                ["tokenizer.json", "tokenizer_config.json"], os.listdir(ckpt_dir)
        else:
            src = ckpt_dir + "_v5_source"
            shutil.rmtree(src, ignore_errors=True)
            os.rename(ckpt_dir, src)
            resave_model_with_transformers4("Data2VecTextForMaskedLM", src, ckpt_dir)
            run_transformers4("from transformers import RobertaTokenizer\n"
                              "RobertaTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])\n",
                              text.TOKENIZER_DIR, ckpt_dir)
            assert not os.path.exists(os.path.join(ckpt_dir, "tokenizer.json"))
        res["checkpoint_files"] = layout_dir_files(ckpt_dir)
        text.write_variant(n, res, inputs, labels, tok, None)
        saved_tok = AutoTokenizer.from_pretrained(ckpt_dir)
        ids = [saved_tok(t)["input_ids"] for t in TEXTS]
        vdir = os.path.join(text.OUT, n)
        save_json(os.path.join(vdir, "layout_check.json"), {
            "modality": "text", "texts": TEXTS, "input_ids": ids,
            "reference": "AutoTokenizer.from_pretrained(<saved folder>)(text)['input_ids'] per text",
            "tokenizer_class": type(saved_tok).__name__, "checkpoint_files": layout_dir_files(ckpt_dir),
            "transformers_that_saved_it": "4.57" if n.endswith("v4_layout") else "5.x"})
        pending.append((n, ckpt_dir, os.path.join(vdir, "model.gguf")))
    return pending


# --------------------------------------------------------------------------------------------
# vision


def vision_variants(names, ckpt_root):
    import make_vision_fixtures as vision
    from transformers import AutoImageProcessor, BeitImageProcessor
    from transformers.processing_utils import ProcessorMixin

    n = "model_base_v5_layout"
    if n not in names:
        return []

    class ImageOnlyProcessor(ProcessorMixin):
        """The smallest Transformers 5 processor: saves its image processor nested in processor_config.json."""

        def __init__(self, image_processor=None):
            super().__init__(image_processor)

    vision.VARIANTS[n] = lambda: {**vision.VARIANTS["model_base"](), "layout": "v5"}
    base_save = vision.save_preprocessor

    def save_preprocessor(spec, ckpt_dir):
        if spec.get("layout") != "v5":
            return base_save(spec, ckpt_dir)
        ip = BeitImageProcessor(size={"height": 40, "width": 48}, resample=2, do_center_crop=True,
                                crop_size={"height": 32, "width": 32}, image_mean=[0.4, 0.5, 0.6],
                                image_std=[0.3, 0.2, 0.25])
        ImageOnlyProcessor(image_processor=ip).save_pretrained(ckpt_dir)
        assert not os.path.exists(os.path.join(ckpt_dir, "preprocessor_config.json"))

    vision.save_preprocessor = save_preprocessor
    inputs = vision.build_inputs()
    pending = []
    vision.run_pt_variant(n, inputs, ckpt_root, pending)
    ckpt_dir = os.path.join(ckpt_root, n)
    proc = AutoImageProcessor.from_pretrained(ckpt_dir)
    pv = proc(vision.load_images(), return_tensors="np")["pixel_values"].astype(np.float32)
    vdir = os.path.join(vision.OUT, n)
    save_npy(os.path.join(vdir, "layout_pixel_values.npy"), pv)
    check = {"modality": "vision", "images": ["images/" + f for f in vision.IMAGE_FILES],
             "expected": "layout_pixel_values.npy",
             "reference": "AutoImageProcessor.from_pretrained(<saved folder>)(images)['pixel_values'] (PIL backend)",
             "checkpoint_files": layout_dir_files(ckpt_dir), "transformers_that_saved_it": "5.x"}
    for name, ckpt, out_file, meta, sd in pending:
        if not vision.finish_pt_variant(name, ckpt, out_file, meta, sd):
            raise SystemExit(f"{name}: conversion failed")
    save_json(os.path.join(vdir, "layout_check.json"), check)
    return []


ALL = ["ctc_v5_layout", "ctc_v4_layout", "masked_lm_v5_layout", "masked_lm_v4_layout", "model_base_v5_layout"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=ALL, default=ALL)
    args = ap.parse_args()
    init_torch_reference()
    with tempfile.TemporaryDirectory(prefix="d2v-layout-ckpts-") as root:
        pending = audio_variants(args.only, root) + text_variants(args.only, root)
        vision_variants(args.only, root)
        failed = fixture_common.convert_all(pending)
    if failed:
        raise SystemExit(f"conversion failed for {failed}")
    log("done")


if __name__ == "__main__":
    main()
