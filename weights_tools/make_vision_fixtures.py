#!/usr/bin/env python3
"""Generate the Transformers reference fixtures used by the C++ Data2Vec-vision model tests.

Reference environment (CPU only is enough), as for the audio fixtures:

    python3 -m venv ~/.cache/d2v-ref
    ~/.cache/d2v-ref/bin/pip install torch transformers safetensors numpy gguf pillow

The three TensorFlow variants need the TF classes (TFData2VecVision*), which exist only in
Transformers 4.x.  A second throwaway environment (about 1 GB, ~1 minute to install with a warm
network; no torch in it):

    python3 -m venv ~/.cache/d2v-tf
    ~/.cache/d2v-tf/bin/pip install tensorflow-cpu tf-keras "transformers==4.57.*" h5py numpy pillow gguf

(what was used: tensorflow 2.21.0, tf-keras 2.21.0, transformers 4.57.6, h5py 3.14.0, gguf 0.19.0,
numpy 2.4.6, Python 3.11; pip also pulls the `tensorflow` package itself as a dependency of
tensorflow-cpu.)  The TF checkpoints are converted by running convert.py with that environment's
python, since convert.py needs h5py for tf_model.h5 and the reference environment has none.  Run from the
repository root:

    ~/.cache/d2v-ref/bin/python weights_tools/make_vision_fixtures.py [--only NAME ...]

NAME is "inputs" or a variant (model_base, ..., tf_semantic_segmentation).  The TF variants run
weights_tools/make_vision_fixtures_tf.py with --tf-python (default ~/.cache/d2v-tf/bin/python);
--no-tf skips them.

What it writes, under tests/fixtures/vision/models/:

  inputs/<set>/pixel_values.npy   float32 [2, 3, H, W]: BeitImageProcessorPil (Transformers 5 PIL
                                  backend) of [coco_000000039769.png, ade20k_val_00000001.jpg]
                                  resized to H x W (bicubic, no crop, rescale 1/255, mean = std = 0.5)
  inputs/masked_32x32/bool_masked_pos.npy   int64 [2, 16] (1 = masked patch)
  inputs/<set>/meta.json          how the set was made
  <variant>/model.gguf            tiny random model converted with weights_tools/convert.py from a
                                  Hugging Face checkpoint folder (config.json + model.safetensors or
                                  tf_model.h5 + preprocessor_config.json)
  <variant>/<set>/<field>.npy     outputs: last_hidden_state, pooler_output, logits, loss,
                                  hidden_states.<i>, attentions.<i>, auxiliary_logits (segmentation,
                                  captured with a forward hook: not a Transformers output field),
                                  labels (what was fed), and for TF variants tf_<field> where the TF
                                  class computes something else than the PyTorch class
  <variant>/meta.json             model_class, framework, inputs, outputs, call_kwargs,
                                  constructor_kwargs, max_abs of every output, versions, notes

Variants (tiny: image 32x32, patch 8 -> 4x4 grid, hidden 32, 4 heads, intermediate 37):
  model_base                     per-layer relative bias, mean-pooling pooler, layer scale; also on 32x48
  model_shared_bias_abs_pos_cls  shared relative bias + absolute position embeddings, CLS pooling, no layer scale
  model_mask_token               mask token (bool_masked_pos), absolute positions, no relative bias, no pooler
  model_interpolate              absolute + per-layer + shared bias on 32x32 / 32x48 / 24x40 inputs
  model_nonsquare_config         image_size [32, 48] (Transformers' scrambled non-square relative bias)
  image_classification           5 named labels, labels -> loss
  semantic_segmentation          UperNet + auxiliary FCN head, 6 labels, labels -> loss, auxiliary_logits
  tf_model, tf_image_classification, tf_semantic_segmentation
                                 the TF classes of Transformers 4.57 (tf_model.h5 -> convert.py); for
                                 segmentation logits/loss are the PyTorch class on the converted weights
                                 (TF's PSP differs) and TF's are tf_logits / tf_loss
Each variant's meta.json "notes" spells out the Transformers semantics the fixture pins down.

All arrays are C-order float32 (int64 for integer arrays).  Models: eager attention, eval(),
no_grad; every parameter / BatchNorm statistic is redrawn with a seeded generator
(perturb_parameters) so nothing trivial (zero bias tables, zero cls/mask tokens, unit LayerNorms)
hides a bug.  Deterministic: fixed inputs, seed = 1000 + crc32(variant name) % 9000.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import zlib

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import (
    Data2VecVisionConfig,
    Data2VecVisionForImageClassification,
    Data2VecVisionForSemanticSegmentation,
    Data2VecVisionModel,
)

try:  # Transformers 5: explicit PIL backend
    from transformers import BeitImageProcessorPil as ImageProcessor
except ImportError:  # pragma: no cover - Transformers 4.x
    from transformers import BeitImageProcessor as ImageProcessor

sys.dont_write_bytecode = True
from fixture_common import (  # noqa: E402
    CONVERT,
    REPO,
    add_common_args,
    checkpoint_root,
    collect_outputs,
    convert_checkpoint,
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

IMAGES = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "images"))
OUT = os.path.join(REPO, "tests", "fixtures", "vision", "models")
TF_HELPER = os.path.join(REPO, "weights_tools", "make_vision_fixtures_tf.py")
DEFAULT_TF_PYTHON = os.path.expanduser("~/.cache/d2v-tf/bin/python")

IMAGE_FILES = ["coco_000000039769.png", "ade20k_val_00000001.jpg"]
ADE_ANNOTATION = "ade20k_val_00000001.annotation.png"
COCO_PANOPTIC = "coco_000000039769_panoptic.png"

# input set -> (height, width, with bool_masked_pos)
INPUT_SETS = {
    "pair_32x32": (32, 32, False),
    "pair_32x48": (32, 48, False),
    "pair_24x40": (24, 40, False),
    "masked_32x32": (32, 32, True),
}
MASK_SEED = 4321
MASKED_PER_IMAGE = 6

TINY = dict(
    image_size=32,
    patch_size=8,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=37,
)
CLS_NAMES = {0: "cat", 1: "remote", 2: "couch", 3: "wall", 4: "floor"}
SEG_NAMES = {0: "wall", 1: "building", 2: "sky", 3: "floor", 4: "tree", 5: "ceiling"}


# --------------------------------------------------------------------------------------------
# helpers (the generic ones are in fixture_common.py)


def versions():
    import PIL

    return {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
    }


def variant_seed(name):
    return 1000 + zlib.crc32(name.encode()) % 9000


def make_processor(height, width, reduce_labels=False):
    return ImageProcessor(
        size={"height": height, "width": width},
        do_center_crop=False,
        do_reduce_labels=reduce_labels,
    )


# --------------------------------------------------------------------------------------------
# inputs


def load_images():
    return [Image.open(os.path.join(IMAGES, f)).convert("RGB") for f in IMAGE_FILES]


def build_inputs():
    images = load_images()
    sets = {}
    for name, (h, w, masked) in INPUT_SETS.items():
        proc = make_processor(h, w)
        pv = proc(images, return_tensors="np")["pixel_values"].astype(np.float32)
        assert pv.shape == (2, 3, h, w), pv.shape
        entry = {"pixel_values": pv, "size": (h, w)}
        if masked:
            n = (h // TINY["patch_size"]) * (w // TINY["patch_size"])
            rng = np.random.default_rng(MASK_SEED)
            mask = np.zeros((2, n), dtype=np.int64)
            for b in range(2):
                mask[b, rng.choice(n, MASKED_PER_IMAGE, replace=False)] = 1
            assert not np.array_equal(mask[0], mask[1])
            entry["bool_masked_pos"] = mask
        sets[name] = entry
    return sets


def write_inputs(sets):
    log("inputs")
    for name, entry in sets.items():
        d = os.path.join(OUT, "inputs", name)
        if os.path.isdir(d):
            shutil.rmtree(d)
        h, w = entry["size"]
        save_npy(os.path.join(d, "pixel_values.npy"), entry["pixel_values"])
        meta = {
            "files": [f"../shared/data/images/{f}" for f in IMAGE_FILES],
            "read": "PIL.Image.open(path).convert('RGB')",
            "image_processor": json.loads(make_processor(h, w).to_json_string()),
            "image_processor_class": ImageProcessor.__name__,
            "processor_call": "processor([coco, ade], return_tensors='np')['pixel_values']: resize each image to "
            f"{h}x{w} (height x width, aspect ratio NOT kept) with PIL bicubic, rescale 1/255, normalise "
            "(x - 0.5) / 0.5; no center crop",
            "pixel_values_shape": list(entry["pixel_values"].shape),
            "versions": versions(),
        }
        if "bool_masked_pos" in entry:
            save_npy(os.path.join(d, "bool_masked_pos.npy"), entry["bool_masked_pos"])
            meta["bool_masked_pos"] = (
                f"int64 [2, num_patches]; 1 = patch replaced by the mask token; {MASKED_PER_IMAGE} random patches per "
                f"image (numpy default_rng({MASK_SEED}).choice per item); pass to Transformers as .bool()"
            )
            meta["masked_patch_indices"] = [np.flatnonzero(m).tolist() for m in entry["bool_masked_pos"]]
        save_json(os.path.join(d, "meta.json"), meta)


def segmentation_labels(height, width, num_labels):
    """Labels [2, H, W] int64 for the pair [coco, ade] at the input size.

    ade: the ADE20k annotation (class ids 0..150, 0 = 'other') with do_reduce_labels semantics
    (0 -> 255 = ignored, c -> c-1), resized NEAREST to W x H with PIL, then every kept id folded
    into the tiny label space as id % num_labels.
    coco: the COCO panoptic PNG (segment id = R + 256 G + 65536 B, 0 = unlabelled) resized NEAREST,
    0 -> 255, segment id -> id % num_labels (a stand-in class map with real region shapes).
    """
    ade = Image.open(os.path.join(IMAGES, ADE_ANNOTATION))
    assert ade.mode == "L"
    ade = np.array(ade.resize((width, height), Image.NEAREST)).astype(np.int64)
    ade = np.where(ade == 0, 255, (ade - 1) % num_labels)
    pan = Image.open(os.path.join(IMAGES, COCO_PANOPTIC)).convert("RGB")
    pan = np.array(pan.resize((width, height), Image.NEAREST)).astype(np.int64)
    seg_id = pan[..., 0] + 256 * pan[..., 1] + 65536 * pan[..., 2]
    coco = np.where(seg_id == 0, 255, seg_id % num_labels)
    return np.stack([coco, ade])


SEG_LABEL_NOTES = (
    "labels [2, H, W] int64 at the input resolution: item 0 (coco) = COCO panoptic segment id "
    "(R + 256G + 65536B, resized NEAREST) % num_labels with 0 -> 255; item 1 (ade) = ADE20k annotation resized "
    "NEAREST with do_reduce_labels semantics (0 -> 255, c -> c-1) and then % num_labels. 255 = "
    "semantic_loss_ignore_index. (Transformers 5.23's BeitImageProcessorPil would resize segmentation maps with "
    "BICUBIC, i.e. interpolate class ids, so the processor is not used for the labels.)"
)


# --------------------------------------------------------------------------------------------
# parameter perturbation (PyTorch)


def perturb_parameters(model, gen):
    """Redraw every parameter and BatchNorm statistic (module by module, in module order):

    Linear weight N(0, 1/in), Conv2d weight N(0, 1/(in*kh*kw)), ConvTranspose2d weight N(0, 1/in)
    (kernel 2 stride 2: one tap per output pixel), every bias 0.1*N(0,1), LayerNorm/BatchNorm
    weight 1 + 0.2*N(0,1) and bias 0.1*N(0,1), BatchNorm running_mean 0.1*N(0,1) and running_var
    exp(0.3*N(0,1)), layer-scale lambda_1/lambda_2 0.5*N(0,1), relative_position_bias_table
    N(0,1), cls_token / mask_token N(0,1), position_embeddings 0.5*N(0,1).
    An unknown parameter is an error.  (Linear and LayerNorm: fixture_common.linear_layernorm; the
    visiting order: fixture_common.redraw_parameters.)
    """

    def rule(module, pname, p, randn):
        if isinstance(module, torch.nn.ConvTranspose2d) and pname == "weight":
            return randn(p) / math.sqrt(module.in_channels)
        if isinstance(module, torch.nn.Conv2d) and pname == "weight":
            return randn(p) / math.sqrt(p[0].numel())
        if pname == "bias" and isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            return 0.1 * randn(p)
        if isinstance(module, torch.nn.BatchNorm2d) and pname == "weight":
            return 1.0 + 0.2 * randn(p)
        if isinstance(module, torch.nn.BatchNorm2d) and pname == "bias":
            return 0.1 * randn(p)
        if pname == "running_mean":
            return 0.1 * randn(p)
        if pname == "running_var":
            return torch.exp(0.3 * randn(p))
        if pname in ("lambda_1", "lambda_2"):
            return 0.5 * randn(p)
        if pname in ("relative_position_bias_table", "cls_token", "mask_token"):
            return randn(p)
        if pname == "position_embeddings":
            return 0.5 * randn(p)
        return linear_layernorm(module, pname, p, randn)

    redraw_parameters(model, gen, rule, buffers=("running_mean", "running_var"), strict=True, require_all=True)


# --------------------------------------------------------------------------------------------
# variants

VARIANTS = {}


def variant(fn):
    VARIANTS[fn.__name__] = fn
    return fn


# Each variant returns a dict: cls (PyTorch class) or tf_class, config kwargs, constructor_kwargs,
# inputs (list of sets), call_kwargs {set: {...}}, labels callable(inputs) -> {set: ndarray},
# notes.

POOLER_NOTES = (
    "Data2VecVisionModel(config) has add_pooling_layer=False by default (pooler_output None, and "
    "from_pretrained drops pooler weights unless add_pooling_layer=True is passed); these fixtures pass "
    "add_pooling_layer=True where pooler_output is listed. Pooler: use_mean_pooling=True -> "
    "LayerNorm(mean of the patch tokens, CLS excluded) with its own weights 'pooler.layernorm.*', and the "
    "model's final 'layernorm' is Identity (last_hidden_state = last layer output); use_mean_pooling=False -> "
    "the model applies its final LayerNorm 'layernorm.*' to every token (last_hidden_state) and pooler_output = "
    "last_hidden_state[:, 0] (CLS after that LayerNorm, no parameters)."
)


@variant
def model_base():
    return dict(
        cls=Data2VecVisionModel,
        config=dict(
            **TINY,
            num_hidden_layers=3,
            use_relative_position_bias=True,
            use_shared_relative_position_bias=False,
            use_absolute_position_embeddings=False,
            use_mean_pooling=True,
            layer_scale_init_value=0.1,
        ),
        constructor_kwargs={"add_pooling_layer": True},
        inputs=["pair_32x32", "pair_32x48"],
        call_kwargs={"pair_32x32": {}, "pair_32x48": {}},
        notes="Per-layer relative position bias (each layer has its own table [(2*4-1)^2+3, 4] = [52, 4]), no "
        "absolute position embeddings, mean pooling (pooler LayerNorm), layer scale lambdas (perturbed), 3 layers. "
        "pair_32x48 is run WITHOUT interpolate_pos_encoding: Transformers always resizes the relative position bias "
        "table to the input's patch grid (4x6 here), see model_interpolate's notes. " + POOLER_NOTES,
    )


@variant
def model_shared_bias_abs_pos_cls():
    return dict(
        cls=Data2VecVisionModel,
        config=dict(
            **TINY,
            num_hidden_layers=2,
            use_relative_position_bias=False,
            use_shared_relative_position_bias=True,
            use_absolute_position_embeddings=True,
            use_mean_pooling=False,
            layer_scale_init_value=0.0,
        ),
        constructor_kwargs={"add_pooling_layer": True},
        inputs=["pair_32x32"],
        call_kwargs={"pair_32x32": {}},
        notes="One relative position bias table shared by all layers (encoder.relative_position_bias), absolute "
        "position embeddings [1, 17, 32], layer_scale_init_value=0 (no lambda_1/lambda_2 tensors), "
        "use_mean_pooling=False: final LayerNorm 'layernorm' on all tokens, pooler_output = CLS token of "
        "last_hidden_state. " + POOLER_NOTES,
    )


@variant
def model_mask_token():
    return dict(
        cls=Data2VecVisionModel,
        config=dict(
            **TINY,
            num_hidden_layers=2,
            use_mask_token=True,
            use_relative_position_bias=False,
            use_shared_relative_position_bias=False,
            use_absolute_position_embeddings=True,
            use_mean_pooling=True,
            layer_scale_init_value=0.1,
        ),
        constructor_kwargs={},
        inputs=["masked_32x32", "pair_32x32"],
        call_kwargs={"masked_32x32": {"bool_masked_pos": "inputs/masked_32x32/bool_masked_pos.npy"}, "pair_32x32": {}},
        notes="use_mask_token=True: embeddings.mask_token [1, 1, 32] replaces the patch embedding of every masked patch "
        "(emb * (1 - m) + mask_token * m) BEFORE the CLS token is prepended and the absolute position embeddings are "
        "added. No relative position bias at all (plain softmax(QK^T/sqrt(d)) attention). Default constructor "
        "(add_pooling_layer=False): there is NO pooler_output. pair_32x32 is run without bool_masked_pos.",
    )


@variant
def model_interpolate():
    return dict(
        cls=Data2VecVisionModel,
        config=dict(
            **TINY,
            num_hidden_layers=2,
            use_relative_position_bias=True,
            use_shared_relative_position_bias=True,
            use_absolute_position_embeddings=True,
            use_mean_pooling=True,
            layer_scale_init_value=0.1,
        ),
        constructor_kwargs={"add_pooling_layer": True},
        inputs=["pair_32x32", "pair_32x48", "pair_24x40"],
        call_kwargs={s: {"interpolate_pos_encoding": True} for s in ("pair_32x32", "pair_32x48", "pair_24x40")},
        check_flag_noop=True,
        notes="Square config (32x32, 4x4 patch grid) run on other sizes with interpolate_pos_encoding=True: 32x48 (4x6 "
        "grid: width up) and 24x40 (3x5 grid: height down, width up). Absolute position embeddings AND per-layer "
        "relative bias AND the shared relative bias (both biases are added to the scores). "
        "Absolute position embeddings: if the patch count differs from the config's or H != W, the 16 patch "
        "positions are reshaped [1, 4, 4, C] -> [1, C, 4, 4], F.interpolate(size=(H//patch, W//patch), "
        "mode='bicubic', align_corners=False) (A = -0.75, border-clamped taps, no antialias) and flattened back; the "
        "CLS position embedding is kept. This happens WHETHER OR NOT interpolate_pos_encoding is passed (the "
        "embeddings never see the flag). Relative position bias (always, for any input size): the first "
        "(2*4-1)^2 = 49 rows of the table, viewed [1, 7, 7, heads] -> [1, heads, 7, 7], are resized with "
        "F.interpolate(size=(2*gh-1, 2*gw-1), mode='bilinear', align_corners=False) (identity at the same size), "
        "flattened back and followed by the 3 unchanged CLS rows; the index is the usual BEiT relative position "
        "index for the new gh x gw grid. With interpolate_pos_encoding=True the resulting [heads, N+1, N+1] bias is "
        "bilinearly resized to (N+1, N+1), its own size, i.e. unchanged: the flag has NO effect on the output "
        "(checked: run_info.flag_false_max_abs_diff).",
    )


@variant
def model_nonsquare_config():
    return dict(
        cls=Data2VecVisionModel,
        config=dict(
            **dict(TINY, image_size=[32, 48]),
            num_hidden_layers=2,
            use_relative_position_bias=True,
            use_shared_relative_position_bias=False,
            use_absolute_position_embeddings=False,
            use_mean_pooling=True,
            layer_scale_init_value=0.1,
        ),
        constructor_kwargs={"add_pooling_layer": True},
        inputs=["pair_32x48", "pair_32x32"],
        call_kwargs={"pair_32x48": {}, "pair_32x32": {}},
        preprocessor_size=(32, 48),
        check_nonsquare_bias=True,
        notes="Non-square config image_size=[32, 48] (4x6 patch grid, table [(2*4-1)*(2*6-1)+3, 4] = [80, 4]). "
        "Transformers' relative position bias views the first 77 table rows as [1, 2*6-1 = 11, 2*4-1 = 7, heads] "
        "(width and height SWAPPED relative to the table's row-major (dh, dw) layout) and bilinearly resizes that "
        "11x7 grid to (2*gh-1, 2*gw-1) = 7x11 EVEN AT THE NATIVE SIZE, so the bias a non-square model applies is a "
        "resampled, scrambled version of its table (run_info.native_bias_vs_direct_gather_max_abs_diff). These "
        "fixtures reproduce that behaviour. Absolute position embeddings are impossible with a non-square config "
        "(interpolate_pos_encoding assumes a square grid: RuntimeError 'shape [1, 4, 4, 32] is invalid for input "
        "of size 768' even at the native size), so they are off here.",
    )


@variant
def image_classification():
    return dict(
        cls=Data2VecVisionForImageClassification,
        config=dict(
            **TINY,
            num_hidden_layers=2,
            use_relative_position_bias=True,
            use_absolute_position_embeddings=False,
            use_mean_pooling=True,
            layer_scale_init_value=0.1,
            num_labels=5,
            id2label=CLS_NAMES,
            label2id={v: k for k, v in CLS_NAMES.items()},
        ),
        constructor_kwargs={},
        inputs=["pair_32x32"],
        call_kwargs={"pair_32x32": {"labels": "labels.npy"}},
        labels=lambda inputs: {"pair_32x32": np.array([0, 3], dtype=np.int64)},
        notes="Image classification: the backbone always has the pooler (mean of patch tokens + pooler.layernorm), "
        "classifier Linear(32 -> 5) on pooler_output. labels [2] int64 -> loss = CrossEntropyLoss (mean over the batch); "
        "problem_type is inferred as single_label_classification (num_labels > 1, integer labels).",
    )


def seg_config():
    return dict(
        **TINY,
        num_hidden_layers=4,
        use_relative_position_bias=True,
        use_absolute_position_embeddings=False,
        use_mean_pooling=True,
        layer_scale_init_value=0.1,
        out_indices=[1, 2, 4, 5],
        pool_scales=[1, 2, 3, 6],
        use_auxiliary_head=True,
        auxiliary_loss_weight=0.4,
        auxiliary_channels=24,
        auxiliary_num_convs=2,
        auxiliary_concat_input=True,
        semantic_loss_ignore_index=255,
        num_labels=6,
        id2label=SEG_NAMES,
        label2id={v: k for k, v in SEG_NAMES.items()},
    )


SEG_NOTES = (
    "UperNet segmentation, 4 layers, out_indices [1, 2, 4, 5]: Transformers keeps hidden_states[k] for every k with "
    "k + 1 in out_indices, i.e. hidden_states[0] (embedding output), [1], [3], [4] (= last layer output) -- "
    "out_indices [0, 1, 2, 3] would select only THREE features. Each feature drops CLS and is reshaped [B, 32, 4, 4] "
    "(patch_resolution = config.image_size // patch_size, so only the config's input size works: other sizes raise "
    "or mis-reshape even with interpolate_pos_encoding=True). fpn1 = ConvT(2,2)+BatchNorm+GELU(erf)+ConvT(2,2) -> "
    "16x16, fpn2 = ConvT(2,2) -> 8x8, fpn3 = identity 4x4, fpn4 = MaxPool(2) -> 2x2. decode_head (UperHead, "
    "channels = hidden_size = 32): PSP on the 2x2 map with AdaptiveAvgPool2d(1, 2, 3, 6) (scales 3 and 6 are "
    "LARGER than the 2x2 input: adaptive bins start=floor(i*in/out), end=ceil((i+1)*in/out)), each 1x1 "
    "ConvLayer(conv no bias + BatchNorm + ReLU), bilinear (align_corners=False) back to 2x2, concat with the "
    "input -> psp_bottleneck 3x3; lateral 1x1 convs, top-down bilinear adds, fpn 3x3 convs, everything resized "
    "bilinearly to 16x16, fpn_bottleneck 3x3, classifier 1x1 -> logits [B, 6, 16, 16] = 4 x patch grid (1/2 of "
    "the input here because patch_size is 8; 1/4 for patch 16 models). auxiliary_head (FCNHead, in_index 2 = the "
    "fpn3 4x4 map, auxiliary_channels 24, auxiliary_num_convs 2, auxiliary_concat_input True -> conv_cat on "
    "concat(input, convs output), classifier 1x1) -> auxiliary_logits [B, 6, 4, 4], only used by the loss "
    "(saved from a forward hook). Loss = CE(bilinear(logits -> label size), labels, ignore_index 255, mean over "
    "non-ignored pixels) + 0.4 * the same for auxiliary_logits. BatchNorm eps 1e-5, eval mode (running stats)."
)


@variant
def semantic_segmentation():
    return dict(
        cls=Data2VecVisionForSemanticSegmentation,
        config=seg_config(),
        constructor_kwargs={},
        inputs=["pair_32x32"],
        call_kwargs={"pair_32x32": {"labels": "labels.npy"}},
        labels=lambda inputs: {"pair_32x32": segmentation_labels(32, 32, 6)},
        reduce_labels=True,
        notes=SEG_NOTES + " " + SEG_LABEL_NOTES,
    )


TF_NOTES = (
    "TensorFlow variant: built with Transformers {tfv} {tfcls} (tiny config), every weight redrawn "
    "(make_vision_fixtures_tf.perturb_tf_weights), run with training=False, saved with save_pretrained "
    "(tf_model.h5 + config.json; preprocessor_config.json added), converted with convert.py from tf_model.h5. "
    "Fields are the TF outputs unless listed in tf_fields_replaced: there the TF class computes something else than "
    "the PyTorch class, so <field>.npy is the Transformers {ptv} PyTorch class's output for the SAME weights "
    "(loaded from model.gguf, names mapped as in run_info.pt_load) and TF's own value is tf_<field>.npy. "
    "pt_vs_tf_max_abs_diff compares the PyTorch class on the converted weights with TF for every field."
)


@variant
def tf_model():
    return dict(
        tf_class="TFData2VecVisionModel",
        pt_cls=Data2VecVisionModel,
        config=dict(
            **TINY,
            num_hidden_layers=2,
            use_mask_token=True,
            use_relative_position_bias=True,
            use_shared_relative_position_bias=False,
            use_absolute_position_embeddings=True,
            use_mean_pooling=True,
            layer_scale_init_value=0.1,
        ),
        constructor_kwargs={"add_pooling_layer": True},
        inputs=["pair_32x32", "masked_32x32"],
        call_kwargs={"pair_32x32": {}, "masked_32x32": {"bool_masked_pos": "inputs/masked_32x32/bool_masked_pos.npy"}},
        notes="Mask token, absolute position embeddings, per-layer relative position bias, mean pooling with pooler "
        "(add_pooling_layer=True, TF default is False like PyTorch). TF models accept only the config's image size.",
    )


@variant
def tf_image_classification():
    return dict(
        tf_class="TFData2VecVisionForImageClassification",
        pt_cls=Data2VecVisionForImageClassification,
        config=dict(
            **TINY,
            num_hidden_layers=2,
            use_relative_position_bias=False,
            use_shared_relative_position_bias=True,
            use_absolute_position_embeddings=False,
            use_mean_pooling=True,
            layer_scale_init_value=0.1,
            num_labels=5,
            id2label=CLS_NAMES,
            label2id={v: k for k, v in CLS_NAMES.items()},
        ),
        constructor_kwargs={},
        inputs=["pair_32x32"],
        call_kwargs={"pair_32x32": {"labels": "labels.npy"}},
        labels=lambda inputs: {"pair_32x32": np.array([2, 4], dtype=np.int64)},
        tf_replaced=["loss"],
        notes="Shared relative position bias, mean pooling. (use_mean_pooling=False cannot be used with the TF classes "
        "of Transformers 4.57: TFData2VecVisionMainLayer.build() builds the final 'layernorm' with input shape "
        "(None, hidden_size), and calling it on [B, N+1, hidden] then fails with InvalidArgumentError 'Input to "
        "reshape is a tensor with 32 values, but the requested shape has 17'.) TF's loss (TFSequenceClassificationLoss, reduction NONE) is PER EXAMPLE, shape [2] "
        "(tf_loss.npy); loss.npy is the PyTorch class's scalar mean CrossEntropy.",
    )


@variant
def tf_semantic_segmentation():
    return dict(
        tf_class="TFData2VecVisionForSemanticSegmentation",
        pt_cls=Data2VecVisionForSemanticSegmentation,
        config=seg_config(),
        constructor_kwargs={},
        inputs=["pair_32x32"],
        call_kwargs={"pair_32x32": {"labels": "labels.npy"}},
        labels=lambda inputs: {"pair_32x32": np.where((l := segmentation_labels(32, 32, 6)) == 255, 0, l)},
        reduce_labels=True,
        tf_replaced=["logits", "loss"],
        extra_pt_fields=["auxiliary_logits"],
        tf_reload_exempt=["loss"],
        emulate_tf_psp=True,
        notes="Same config as semantic_segmentation. The TF UperHead differs from PyTorch: its pyramid pooling loop "
        "feeds each pool scale the PREVIOUS scale's conv output (x = ppm_out) instead of the 2x2 input map, so TF "
        "logits (tf_logits.npy) are NOT the PyTorch ones; logits.npy / loss.npy / auxiliary_logits.npy are the "
        "PyTorch class on the converted weights. TF BatchNorm eps is 1e-5 (momentum 0.9) in 4.57, like PyTorch. "
        "TF loss has shape [1]. Transformers 4.57 TF bug: TFData2VecVisionFCNHead.build() does not build its convs, so "
        "TFData2VecVisionForSemanticSegmentation.from_pretrained() ignores the auxiliary_head/convs.0 and conv_module_2 "
        "weights of tf_model.h5 (random on reload; run_info.tf_reload_max_abs_diff: only the TF loss changes); the h5 "
        "itself holds the right values, which is what convert.py reads. The labels have NO ignored (255) pixels (they are semantic_segmentation's labels with "
        "255 -> 0): Transformers 4.57's TF compute_loss applies SparseCategoricalCrossentropy to every pixel before "
        "masking, and on CPU an out-of-range label raises InvalidArgumentError 'indices[85] = 255 is not in [0, 6)'. "
        + SEG_NOTES + " " + SEG_LABEL_NOTES,
    )


# --------------------------------------------------------------------------------------------
# running a PyTorch variant


OUTPUT_FIELDS = ("loss", "logits", "last_hidden_state", "pooler_output")


def run_pt(model, inputs, set_name, spec, labels):
    """Runs a PyTorch model on one input set; returns ({field: array}, kwargs used)."""
    entry = inputs[set_name]
    kwargs = dict(output_hidden_states=True, output_attentions=True)
    for k, v in spec["call_kwargs"].get(set_name, {}).items():
        if k == "bool_masked_pos":
            kwargs[k] = torch.from_numpy(entry["bool_masked_pos"]).bool()
        elif k == "labels":
            kwargs[k] = torch.from_numpy(labels[set_name])
        else:
            kwargs[k] = v
    aux = {}
    hook = None
    if getattr(model, "auxiliary_head", None) is not None:
        hook = model.auxiliary_head.register_forward_hook(lambda m, i, o: aux.__setitem__("auxiliary_logits", o))
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(entry["pixel_values"]), **kwargs)
    finally:
        if hook is not None:
            hook.remove()
    fields = collect_outputs(out, OUTPUT_FIELDS)
    if "auxiliary_logits" in aux:
        fields["auxiliary_logits"] = to_numpy(aux["auxiliary_logits"])
    return fields


def save_preprocessor(spec, ckpt_dir):
    h, w = spec.get("preprocessor_size", (TINY["image_size"], TINY["image_size"]))
    make_processor(h, w, reduce_labels=spec.get("reduce_labels", False)).save_pretrained(ckpt_dir)


def write_set(vdir, set_name, fields, labels):
    sdir = os.path.join(vdir, set_name)
    names = save_fields(sdir, fields, quiet=True)
    if labels is not None and set_name in labels:
        save_npy(os.path.join(sdir, "labels.npy"), labels[set_name], quiet=True)
        names.append("labels")
    log(f"  wrote {rel(sdir)}/ ({len(names)} arrays)")
    return names


def clean_variant_dir(vdir):
    if os.path.isdir(vdir):
        shutil.rmtree(vdir)
    os.makedirs(vdir)


def nonsquare_bias_check(model):
    """Native-size bias of layer 0 vs a direct gather of the table (what a geometric reading would give)."""
    rpb = model.encoder.layer[0].attention.attention.relative_position_bias
    ws = rpb.window_size
    with torch.no_grad():
        hf = rpb(ws)[0]
        idx = rpb.generate_relative_position_index(ws)
        n = ws[0] * ws[1] + 1
        direct = rpb.relative_position_bias_table[idx.view(-1)].view(n, n, -1).permute(2, 0, 1)
    return float((hf - direct).abs().max())


def run_pt_variant(name, inputs, ckpt_root, pending):
    log(f"variant {name}")
    spec = VARIANTS[name]()
    seed = variant_seed(name)
    torch.manual_seed(seed)
    cfg = Data2VecVisionConfig(**spec["config"])
    cfg._attn_implementation = "eager"
    model = spec["cls"](cfg, **spec["constructor_kwargs"]).eval()
    gen = torch.Generator().manual_seed(seed)
    perturb_parameters(model, gen)
    labels = spec["labels"](inputs) if spec.get("labels") else {}

    ckpt_dir = os.path.join(ckpt_root, name)
    save_pretrained_fresh(model, ckpt_dir)
    save_preprocessor(spec, ckpt_dir)

    vdir = os.path.join(OUT, name)
    clean_variant_dir(vdir)
    outputs, max_abs, run_info, results = {}, {}, {}, {}
    for s in spec["inputs"]:
        fields = run_pt(model, inputs, s, spec, labels)
        if "loss" in fields:
            assert np.isfinite(fields["loss"]).all(), f"{name}/{s}: non-finite loss"
        results[s] = fields
        outputs[s] = write_set(vdir, s, fields, labels)
        max_abs[s] = max_abs_by_field(fields)
        info = {"pixel_values_shape": list(inputs[s]["pixel_values"].shape)}
        if spec.get("check_flag_noop"):
            alt = dict(spec, call_kwargs={s: {k: v for k, v in spec["call_kwargs"][s].items()
                                               if k != "interpolate_pos_encoding"}})
            other = run_pt(model, inputs, s, alt, labels)
            info["flag_false_max_abs_diff"] = max(float(np.abs(other[k] - fields[k]).max()) for k in fields)
        run_info[s] = info
    if spec.get("check_nonsquare_bias"):
        run_info["native_bias_vs_direct_gather_max_abs_diff"] = nonsquare_bias_check(model)

    # the saved checkpoint must reproduce the in-memory model
    reloaded = spec["cls"].from_pretrained(ckpt_dir, attn_implementation="eager", **spec["constructor_kwargs"]).eval()
    for s in spec["inputs"]:
        again = run_pt(reloaded, inputs, s, spec, labels)
        diff = max(float(np.abs(again[k] - results[s][k]).max()) for k in results[s])
        assert diff == 0.0, f"{name}/{s}: reloaded checkpoint differs by {diff}"

    meta = {
        "model_class": spec["cls"].__name__,
        "framework": "pt",
        "inputs": spec["inputs"],
        "outputs": outputs,
        "transformers_version": transformers.__version__,
        "call_kwargs": spec["call_kwargs"],
        "constructor_kwargs": spec["constructor_kwargs"],
        "max_abs": max_abs,
        "run_info": run_info,
        "notes": spec["notes"],
        "field_notes": FIELD_NOTES,
        "checkpoint_files": sorted(os.listdir(ckpt_dir)),
        "config": json.loads(cfg.to_json_string()),
        "seed": seed,
        "parameter_init": f"Transformers init, then perturb_parameters() with torch.Generator().manual_seed({seed})",
        "run": RUN_NOTE,
        "versions": versions(),
    }
    pending.append((name, ckpt_dir, os.path.join(vdir, "model.gguf"), meta, model.state_dict()))


FIELD_NOTES = (
    "hidden_states.0 = embedding output (CLS + patch embeddings [+ mask token] [+ absolute position embeddings]); "
    "hidden_states.i = output of layer i (pre-norm layers: x + l1 * attn(LN_before(x)); x + l2 * mlp(LN_after(x))); "
    "the last one is the encoder output BEFORE the model's final layernorm (Identity with mean pooling). "
    "attentions.i = softmax weights [B, heads, N+1, N+1] of layer i after adding the relative position bias(es). "
    "last_hidden_state = final layernorm(encoder output). Scalar losses have shape []; TF losses keep TF's shape."
)
RUN_NOTE = (
    "model.eval(), torch.no_grad(), attn_implementation='eager', CPU float32, output_hidden_states=True, "
    "output_attentions=True, plus call_kwargs[set] (labels / bool_masked_pos files, interpolate_pos_encoding)."
)


# --------------------------------------------------------------------------------------------
# TensorFlow variants


# convert.py maps the TF head names to the PyTorch ones itself (its TF_SEGMENTATION_RENAMES);
# applying the same rules here again is a no-op that guards against older .gguf files.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_io import _tf_segmentation_name as tf_name_to_pt  # noqa: E402



def read_gguf_tensors(path):
    import gguf

    r = gguf.GGUFReader(path)
    return {t.name: np.array(t.data) for t in r.tensors}


def load_gguf_into_pt(spec, ckpt_dir, gguf_path):
    """Builds the PyTorch class from the checkpoint's config.json and loads the gguf tensors."""
    cfg = Data2VecVisionConfig.from_pretrained(ckpt_dir)
    cfg._attn_implementation = "eager"
    model = spec["pt_cls"](cfg, **spec["constructor_kwargs"]).eval()
    sd = model.state_dict()
    tensors = read_gguf_tensors(gguf_path)
    # gguf names always carry the backbone prefix; a PyTorch base model's state dict does not
    base = not any(k.startswith("data2vec_vision.") for k in sd)
    renamed, state, problems = {}, {}, []
    for name, arr in tensors.items():
        pt = tf_name_to_pt(name)
        if pt != name:
            renamed[name] = pt
        if base and pt.startswith("data2vec_vision."):
            pt = pt[len("data2vec_vision."):]
        if pt not in sd:
            problems.append(f"gguf tensor {name} has no PyTorch counterpart")
            continue
        want = tuple(sd[pt].shape)
        if arr.shape != want:
            problems.append(f"{name}: shape {list(arr.shape)} != PyTorch {list(want)}")
            continue
        state[pt] = torch.from_numpy(arr.astype(np.float32))
    missing = [k for k in sd if k not in state]
    not_expected_missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    problems += [f"PyTorch tensor {k} not in the gguf" for k in not_expected_missing]
    if problems:
        raise RuntimeError("loading the converted TF weights into PyTorch failed:\n  " + "\n  ".join(problems))
    model.load_state_dict(state, strict=False)
    return model, cfg, {
        "gguf_tensors": len(tensors),
        "renamed_to_load_into_pytorch": renamed,
        "left_at_init": missing,
    }


