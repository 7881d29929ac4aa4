#!/usr/bin/env python3
"""TensorFlow half of weights_tools/make_vision_fixtures.py (run by it; not meant to be run by hand).

Runs in the throwaway TensorFlow environment (Transformers 4.x, the last series with the TF
Data2VecVision classes; see make_vision_fixtures.py for the install commands):

    ~/.cache/d2v-tf/bin/python weights_tools/make_vision_fixtures_tf.py REQUEST.json

REQUEST.json (written by make_vision_fixtures.py) lists the TF variants: model class, config
kwargs, constructor kwargs, seed, and for each input set the .npy paths of pixel_values /
bool_masked_pos / labels.  For each variant this script

  1. builds the TF model from a Data2VecVisionConfig and runs it once (builds every weight),
  2. overwrites EVERY weight with seeded numpy draws (perturb_tf_weights; an unknown weight
     kind is an error, so nothing keeps Keras' init),
  3. runs the model (training=False) on each input set with output_hidden_states /
     output_attentions and saves every output as <work>/<variant>/out/<set>/<field>.npy
     (TF's own layout: logits of the segmentation model are returned NCHW by Transformers),
  4. save_pretrained() -> <work>/<variant>/ckpt/{tf_model.h5, config.json}, reloads it with
     from_pretrained() and checks the reloaded model reproduces the outputs exactly,
  5. writes <work>/<variant>/info.json: versions, the h5 layer/weight names with shapes, loss
     shapes and the reload check.

No torch is imported here.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import transformers  # noqa: E402
from transformers import Data2VecVisionConfig  # noqa: E402

from fixture_common import collect_outputs  # noqa: E402  (numpy only: no torch in this environment)


def log(msg):
    print(f"[tf] {msg}", flush=True)


def versions():
    import keras

    return {
        "transformers": transformers.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf_keras": __import__("tf_keras").__version__,
        "h5py": h5py.__version__,
        "numpy": np.__version__,
    }


def perturb_tf_weights(model, seed):
    """Overwrite every TF weight, by kind (the same distributions as the PyTorch variants):

    dense kernel [in, out]            N(0, 1/in)
    conv kernel [kh, kw, in, out]     N(0, 1/(kh*kw*in))
    conv-transpose kernel [kh, kw, out, in]  N(0, 1/in)   (kernel 2, stride 2: one tap per output)
    bias                              0.1*N(0,1)
    LayerNorm/BatchNorm gamma         1 + 0.2*N(0,1);   beta 0.1*N(0,1)
    BatchNorm moving_mean             0.1*N(0,1);   moving_variance exp(0.3*N(0,1))
    lambda_1 / lambda_2 (layer scale) 0.5*N(0,1)
    relative_position_bias_table      N(0,1)
    cls_token / mask_token            N(0,1);   position_embeddings 0.5*N(0,1)

    Weights are visited in sorted name order with one numpy Generator, so the draw is
    deterministic.
    """
    rng = np.random.default_rng(seed)
    kinds = {}
    for w in sorted(model.weights, key=lambda v: v.name):
        name = w.name.split(":")[0]
        last = name.split("/")[-1]
        owner = name.split("/")[-2] if "/" in name else ""
        shape = tuple(w.shape)
        n = rng.standard_normal(shape)
        if last == "kernel" and len(shape) == 2:
            v, kind = n / np.sqrt(shape[0]), "dense_kernel"
        elif last == "kernel" and len(shape) == 4 and (owner.startswith("fpn1.") or owner.startswith("fpn2.")):
            v, kind = n / np.sqrt(shape[3]), "conv_transpose_kernel"
        elif last == "kernel" and len(shape) == 4:
            v, kind = n / np.sqrt(shape[0] * shape[1] * shape[2]), "conv_kernel"
        elif last == "bias":
            v, kind = 0.1 * n, "bias"
        elif last == "gamma":
            v, kind = 1.0 + 0.2 * n, "norm_gamma"
        elif last == "beta":
            v, kind = 0.1 * n, "norm_beta"
        elif last == "moving_mean":
            v, kind = 0.1 * n, "bn_moving_mean"
        elif last == "moving_variance":
            v, kind = np.exp(0.3 * n), "bn_moving_variance"
        elif last in ("lambda_1", "lambda_2"):
            v, kind = 0.5 * n, "layer_scale"
        elif last == "relative_position_bias_table":
            v, kind = n, "relative_position_bias_table"
        elif last in ("cls_token", "mask_token"):
            v, kind = n, last
        elif last == "position_embeddings":
            v, kind = 0.5 * n, "position_embeddings"
        else:
            raise RuntimeError(f"perturb_tf_weights: unknown weight kind {w.name} {shape}")
        w.assign(v.astype(np.float32))
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def to_np(t):
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def collect(out):
    return collect_outputs(out, ("loss", "logits", "last_hidden_state", "pooler_output"), convert=to_np)


def run_model(model, inp):
    kwargs = dict(output_hidden_states=True, output_attentions=True, training=False)
    if inp.get("bool_masked_pos"):
        kwargs["bool_masked_pos"] = tf.constant(np.load(inp["bool_masked_pos"]).astype(bool))
    if inp.get("labels"):
        kwargs["labels"] = tf.constant(np.load(inp["labels"]))
    return model(pixel_values=tf.constant(np.load(inp["pixel_values"])), **kwargs)


def h5_inventory(path):
    inv = {"top_level_attrs": {}, "layers": {}}
    with h5py.File(path, "r") as f:
        for k, v in f.attrs.items():
            if k == "layer_names":
                continue
            inv["top_level_attrs"][k] = v.decode() if isinstance(v, bytes) else str(v)
        for layer in f.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else str(layer)
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f[layer].attrs.get("weight_names", [])]
            inv["layers"][layer] = {n: list(f[layer][n].shape) for n in names}
    return inv


def run_variant(spec, work):
    import transformers as T

    name = spec["name"]
    log(f"variant {name} ({spec['tf_class']})")
    tf.keras.utils.set_random_seed(spec["seed"])
    cfg = Data2VecVisionConfig(**spec["config"])
    cls = getattr(T, spec["tf_class"])
    model = cls(cfg, **spec.get("constructor_kwargs", {}))
    first = spec["inputs"][0]
    run_model(model, {"pixel_values": spec["input_files"][first]["pixel_values"]})  # build
    kinds = perturb_tf_weights(model, spec["seed"])

    vdir = os.path.join(work, name)
    info = {"versions": versions(), "perturbed_weight_kinds": kinds, "sets": {}}
    outputs = {}
    for s in spec["inputs"]:
        out = run_model(model, spec["input_files"][s])
        fields = collect(out)
        outputs[s] = fields
        for field, arr in fields.items():
            p = os.path.join(vdir, "out", s, f"{field}.npy")
            os.makedirs(os.path.dirname(p), exist_ok=True)
            np.save(p, np.ascontiguousarray(arr))
        info["sets"][s] = {k: list(v.shape) for k, v in fields.items()}

    ckpt = os.path.join(vdir, "ckpt")
    model.save_pretrained(ckpt)
    info["checkpoint_files"] = sorted(os.listdir(ckpt))
    info["h5"] = h5_inventory(os.path.join(ckpt, "tf_model.h5"))

    # Reload check.  Fields in spec["reload_exempt"] may differ: Transformers 4.57's TF FCN auxiliary head
    # does not build its convs in build(), so from_pretrained() skips their h5 weights ("Some layers from the
    # model checkpoint ... were not used": auxiliary_head/convs.0/..., conv_module_2/...) and initialises them
    # at random on the first call -- only the loss depends on them.
    reloaded = cls.from_pretrained(ckpt, **spec.get("constructor_kwargs", {}))
    diffs = {}
    for s in spec["inputs"]:
        again = collect(run_model(reloaded, spec["input_files"][s]))
        for k, v in outputs[s].items():
            diffs[f"{s}/{k}"] = float(np.abs(again[k] - v).max())
    exempt = set(spec.get("reload_exempt", []))
    bad = {k: d for k, d in diffs.items() if d != 0.0 and k.split("/", 1)[1] not in exempt}
    assert not bad, f"{name}: reloaded TF checkpoint differs: {bad}"
    info["reload_max_abs_diff"] = {k: d for k, d in diffs.items() if d != 0.0} or 0.0
    with open(os.path.join(vdir, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
    log(f"  done: {info['checkpoint_files']}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_vision_fixtures_tf.py REQUEST.json")
    with open(sys.argv[1]) as f:
        req = json.load(f)
    tf.config.threading.set_intra_op_parallelism_threads(req.get("threads", 2))
    tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        tf.config.experimental.enable_op_determinism()
    except AttributeError:
        pass
    transformers.logging.set_verbosity_error()
    for spec in req["variants"]:
        run_variant(spec, req["work"])
    log("all done")


if __name__ == "__main__":
    main()
