#!/usr/bin/env python3
"""Generate the Transformers reference fixtures used by the C++ Data2Vec-audio tests.

Reference environment (CPU only is enough):

    python3 -m venv ~/.cache/d2v-ref
    ~/.cache/d2v-ref/bin/pip install torch transformers safetensors numpy soundfile gguf soxr

(`soxr` is python-soxr from PyPI; it is used for the 8 kHz -> 16 kHz resampling of
the FSDD clips.)  Run from the repository root:

    ~/.cache/d2v-ref/bin/python weights_tools/make_fixtures.py [--only NAME ...]

NAME is an input set ("inputs") or a model variant (model_base, ctc, ...).

What it writes, under tests/fixtures/audio/:

  inputs/jfk/           raw.npy (int16/32768 waveform), input_values.npy
                        (Wav2Vec2FeatureExtractor output, [1, L]), meta.json
  inputs/fsdd_batch/    three 8 kHz FSDD clips resampled to 16 kHz (resampled.<k>.npy,
                        exactly what is fed to the extractor), the padded batch
                        input_values.npy [3, Lmax] and attention_mask.npy (int64), meta.json
  <variant>/model.gguf  tiny randomly initialised model, converted from a saved Hugging Face
                        checkpoint directory with weights_tools/convert.py
  <variant>/<input_set>/<field>.npy
                        Transformers outputs (eager attention, eval mode, no_grad), named after
                        the output field: last_hidden_state, extract_features, logits, embeddings,
                        loss, hidden_states.<i>, attentions.<i>, plus the labels that were fed
                        (labels.npy) and, for CTC heads, transcripts.json.  Padded frames of the
                        batch are kept exactly as Transformers returns them.
  <variant>/meta.json   model class, inputs, output fields, max_abs of every output, versions,
                        notes on the configuration and the loss semantics.

All arrays are C-order float32 (int64 for integer arrays) written with numpy.save.  The
script is deterministic (fixed inputs, torch.manual_seed per variant).  The audio data is
read from <repo>/../shared/data/speech and never copied into the repository apart from the
derived arrays above.  Checkpoint directories are written to a temporary directory (or to
--keep-checkpoints DIR) and converted with `python weights_tools/convert.py <dir> <out>`;
if convert.py does not exist yet the script waits for it (--wait-convert seconds).
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import soundfile as sf
import soxr
import torch
import transformers
from transformers import (
    Data2VecAudioConfig,
    Data2VecAudioForAudioFrameClassification,
    Data2VecAudioForCTC,
    Data2VecAudioForSequenceClassification,
    Data2VecAudioForXVector,
    Data2VecAudioModel,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
)

import fixture_common
from fixture_common import (
    CONVERT,
    REPO,
    add_common_args,
    checkpoint_root,
    collect_outputs,
    init_torch_reference,
    linear_layernorm,
    log,
    max_abs_by_field,
    redraw_parameters,
    rel,
    save_fields,
    save_json,
    save_npy,
    save_pretrained_fresh,
    selected_names,
    to_numpy,
)

DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "speech"))
OUT = os.path.join(REPO, "tests", "fixtures", "audio")

FSDD_FILES = ["fsdd/0_george_0.wav", "fsdd/7_jackson_12.wav", "fsdd/3_theo_5.wav"]
RESAMPLER_DOC = (
    "x = soundfile.read(path, dtype='float64')[0]  (int16/32768); "
    "y = soxr.resample(x, 8000, 16000, quality='HQ').astype(numpy.float32). "
    "python-soxr's resample() = soxr_create(8000, 16000, 1, io_spec(SOXR_FLOAT64_I, SOXR_FLOAT64_I), "
    "soxr_quality_spec(SOXR_HQ, 0), runtime_spec NULL), soxr_process() over input chunks of 24000 samples, "
    "then a flush soxr_process(NULL, 0); output length = exactly 2*len(x) here."
)

# Shared tiny encoder geometry.  Total conv stride 320 / receptive field 400 like the real models.
STRIDE320 = dict(
    conv_dim=(16,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
)
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
)

# CTC vocabulary: specials, word delimiter, letters by (rough) English frequency, apostrophe.
VOCAB_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list("ETAONIHSRDLUMWCFGYPBVKJXQZ") + ["'"]
VOCAB = {t: i for i, t in enumerate(VOCAB_TOKENS)}
FIRST_LETTER_ID = VOCAB["E"]


# --------------------------------------------------------------------------------------------
# helpers (the generic ones are in fixture_common.py)


def make_feature_extractor():
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )


def versions():
    return {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "soxr": soxr.__version__,
        "libsoxr": getattr(soxr, "__libsoxr_version__", None),
        "soundfile": sf.__version__,
    }


# --------------------------------------------------------------------------------------------
# inputs


def build_inputs():
    """Reads the audio, resamples and runs the feature extractor.  Returns the model inputs."""
    fe = make_feature_extractor()

    # jfk: 16 kHz mono int16, used unpadded (batch of one)
    jfk_raw, sr = sf.read(os.path.join(DATA, "jfk.wav"), dtype="float32")
    assert sr == 16000 and jfk_raw.ndim == 1, (sr, jfk_raw.shape)
    jfk = fe(jfk_raw, sampling_rate=16000, return_tensors="np")
    jfk_values = jfk["input_values"].astype(np.float32)
    assert jfk_values.shape == (1, jfk_raw.shape[0])

    # fsdd_batch: 8 kHz clips -> soxr HQ -> 16 kHz float32 -> padded batch
    resampled, raw_lengths = [], []
    for name in FSDD_FILES:
        x, sr = sf.read(os.path.join(DATA, name), dtype="float64")
        assert sr == 8000 and x.ndim == 1, (name, sr, x.shape)
        y = soxr.resample(x, 8000, 16000, quality="HQ").astype(np.float32)
        raw_lengths.append(int(x.shape[0]))
        resampled.append(y)
    # python-soxr's resample() is chunked; check it matches libsoxr's soxr_oneshot() with the
    # same specs, which is the simplest call for the C++ side to make.
    oneshot_identical = True
    for name, y in zip(FSDD_FILES, resampled):
        x, _ = sf.read(os.path.join(DATA, name), dtype="float64")
        y1 = soxr._resample_oneshot(x, 8000, 16000, quality="HQ").astype(np.float32)
        if y1.shape != y.shape or not np.array_equal(y1, y):
            oneshot_identical = False
    batch = fe(
        resampled,
        sampling_rate=16000,
        padding=True,
        return_attention_mask=True,
        return_tensors="np",
    )
    fsdd_values = batch["input_values"].astype(np.float32)
    fsdd_mask = batch["attention_mask"].astype(np.int64)
    assert fsdd_values.shape[0] == len(FSDD_FILES)
    assert [int(m.sum()) for m in fsdd_mask] == [len(y) for y in resampled]

    return {
        "jfk": {
            "raw": jfk_raw.astype(np.float32),
            "input_values": jfk_values,
            "attention_mask": None,
        },
        "fsdd_batch": {
            "resampled": resampled,
            "raw_lengths": raw_lengths,
            "input_values": fsdd_values,
            "attention_mask": fsdd_mask,
            "oneshot_identical": oneshot_identical,
        },
    }


def write_inputs(inputs):
    log("inputs")
    base = os.path.join(OUT, "inputs")
    fe_settings = {
        "class": "Wav2Vec2FeatureExtractor",
        "feature_size": 1,
        "sampling_rate": 16000,
        "padding_value": 0.0,
        "do_normalize": True,
        "return_attention_mask": True,
    }

    j = inputs["jfk"]
    d = os.path.join(base, "jfk")
    save_npy(os.path.join(d, "raw.npy"), j["raw"])
    save_npy(os.path.join(d, "input_values.npy"), j["input_values"])
    save_json(
        os.path.join(d, "meta.json"),
        {
            "files": ["jfk.wav"],
            "read": "soundfile.read(path, dtype='float32') (int16/32768), 16 kHz mono, no resampling",
            "feature_extractor": fe_settings,
            "extractor_call": "fe(raw, sampling_rate=16000, return_tensors='np')  (no padding: "
            "normalisation over the whole clip: (x - mean) / sqrt(var + 1e-7), computed in float32)",
            "num_samples": int(j["raw"].shape[0]),
            "models_run_with_attention_mask": False,
            "versions": versions(),
        },
    )

    f = inputs["fsdd_batch"]
    d = os.path.join(base, "fsdd_batch")
    for k, y in enumerate(f["resampled"]):
        save_npy(os.path.join(d, f"resampled.{k}.npy"), y)
    save_npy(os.path.join(d, "input_values.npy"), f["input_values"])
    save_npy(os.path.join(d, "attention_mask.npy"), f["attention_mask"])
    save_json(
        os.path.join(d, "meta.json"),
        {
            "files": FSDD_FILES,
            "source_sampling_rate": 8000,
            "target_sampling_rate": 16000,
            "resampler": "soxr HQ",
            "resampler_call": "soxr.resample(x_float64, 8000, 16000, quality='HQ').astype(np.float32)",
            "resampler_details": RESAMPLER_DOC,
            "soxr_oneshot_bit_identical": f["oneshot_identical"],
            "raw_lengths": f["raw_lengths"],
            "resampled_lengths": [int(y.shape[0]) for y in f["resampled"]],
            "feature_extractor": fe_settings,
            "extractor_call": "fe([resampled.0, resampled.1, resampled.2], sampling_rate=16000, padding=True, "
            "return_attention_mask=True, return_tensors='np')  (float32 inputs; per-clip normalisation over "
            "the unpadded part, (x - mean) / sqrt(var + 1e-7); padded tail set to padding_value 0.0)",
            "models_run_with_attention_mask": True,
            "versions": versions(),
        },
    )


# --------------------------------------------------------------------------------------------
# models


def perturb_parameters(model, gen):
    """Make every parameter informative for the comparison.

    Transformers' init leaves LayerNorm weight=1/bias=0, many biases at 0 and linear weights at
    std 0.02 (tiny activations).  We redraw: Linear weights ~ N(0, 1/in_features), every bias
    ~ 0.1*N(0,1), LayerNorm weight ~ 1 + 0.2*N(0,1), LayerNorm bias ~ 0.1*N(0,1).  Convolution
    weights keep Transformers' kaiming-normal init.  Done with a dedicated generator so the
    result is deterministic (module by module, each module's parameters in registration order:
    fixture_common.redraw_parameters).
    """

    def rule(module, pname, p, randn):
        if isinstance(module, torch.nn.Conv1d):
            return 0.1 * randn(p) if pname == "bias" else None
        return linear_layernorm(module, pname, p, randn)

    redraw_parameters(model, gen, rule)


def feat_lengths(model, attention_mask, add_adapter=None):
    return model._get_feat_extract_output_lengths(
        torch.as_tensor(attention_mask).sum(-1), add_adapter=add_adapter
    ).tolist()


OUTPUT_FIELDS = ("loss", "logits", "embeddings", "last_hidden_state", "extract_features")


def make_ctc_labels(gen, lengths):
    """Random letter ids (never blank/special) padded with -100."""
    umax = max(lengths)
    labels = torch.full((len(lengths), umax), -100, dtype=torch.long)
    for b, n in enumerate(lengths):
        labels[b, :n] = torch.randint(FIRST_LETTER_ID, len(VOCAB), (n,), generator=gen)
    return labels


def ctc_bias_setup(blank_boost, delimiter_boost):
    """Raise the lm_head bias of <pad> (CTC blank) and '|' so that the greedy transcripts contain
    blanks, repeats and word delimiters (otherwise a random head almost never emits them)."""

    def setup(model, gen):
        with torch.no_grad():
            model.lm_head.bias[VOCAB["<pad>"]] += blank_boost
            model.lm_head.bias[VOCAB["|"]] += delimiter_boost

    return setup


def ctc_min_frames(seq):
    """Minimum number of frames CTC needs for a label sequence (repeats need a blank between)."""
    seq = [int(s) for s in seq if s != -100]
    return len(seq) + sum(1 for a, b in zip(seq, seq[1:]) if a == b)


FIELD_NOTES = (
    "hidden_states.0 = input of encoder layer 0 (features projected, padded frames zeroed, + positional conv "
    "embedding, encoder LayerNorm); hidden_states.i = output of encoder layer i; the last one equals the "
    "encoder output (before the adapter, if any). attentions.i = softmax weights [batch, heads, T, T] of "
    "layer i, padded keys get exactly 0, padded query rows are kept. extract_features = LayerNorm'ed conv "
    "features (before the projection), padded frames NOT zeroed. All padded frames are kept as Transformers "
    "returns them. A scalar loss is saved with shape []."
)

VARIANTS = {}


def variant(fn):
    VARIANTS[fn.__name__] = fn
    return fn


# Each variant function returns a dict:
#   cls, config (Data2VecAudioConfig), inputs (list), bin (bool), tokenizer (bool),
#   labels: callable(model, gen, inputs) -> {input_set: tensor}, setup: callable(model, gen),
#   notes (str)


@variant
def model_base():
    cfg = Data2VecAudioConfig(
        **TINY,
        **STRIDE320,
        conv_bias=False,
        num_conv_pos_embeddings=2,
        conv_pos_kernel_size=5,
        num_conv_pos_embedding_groups=2,
    )
    return dict(
        cls=Data2VecAudioModel,
        config=cfg,
        inputs=["jfk", "fsdd_batch"],
        notes="Base encoder; conv_bias=False, 2 positional conv layers (kernel 5, 2 groups, odd kernel so "
        "nothing is trimmed), default gelu; total conv stride 320 (jfk -> 549 frames). "
        "mask_time_prob keeps its default (0.05) so masked_spec_embed exists but is unused in eval.",
    )


@variant
def model_conv_bias_bin():
    cfg = Data2VecAudioConfig(
        **TINY,
        conv_dim=(24, 24, 24, 24),
        conv_kernel=(8, 5, 4, 2),
        conv_stride=(4, 4, 2, 2),
        conv_bias=True,
        layerdrop=0.5,
        hidden_act="gelu",
        num_conv_pos_embeddings=3,
        conv_pos_kernel_size=4,
        num_conv_pos_embedding_groups=4,
        mask_time_prob=0.0,
    )
    return dict(
        cls=Data2VecAudioModel,
        config=cfg,
        inputs=["fsdd_batch"],
        bin=True,
        notes="conv_bias=True, 4 feature conv layers of 24 channels (kernels 8,5,4,2 strides 4,4,2,2: total "
        "stride 64), layerdrop=0.5 (inactive in eval), hidden_act gelu, 3 positional conv layers with EVEN "
        "kernel 4 (padding 2, last output frame removed), 4 groups; mask_time_prob=0 so there is no "
        "masked_spec_embed. Saved as pytorch_model.bin (torch.save of the state dict), no safetensors.",
    )


@variant
def ctc():
    cfg = Data2VecAudioConfig(
        **TINY,
        **STRIDE320,
        num_conv_pos_embeddings=2,
        conv_pos_kernel_size=7,
        num_conv_pos_embedding_groups=4,
        vocab_size=len(VOCAB),
        pad_token_id=VOCAB["<pad>"],
        bos_token_id=VOCAB["<s>"],
        eos_token_id=VOCAB["</s>"],
        ctc_loss_reduction="mean",
        ctc_zero_infinity=False,
    )

    def labels(model, gen, inputs):
        lab = make_ctc_labels(gen, [5, 8, 3])
        frames = feat_lengths(model, inputs["fsdd_batch"]["attention_mask"])
        for b in range(lab.shape[0]):
            assert ctc_min_frames(lab[b]) <= frames[b], (lab[b], frames[b])
        return {"fsdd_batch": lab}

    return dict(
        cls=Data2VecAudioForCTC,
        config=cfg,
        inputs=["jfk", "fsdd_batch"],
        tokenizer=True,
        labels=labels,
        setup=ctc_bias_setup(1.2, 1.8),
        notes="CTC head, vocab_size=32 (vocab.json in the checkpoint), blank = pad_token_id = 0, "
        "ctc_loss_reduction='mean' (each item's loss divided by its target length, then averaged over the "
        "batch), ctc_zero_infinity=False. Loss input lengths = conv output lengths of attention_mask.sum(-1). "
        "lm_head.bias of <pad> and '|' raised by 1.2 and 1.8 so transcripts contain blanks and spaces. "
        "All fsdd label sequences are feasible (finite loss). jfk is run without labels.",
    )


@variant
def ctc_adapter():
    cfg = Data2VecAudioConfig(
        **TINY,
        **STRIDE320,
        num_conv_pos_embeddings=2,
        conv_pos_kernel_size=5,
        num_conv_pos_embedding_groups=2,
        vocab_size=len(VOCAB),
        pad_token_id=VOCAB["<pad>"],
        bos_token_id=VOCAB["<s>"],
        eos_token_id=VOCAB["</s>"],
        add_adapter=True,
        num_adapter_layers=2,
        adapter_stride=2,
        adapter_kernel_size=3,
        output_hidden_size=48,
        ctc_loss_reduction="sum",
        ctc_zero_infinity=True,
    )

    def labels(model, gen, inputs):
        frames = feat_lengths(model, inputs["fsdd_batch"]["attention_mask"])  # after the adapter
        # items 0 and 1: feasible; item 2: longer than its logit sequence -> infinite loss, zeroed
        lens = [min(2, frames[0]), min(3, frames[1]), frames[2] + 3]
        lab = make_ctc_labels(gen, lens)
        for b in range(2):
            assert ctc_min_frames(lab[b]) <= frames[b], (lab[b], frames[b])
        assert ctc_min_frames(lab[2]) > frames[2]
        return {"fsdd_batch": lab}

    return dict(
        cls=Data2VecAudioForCTC,
        config=cfg,
        inputs=["jfk", "fsdd_batch"],
        tokenizer=True,
        labels=labels,
        setup=ctc_bias_setup(1.5, 0.3),
        notes="CTC head after the adapter: proj Linear(32->48)+LayerNorm(48) (output_hidden_size != hidden_size), "
        "2 adapter layers Conv1d(48->96, kernel 3, stride 2, padding 1)+GLU(dim=channels); lm_head 48->32. "
        "lm_head.bias of <pad> and '|' raised by 1.5 and 0.3. Adapter layerdrop is inactive in eval. The encoder attention mask uses the conv lengths WITHOUT the "
        "adapter; the CTC loss input lengths use lengths WITH the adapter (each layer: (L-1)//2+1). "
        "ctc_loss_reduction='sum', ctc_zero_infinity=True; the third fsdd label sequence is longer than its "
        "logit sequence, so its loss is +inf and is zeroed (loss = sum of the two finite items).",
    )


@variant
def seqcls():
    cfg = Data2VecAudioConfig(
        **TINY,
        **STRIDE320,
        num_conv_pos_embeddings=2,
        conv_pos_kernel_size=5,
        num_conv_pos_embedding_groups=2,
        num_labels=3,
        id2label={0: "yes", 1: "no", 2: "maybe"},
        label2id={"yes": 0, "no": 1, "maybe": 2},
        classifier_proj_size=24,
    )

    def labels(model, gen, inputs):
        return {"fsdd_batch": torch.tensor([2, 0, 1], dtype=torch.long)}

    return dict(
        cls=Data2VecAudioForSequenceClassification,
        config=cfg,
        inputs=["jfk", "fsdd_batch"],
        labels=labels,
        notes="Sequence classification: projector 32->24, masked mean pooling over valid frames (padded frames "
        "zeroed after the projector, sum / number of valid frames; plain mean when no attention_mask), "
        "classifier 24->3. Loss = CrossEntropyLoss (mean) on fsdd_batch labels. jfk run without labels.",
    )


@variant
def seqcls_weighted_regression():
    cfg = Data2VecAudioConfig(
        **TINY,
        **STRIDE320,
        num_conv_pos_embeddings=1,
        conv_pos_kernel_size=3,
        num_conv_pos_embedding_groups=1,
        num_labels=1,
        use_weighted_layer_sum=True,
        classifier_proj_size=16,
    )

    def labels(model, gen, inputs):
        # Transformers uses CrossEntropyLoss(logits.view(-1, 1), labels.view(-1)) even for num_labels == 1,
        # so the only accepted labels are int64 zeros and the loss is identically 0.
        return {"fsdd_batch": torch.zeros(3, dtype=torch.long)}

    def setup(model, gen):
        with torch.no_grad():
            model.layer_weights.copy_(torch.randn(model.layer_weights.shape, generator=gen))

    return dict(
        cls=Data2VecAudioForSequenceClassification,
        config=cfg,
        inputs=["fsdd_batch"],
        labels=labels,
        setup=setup,
        notes="use_weighted_layer_sum=True with non-uniform layer_weights (randn, softmax-normalised at run "
        "time) over the num_hidden_layers+1 hidden states; num_labels=1. NOTE: despite the docstring, "
        "Data2VecAudioForSequenceClassification always uses CrossEntropyLoss; with one class log_softmax is 0, "
        "so the loss is exactly 0 for the only valid labels (int64 zeros). Float labels are rejected.",
    )


@variant
def frame():
    cfg = Data2VecAudioConfig(
        **TINY,
        **STRIDE320,
        num_conv_pos_embeddings=2,
        conv_pos_kernel_size=5,
        num_conv_pos_embedding_groups=2,
        num_labels=4,
        use_weighted_layer_sum=True,
    )

    def labels(model, gen, inputs):
        t = model._get_feat_extract_output_lengths(inputs["fsdd_batch"]["input_values"].shape[1])
        cls = torch.randint(0, 4, (3, int(t)), generator=gen)
        return {"fsdd_batch": torch.nn.functional.one_hot(cls, 4).to(torch.float32)}

    def setup(model, gen):
        with torch.no_grad():
            model.layer_weights.copy_(torch.randn(model.layer_weights.shape, generator=gen))

    return dict(
        cls=Data2VecAudioForAudioFrameClassification,
        config=cfg,
        inputs=["fsdd_batch"],
        labels=labels,
        setup=setup,
        notes="Frame classification, use_weighted_layer_sum=True with non-uniform layer_weights, classifier "
        "32->4 on every frame. Labels are float one-hot [batch, frames, 4]; the loss is CrossEntropyLoss (mean) "
        "of logits.view(-1, 4) against argmax(labels.view(-1, 4)) over ALL batch*frames positions, padded "
        "frames included (the attention mask is not used by the loss).",
    )


@variant
def xvector():
    cfg = Data2VecAudioConfig(
        **TINY,
        **STRIDE320,
        num_conv_pos_embeddings=2,
        conv_pos_kernel_size=5,
        num_conv_pos_embedding_groups=2,
        num_labels=5,
        # The default TDNN structure (kernels (5,3,3,1,1), dilations (1,2,3,1,1)) with narrower layers:
        # the default widths (512,...,1500) make a 23 MB fixture; the base-size benchmark covers them.
        tdnn_dim=(64, 64, 64, 64, 150),
        xvector_output_dim=32,
    )

    def labels(model, gen, inputs):
        return {"fsdd_batch": torch.tensor([4, 1, 3], dtype=torch.long)}

    return dict(
        cls=Data2VecAudioForXVector,
        config=cfg,
        inputs=["jfk", "fsdd_batch"],
        labels=labels,
        notes="XVector head with the default TDNN structure, narrower: tdnn_dim (64,64,64,64,150), tdnn_kernel (5,3,3,1,1), "
        "tdnn_dilation (1,2,3,1,1), xvector_output_dim 32 (weights stored as Linear [out, kernel*in], used as a "
        "conv with weight.view(out, kernel, in).transpose(1, 2)). Statistic pooling (mean and unbiased std, "
        "N-1) uses all TDNN frames without attention_mask; with one it uses hidden[i, :len_i] where "
        "len_i = _get_tdnn_output_lengths(conv lengths), which subtracts (kernel-1) per layer IGNORING the "
        "dilation (i.e. -8 instead of -14), and the slice is clamped to the real TDNN output length "
        "(padded conv frames - 14). For fsdd_batch: conv lengths [14, 21, 11] -> len [6, 13, 3], real TDNN "
        "frames 7 -> frames used [6, 7, 3], which include frames computed from padding. Loss = AMSoftmax (scale 30, margin 0.4, weight 'objective.weight' [32, 5], "
        "column-normalised) on the LOGITS, CrossEntropy mean. num_labels=5. jfk run without labels.",
    )


# --------------------------------------------------------------------------------------------
# running a variant


def save_checkpoint(model, spec, ckpt_dir):
    save_pretrained_fresh(model, ckpt_dir)
    if spec.get("bin"):
        # Transformers 5 only writes safetensors; make a legacy pytorch_model.bin checkpoint.
        st = os.path.join(ckpt_dir, "model.safetensors")
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        torch.save(state, os.path.join(ckpt_dir, "pytorch_model.bin"))
        os.remove(st)
    make_feature_extractor().save_pretrained(ckpt_dir)
    if spec.get("tokenizer"):
        with open(os.path.join(ckpt_dir, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(VOCAB, f, ensure_ascii=False)
        tok = Wav2Vec2CTCTokenizer(os.path.join(ckpt_dir, "vocab.json"))
        tok.save_pretrained(ckpt_dir)
        return tok
    return None


def check_reload(spec, ckpt_dir, model, x, mask):
    """Reload the saved checkpoint and make sure it reproduces the in-memory model."""
    reloaded = spec["cls"].from_pretrained(ckpt_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        a = model(x, attention_mask=mask)
        b = reloaded(x, attention_mask=mask)
    key = "logits" if getattr(a, "logits", None) is not None else "last_hidden_state"
    diff = (getattr(a, key) - getattr(b, key)).abs().max().item()
    assert diff == 0.0, f"reloaded checkpoint differs by {diff}"


def run_variant(name, inputs, ckpt_root, pending_convert):
    log(f"variant {name}")
    spec = VARIANTS[name]()
    seed = 1000 + sorted(VARIANTS).index(name)
    torch.manual_seed(seed)
    cfg = spec["config"]
    cfg._attn_implementation = "eager"
    model = spec["cls"](cfg)
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    perturb_parameters(model, gen)
    if spec.get("setup"):
        spec["setup"](model, gen)
    labels = spec["labels"](model, gen, inputs) if spec.get("labels") else {}

    ckpt_dir = os.path.join(ckpt_root, name)
    tok = save_checkpoint(model, spec, ckpt_dir)

    vdir = os.path.join(OUT, name)
    for sub in spec["inputs"]:
        if os.path.isdir(os.path.join(vdir, sub)):
            shutil.rmtree(os.path.join(vdir, sub))

    meta_outputs, max_abs, extra = {}, {}, {}
    for input_set in spec["inputs"]:
        inp = inputs[input_set]
        x = torch.from_numpy(inp["input_values"])
        mask = None if inp["attention_mask"] is None else torch.from_numpy(inp["attention_mask"])
        batch_run = input_set == "fsdd_batch"
        kwargs = dict(attention_mask=mask, output_hidden_states=batch_run, output_attentions=batch_run)
        if input_set in labels:
            kwargs["labels"] = labels[input_set]
        with torch.no_grad():
            out = model(x, **kwargs)
        fields = collect_outputs(out, OUTPUT_FIELDS, want_hidden=batch_run, want_attn=batch_run)
        if "loss" in fields:
            assert np.isfinite(fields["loss"]).all(), f"{name}/{input_set}: non-finite loss"
        sdir = os.path.join(vdir, input_set)
        names = save_fields(sdir, fields)
        max_abs[input_set] = max_abs_by_field(fields)
        if input_set in labels:
            save_npy(os.path.join(sdir, "labels.npy"), to_numpy(labels[input_set]))
            names.append("labels")
        info = {}
        if mask is not None:
            info["feature_lengths"] = feat_lengths(model, mask, add_adapter=False)
            if cfg.add_adapter:
                info["feature_lengths_after_adapter"] = feat_lengths(model, mask, add_adapter=True)
        else:
            info["feature_lengths"] = [
                int(model._get_feat_extract_output_lengths(x.shape[1], add_adapter=False))
            ]
        info["attention_mask_passed"] = mask is not None
        if isinstance(model, Data2VecAudioForXVector):
            t_enc = info["feature_lengths"] if mask is not None else [x.shape[1]]
            t_pad = int(model._get_feat_extract_output_lengths(x.shape[1]))
            real = t_pad - sum((k - 1) * d for k, d in zip(cfg.tdnn_kernel, cfg.tdnn_dilation))
            info["tdnn_padded_output_frames"] = real
            if mask is not None:
                lens = model._get_tdnn_output_lengths(torch.tensor(info["feature_lengths"])).tolist()
                info["tdnn_output_lengths_as_computed_by_transformers"] = lens
                info["statistics_pooling_frames_used"] = [max(0, min(n, real)) for n in lens]
        if tok is not None:
            ids = torch.argmax(out.logits, dim=-1)
            top2 = torch.topk(out.logits, 2, dim=-1).values
            transcripts = {
                "decode_call": "tokenizer.batch_decode(argmax(logits, -1)) over ALL frames of the padded "
                "logits (default arguments: group repeats, drop <pad>=blank, '|' -> ' ', strip; other "
                "special tokens such as <s>, </s>, <unk> are kept as literal text)",
                "batch_decode": tok.batch_decode(ids),
                "batch_decode_skip_special_tokens": tok.batch_decode(ids, skip_special_tokens=True),
                "argmax_ids": ids.tolist(),
                "min_top1_top2_logit_margin": float((top2[..., 0] - top2[..., 1]).min()),
            }
            if mask is not None:
                lens = info.get("feature_lengths_after_adapter", info["feature_lengths"])
                transcripts["batch_decode_valid_frames_only"] = [
                    tok.decode(ids[b, : lens[b]]) for b in range(ids.shape[0])
                ]
            save_json(os.path.join(sdir, "transcripts.json"), transcripts)
            names.append("transcripts")
        if "loss" in fields and mask is not None and name.startswith("ctc"):
            # per-item CTC loss (reduction='none', zero_infinity as configured) for debugging
            lens = feat_lengths(model, mask)
            lp = torch.log_softmax(out.logits, -1).transpose(0, 1)
            lab = labels[input_set]
            valid = (lab != -100) & (lab != cfg.pad_token_id)
            per_item = torch.nn.functional.ctc_loss(
                lp, lab[valid], torch.tensor(lens), valid.sum(-1), blank=cfg.pad_token_id,
                reduction="none", zero_infinity=False,
            )
            info["ctc_per_item_loss_without_zero_infinity"] = [float(v) for v in per_item]
            info["ctc_target_lengths"] = valid.sum(-1).tolist()
            info["ctc_logit_lengths"] = lens
        meta_outputs[input_set] = names
        extra[input_set] = info

    check_reload(spec, ckpt_dir, model, torch.from_numpy(inputs["fsdd_batch"]["input_values"]),
                 torch.from_numpy(inputs["fsdd_batch"]["attention_mask"]))

    meta = {
        "model_class": spec["cls"].__name__,
        "inputs": spec["inputs"],
        "outputs": meta_outputs,
        "max_abs": max_abs,
        "run_info": extra,
        "config_notes": spec["notes"],
        "field_notes": FIELD_NOTES,
        "checkpoint_files": sorted(os.listdir(ckpt_dir)),
        "config": json.loads(cfg.to_json_string()),
        "seed": seed,
        "parameter_init": "Transformers init, then perturb_parameters() (see make_fixtures.py) with "
        f"torch.Generator().manual_seed({seed})",
        "run": "model.eval(), torch.no_grad(), attn_implementation='eager', CPU float32; fsdd_batch with "
        "attention_mask, output_hidden_states=True, output_attentions=True; jfk without attention_mask",
        "versions": versions(),
    }
    save_json(os.path.join(vdir, "meta.json"), meta)
    pending_convert.append((name, ckpt_dir, os.path.join(vdir, "model.gguf")))


def convert_all(pending, wait_s):
    if not pending:
        return []
    deadline = time.time() + wait_s
    announced = False
    while not os.path.exists(CONVERT):
        if time.time() > deadline:
            log(f"ERROR: {rel(CONVERT)} did not appear within {wait_s} s; no model.gguf written")
            return [n for n, _, _ in pending]
        if not announced:
            log(f"waiting for {rel(CONVERT)} to exist (up to {wait_s} s) ...")
            announced = True
        time.sleep(10)
    return fixture_common.convert_all(pending)


def write_other_modalities(ckpt_root):
    """Tiny text and vision model files: the 'model of another modality' inputs of the audio tests."""
    from transformers import Data2VecTextConfig, Data2VecTextModel, Data2VecVisionConfig, Data2VecVisionModel

    out_dir = os.path.join(REPO, "tests", "fixtures", "other")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    models = {
        "data2vec-text": Data2VecTextModel(Data2VecTextConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                              num_attention_heads=2, intermediate_size=20,
                                                              max_position_embeddings=20)),
        "data2vec-vision": Data2VecVisionModel(Data2VecVisionConfig(image_size=32, patch_size=16, hidden_size=16,
                                                                    num_hidden_layers=1, num_attention_heads=2,
                                                                    intermediate_size=20)),
    }
    pending = []
    for arch, model in models.items():
        ckpt = os.path.join(ckpt_root, arch)
        model.save_pretrained(ckpt)
        if arch == "data2vec-text":  # convert.py refuses a text model without its tokenizer
            for f in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(os.path.join(REPO, "tests", "fixtures", "text", "tokenizer", f), ckpt)
        pending.append((arch, ckpt, os.path.join(out_dir, arch + ".gguf")))
    return pending


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(ap, VARIANTS)
    ap.add_argument("--wait-convert", type=int, default=1800,
                    help="seconds to wait for weights_tools/convert.py to appear (default 1800)")
    ap.add_argument("--no-gguf", action="store_true", help="skip the convert.py step")
    args = ap.parse_args()

    init_torch_reference()
    names = selected_names(ap, args, VARIANTS)

    inputs = build_inputs()
    if "inputs" in names:
        write_inputs(inputs)

    ckpt_root, tmp = checkpoint_root(args.keep_checkpoints, "d2v-fixture-ckpts-")
    try:
        pending = []
        for n in names:
            if n != "inputs":
                run_variant(n, inputs, ckpt_root, pending)
        if not args.only:
            pending += write_other_modalities(ckpt_root)
        failed = [] if args.no_gguf else convert_all(pending, args.wait_convert)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if failed:
        log(f"conversion failed for: {failed}")
        sys.exit(1)
    log("done")


if __name__ == "__main__":
    main()