def run_tf_variants(names, inputs, labels_by_variant, ckpt_root, tf_python):
    """Runs make_vision_fixtures_tf.py once for all TF variants; returns the work dir."""
    work = os.path.join(ckpt_root, "tf_work")
    os.makedirs(work, exist_ok=True)
    req = {"work": work, "threads": 2, "variants": []}
    for name in names:
        spec = VARIANTS[name]()
        files = {}
        for s in spec["inputs"]:
            files[s] = {"pixel_values": os.path.join(OUT, "inputs", s, "pixel_values.npy")}
            if "bool_masked_pos" in spec["call_kwargs"].get(s, {}):
                files[s]["bool_masked_pos"] = os.path.join(OUT, "inputs", s, "bool_masked_pos.npy")
            if s in labels_by_variant.get(name, {}):
                p = os.path.join(work, name + "_labels", f"{s}.npy")
                save_npy(p, labels_by_variant[name][s], quiet=True)
                files[s]["labels"] = p
        req["variants"].append({
            "name": name,
            "tf_class": spec["tf_class"],
            "config": spec["config"],
            "constructor_kwargs": spec["constructor_kwargs"],
            "seed": variant_seed(name),
            "inputs": spec["inputs"],
            "input_files": files,
            "reload_exempt": spec.get("tf_reload_exempt", []),
        })
    req_path = os.path.join(work, "request.json")
    with open(req_path, "w") as f:
        json.dump(req, f, indent=1)
    t0 = time.time()
    log(f"running {tf_python} {rel(TF_HELPER)}")
    r = subprocess.run([tf_python, TF_HELPER, req_path], cwd=REPO)
    if r.returncode != 0:
        raise RuntimeError(f"{rel(TF_HELPER)} failed with status {r.returncode}")
    log(f"TF part took {time.time() - t0:.1f} s")
    return work


def run_with_tf_psp_chaining(model, inputs, set_name, spec, labels):
    """The PyTorch model with its pyramid pooling module patched to behave like Transformers 4.x's TF one:
    every pool scale is applied to the PREVIOUS scale's conv output, then resized to the input's size."""
    ppm = model.decode_head.psp_modules

    def chained(hidden_states):
        size = hidden_states.shape[2:]
        outs, x = [], hidden_states
        for block in ppm.blocks:
            x = block.conv(block.pooling(x))
            outs.append(torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return outs

    ppm.forward = chained
    try:
        return run_pt(model, inputs, set_name, spec, labels)
    finally:
        del ppm.forward


def finish_tf_variant(name, inputs, labels, work, tf_python):
    """Convert the TF checkpoint, load it into the PyTorch class, write fixtures + meta."""
    log(f"variant {name} (TF)")
    spec = VARIANTS[name]()
    wdir = os.path.join(work, name)
    ckpt_dir = os.path.join(wdir, "ckpt")
    save_preprocessor(spec, ckpt_dir)
    with open(os.path.join(wdir, "info.json")) as f:
        tf_info = json.load(f)
    vdir = os.path.join(OUT, name)
    clean_variant_dir(vdir)
    gguf_path = os.path.join(vdir, "model.gguf")
    # convert.py needs h5py for tf_model.h5; the reference env has none, the TF env has numpy + gguf + h5py
    conv = convert_one(name, ckpt_dir, gguf_path, python=tf_python)

    run_info = {"convert": conv, "convert_python": "the TF environment's python (h5py)", "tf_reload_max_abs_diff": tf_info["reload_max_abs_diff"]}
    pt_model = None
    if conv["ok"]:
        try:
            pt_model, _, load_info = load_gguf_into_pt(spec, ckpt_dir, gguf_path)
            run_info["pt_load"] = load_info
        except RuntimeError as e:
            run_info["pt_load"] = {"error": str(e)}
            log(f"  {e}")
    replaced = spec.get("tf_replaced", [])
    outputs, max_abs, diffs = {}, {}, {}
    for s in spec["inputs"]:
        sdir = os.path.join(wdir, "out", s)
        tf_fields = {f[:-4]: np.load(os.path.join(sdir, f)) for f in sorted(os.listdir(sdir))}
        pt_fields = run_pt(pt_model, inputs, s, spec, labels) if pt_model is not None else None
        fields = {}
        for k, v in tf_fields.items():
            if k in replaced:
                if pt_fields is not None:  # else only TF's value is saved (see run_info.pt_load)
                    fields[k] = pt_fields[k]
                fields["tf_" + k] = v
            else:
                fields[k] = v
        for k in spec.get("extra_pt_fields", []):
            if pt_fields is not None and k in pt_fields:
                fields[k] = pt_fields[k]
        if pt_fields is not None:
            diffs[s] = {}
            for k, v in tf_fields.items():
                p = pt_fields.get(k)
                if p is not None and p.size == v.size:
                    diffs[s][k] = float(np.abs(p.reshape(v.shape) - v).max())
                elif p is not None and p.size == 1:
                    diffs[s][k + " (pt scalar vs mean of tf per-example)"] = float(abs(p.item() - v.mean()))
            if spec.get("emulate_tf_psp"):
                emu = run_with_tf_psp_chaining(pt_model, inputs, s, spec, labels)
                run_info.setdefault("pt_with_tf_psp_chaining_vs_tf", {})[s] = {
                    k: float(np.abs(emu[k].reshape(tf_fields[k].shape) - tf_fields[k]).max()) for k in ("logits", "loss")
                }
        outputs[s] = write_set(vdir, s, fields, labels)
        max_abs[s] = max_abs_by_field(fields)
    run_info["pt_vs_tf_max_abs_diff"] = diffs
    meta = {
        "model_class": spec["pt_cls"].__name__,
        "tf_class": spec["tf_class"],
        "framework": "tf",
        "inputs": spec["inputs"],
        "outputs": outputs,
        "transformers_version": tf_info["versions"]["transformers"],
        "pytorch_reference_transformers_version": transformers.__version__,
        "call_kwargs": spec["call_kwargs"],
        "constructor_kwargs": spec["constructor_kwargs"],
        "tf_fields_replaced": replaced,
        "max_abs": max_abs,
        "run_info": run_info,
        "notes": TF_NOTES.format(tfv=tf_info["versions"]["transformers"], tfcls=spec["tf_class"],
                                 ptv=transformers.__version__) + " " + spec["notes"],
        "field_notes": FIELD_NOTES,
        "checkpoint_files": sorted(os.listdir(ckpt_dir)),
        "h5_weights": tf_info["h5"],
        "config": json.load(open(os.path.join(ckpt_dir, "config.json"))),
        "seed": variant_seed(name),
        "parameter_init": "every TF weight redrawn by make_vision_fixtures_tf.perturb_tf_weights "
        f"(numpy default_rng({variant_seed(name)}), weights in sorted name order): {tf_info['perturbed_weight_kinds']}",
        "run": "TF: model(pixel_values, [bool_masked_pos], [labels], output_hidden_states=True, output_attentions=True, "
        "training=False). PyTorch reference: " + RUN_NOTE,
        "versions": {"tf_env": tf_info["versions"], "pt_env": versions()},
    }
    save_json(os.path.join(vdir, "meta.json"), meta)
    return conv["ok"] and pt_model is not None


# --------------------------------------------------------------------------------------------
# conversion


def convert_one(name, ckpt_dir, out_file, python=None):
    shown = f"{python or sys.executable} {rel(CONVERT)} {ckpt_dir} {rel(out_file)}"
    ok, r = convert_checkpoint(name, ckpt_dir, out_file, python=python, shown=shown)
    # keep meta.json deterministic: no temporary / absolute paths
    err = r.stderr.replace(os.path.dirname(os.path.abspath(ckpt_dir)), "<checkpoints>").replace(REPO + os.sep, "")
    return {"ok": ok, "returncode": r.returncode, "stderr": err[-6000:]}


def finish_pt_variant(name, ckpt_dir, out_file, meta, state_dict):
    conv = convert_one(name, ckpt_dir, out_file)
    meta["run_info"]["convert"] = conv
    if conv["ok"]:
        # the gguf must hold exactly the float tensors of the state dict (base models get the prefix)
        tensors = read_gguf_tensors(out_file)
        prefix = "" if any(k.startswith("data2vec_vision.") for k in state_dict) else "data2vec_vision."
        want = {prefix + k: v for k, v in state_dict.items() if v.dtype.is_floating_point}
        bad = sorted(set(want) ^ set(tensors))
        for k in set(want) & set(tensors):
            if not np.array_equal(want[k].numpy().reshape(-1), tensors[k].reshape(-1)):
                bad.append(k + " (values)")
        meta["run_info"]["gguf_matches_state_dict"] = not bad
        if bad:
            meta["run_info"]["gguf_mismatches"] = bad
            log(f"  gguf mismatches: {bad}")
    save_json(os.path.join(os.path.dirname(out_file), "meta.json"), meta)
    return conv["ok"] and meta["run_info"].get("gguf_matches_state_dict", False)


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(ap, VARIANTS)
    ap.add_argument("--tf-python", default=DEFAULT_TF_PYTHON,
                    help=f"python of the TensorFlow environment (default {DEFAULT_TF_PYTHON})")
    ap.add_argument("--no-tf", action="store_true", help="skip the TensorFlow variants")
    args = ap.parse_args()

    init_torch_reference()
    names = selected_names(ap, args, VARIANTS)
    tf_names = [n for n in names if n.startswith("tf_")]
    pt_names = [n for n in names if n in VARIANTS and not n.startswith("tf_")]
    if args.no_tf:
        tf_names = []
    if tf_names and not os.path.exists(args.tf_python):
        ap.error(f"{args.tf_python} not found (see the docstring for the TF environment, or pass --no-tf)")

    inputs = build_inputs()
    if "inputs" in names:
        write_inputs(inputs)
    else:
        for s, e in inputs.items():  # the TF helper and the C++ tests read the saved inputs
            saved = np.load(os.path.join(OUT, "inputs", s, "pixel_values.npy"))
            assert np.array_equal(saved, e["pixel_values"]), f"inputs/{s} is stale: rerun with --only inputs"

    ckpt_root, tmp = checkpoint_root(args.keep_checkpoints, "d2v-vision-ckpts-")
    failed = []
    try:
        pending = []
        for n in pt_names:
            run_pt_variant(n, inputs, ckpt_root, pending)
        for name, ckpt_dir, out_file, meta, sd in pending:
            if not finish_pt_variant(name, ckpt_dir, out_file, meta, sd):
                failed.append(name)
        if tf_names:
            labels = {n: VARIANTS[n]()["labels"](inputs) for n in tf_names if VARIANTS[n]().get("labels")}
            work = run_tf_variants(tf_names, inputs, labels, ckpt_root, args.tf_python)
            for n in tf_names:
                if not finish_tf_variant(n, inputs, labels.get(n, {}), work, args.tf_python):
                    failed.append(n)
    finally:
        if tmp is not None:
            tmp.cleanup()
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    log(f"{rel(OUT)}: {total / 1e6:.2f} MB")
    if failed:
        log(f"FAILED (conversion or PyTorch load): {failed}")
        sys.exit(1)
    log("done")


if __name__ == "__main__":
    main()
