#!/usr/bin/env python3
"""Convert a Hugging Face Data2Vec checkpoint folder into one GGUF file.

Usage::

    python3 weights_tools/convert.py <hf_checkpoint_dir> <out_file.gguf> [--model-class NAME]

Needs only numpy and gguf (h5py, imported lazily, for ``tf_model.h5``); it
never imports torch, transformers or safetensors, and never executes pickle
code (see ``safe_torch_pickle.py``).  Expected failures (missing/corrupt
files, unsupported model) print ``convert.py: error: ...`` on stderr and exit
with status 1.

GGUF contract (format_version 1) -- the C++ loader relies on exactly this
=========================================================================

File: written with ``gguf.GGUFWriter``, ``general.alignment`` = 64.

Metadata keys
-------------
``general.architecture``  string: ``data2vec-audio`` | ``data2vec-text`` |
                          ``data2vec-vision`` (= config.json ``model_type``;
                          any other model_type is refused)
``general.alignment``     uint32: 64
``general.name``          string: name of the checkpoint folder
``d2v.format_version``    uint32: 1
``d2v.model_class``       string: e.g. ``Data2VecAudioForCTC``; config.json
                          ``architectures[0]`` unless ``--model-class`` is
                          given; a leading ``TF`` (``TFData2VecVision...``) is
                          stripped.  Must belong to the model_type's modality.
``d2v.config_json``       string: config.json as ``json.dumps(cfg, sort_keys=True)``
Optional strings, present only if the file exists in the checkpoint folder
(JSON files re-serialized compactly: ``ensure_ascii=False``,
``separators=(",", ":")``, key order kept; merges.txt verbatim):

    d2v.preprocessor_json        preprocessor_config.json
    d2v.vocab_json               vocab.json
    d2v.tokenizer_config_json    tokenizer_config.json
    d2v.special_tokens_map_json  special_tokens_map.json
    d2v.added_tokens_json        added_tokens.json
    d2v.tokenizer_json           tokenizer.json
    d2v.merges_txt               merges.txt

Tensors
-------
* Every floating-point tensor of the checkpoint, stored as GGML F32
  (f16/bf16/f64 are converted).  Integer/bool tensors (``position_ids``,
  ``num_batches_tracked``, ``relative_position_index`` ...) are dropped and
  listed on stderr.  Tensors are written in sorted name order.
* Shapes are the PyTorch/numpy shapes (gguf-py stores them reversed, i.e. in
  ggml ne[] order; a reader reverses them back).  A 0-d tensor is stored with
  shape ``(1,)``.
* Names are the PyTorch state-dict names with these canonicalisations:
    1. trailing ``.gamma`` / ``.beta`` (old LayerNorm naming) become
       ``.weight`` / ``.bias``;
    2. weight-norm pairs ``X.weight_g`` + ``X.weight_v`` or
       ``X.parametrizations.weight.original0`` + ``...original1`` are folded
       into ``X.weight = g * v / ||v||`` (norm over every dim except the one
       where g is not 1);
    3. backbone prefix: if no tensor starts with the backbone prefix
       (``data2vec_audio.`` / ``data2vec_text.`` / ``data2vec_vision.``) --
       i.e. a base-model checkpoint such as ``Data2VecAudioModel`` -- the
       prefix is prepended to every name; otherwise names are kept (head
       checkpoints: ``data2vec_audio.encoder...``, ``lm_head.weight``);
    4. tied weights (text LM heads, i.e. when ``lm_head.dense.weight``
       exists): a missing ``lm_head.decoder.weight`` is a copy of
       ``data2vec_text.embeddings.word_embeddings.weight``; if one of
       ``lm_head.decoder.bias`` / ``lm_head.bias`` is missing it is a copy of
       the other.
  Names may be longer than ggml's 64-character limit.

Inputs (first one found in the folder wins)
-------------------------------------------
``model.safetensors``, ``model.safetensors.index.json`` (shards),
``pytorch_model.bin`` (zip format only), ``pytorch_model.bin.index.json``
(shards), ``tf_model.h5`` (Keras/transformers TF weights, names mapped with
the transformers TF->PT rules; needs h5py).  ``config.json`` is required.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import re
import sys
from typing import Callable

import numpy as np

sys.dont_write_bytecode = True   # keep weights_tools/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safe_torch_pickle import TorchLoadError, load_torch_state_dict  # noqa: E402

FORMAT_VERSION = 1
ALIGNMENT = 64

# model_type -> (general.architecture, backbone prefix, class-name stem)
MODEL_TYPES = {
    "data2vec-audio": ("data2vec-audio", "data2vec_audio.", "Data2VecAudio"),
    "data2vec-text": ("data2vec-text", "data2vec_text.", "Data2VecText"),
    "data2vec-vision": ("data2vec-vision", "data2vec_vision.", "Data2VecVision"),
}

# (file name, gguf key, is_json)
OPTIONAL_FILES = [
    ("preprocessor_config.json", "d2v.preprocessor_json", True),
    ("vocab.json", "d2v.vocab_json", True),
    ("tokenizer_config.json", "d2v.tokenizer_config_json", True),
    ("special_tokens_map.json", "d2v.special_tokens_map_json", True),
    ("added_tokens.json", "d2v.added_tokens_json", True),
    ("tokenizer.json", "d2v.tokenizer_json", True),
    ("merges.txt", "d2v.merges_txt", False),
]

SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024


class ConvertError(Exception):
    """Expected failure: reported as a one-line message, exit status 1."""


def warn(msg: str) -> None:
    print(f"convert.py: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------
# checkpoint readers: each returns {name: numpy array (any dtype)}
# ---------------------------------------------------------------------------

# safetensors dtype -> numpy dtype (little endian); "BF16" read as uint16
_ST_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


def _no_duplicate_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _bf16_to_f32(a: np.ndarray) -> np.ndarray:
    return (a.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Parse a .safetensors file ourselves (memory-mapped, fully validated)."""
    try:
        size = os.path.getsize(path)
        f = open(path, "rb")
    except OSError as e:
        raise ConvertError(f"{path}: cannot open: {e.strerror or e}") from None
    with f:
        if size < 8:
            raise ConvertError(f"{path}: truncated safetensors file ({size} bytes)")
        n = int.from_bytes(f.read(8), "little")
        if n > size - 8:
            raise ConvertError(
                f"{path}: truncated or corrupt safetensors file: header length {n} "
                f"exceeds the file size {size}")
        if n > SAFETENSORS_MAX_HEADER:
            raise ConvertError(f"{path}: safetensors header too large ({n} bytes)")
        raw = f.read(n)
        try:
            header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        except (UnicodeDecodeError, ValueError) as e:
            raise ConvertError(f"{path}: corrupt safetensors header: {e}") from None
        if not isinstance(header, dict):
            raise ConvertError(f"{path}: corrupt safetensors header: not a JSON object")
        data_start = 8 + n
        data_size = size - data_start
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size > 0 else None

    out: dict[str, np.ndarray] = {}
    ranges = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict):
            raise ConvertError(f"{where}: corrupt header entry")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _ST_DTYPES:
            raise ConvertError(f"{where}: unsupported safetensors dtype {dtype!r}")
        if (not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape)):
            raise ConvertError(f"{where}: corrupt shape {shape!r}")
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(type(o) is int and o >= 0 for o in offs) or offs[0] > offs[1]):
            raise ConvertError(f"{where}: corrupt data_offsets {offs!r}")
        np_dt = np.dtype(_ST_DTYPES[dtype])
        count = 1
        for d in shape:
            count *= d
        begin, end = offs
        if end - begin != count * np_dt.itemsize:
            raise ConvertError(
                f"{where}: data_offsets {offs} hold {end - begin} bytes but shape {shape} "
                f"of {dtype} needs {count * np_dt.itemsize}")
        if end > data_size:
            raise ConvertError(
                f"{path}: truncated or corrupt safetensors file: tensor {name!r} ends at byte "
                f"{data_start + end} but the file has only {size} bytes")
        ranges.append((begin, end, name))
        if count == 0:
            arr = np.zeros(shape, dtype=np_dt)
        else:
            arr = np.frombuffer(mm, dtype=np_dt, count=count, offset=data_start + begin).reshape(shape)
        if dtype == "BF16":
            arr = _bf16_to_f32(arr)
        out[name] = arr
    ranges.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(ranges, ranges[1:]):
        if b1 < e0:
            raise ConvertError(f"{path}: corrupt safetensors file: tensors {n0!r} and {n1!r} overlap")
    return out


def read_torch_bin(path: str) -> dict[str, np.ndarray]:
    try:
        return load_torch_state_dict(path)
    except TorchLoadError as e:
        raise ConvertError(str(e)) from None


def _read_index(index_path: str) -> dict[str, str]:
    try:
        with open(index_path, "rb") as f:
            index = json.loads(f.read().decode("utf-8-sig"))
    except OSError as e:
        raise ConvertError(f"{index_path}: cannot read: {e.strerror or e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ConvertError(f"{index_path}: invalid JSON: {e}") from None
    wm = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(wm, dict) or not wm:
        raise ConvertError(f"{index_path}: missing or empty 'weight_map'")
    for name, shard in wm.items():
        if (not isinstance(shard, str) or not shard or os.path.basename(shard) != shard
                or shard in (".", "..") or "\\" in shard):
            raise ConvertError(f"{index_path}: invalid shard file name {shard!r} for {name!r}")
    return wm


def _read_sharded(index_path: str, reader: Callable[[str], dict]) -> dict[str, np.ndarray]:
    wm = _read_index(index_path)
    folder = os.path.dirname(index_path)
    out: dict[str, np.ndarray] = {}
    for shard in sorted(set(wm.values())):
        shard_path = os.path.join(folder, shard)
        if not os.path.isfile(shard_path):
            raise ConvertError(f"{index_path}: shard {shard} is missing")
        for name, arr in reader(shard_path).items():
            if name in out:
                raise ConvertError(f"{index_path}: tensor {name!r} appears in more than one shard")
            out[name] = arr
    for name, shard in wm.items():
        if name not in out:
            raise ConvertError(f"{index_path}: tensor {name!r} listed for {shard} is not in any shard")
    return out


def read_safetensors_sharded(index_path: str) -> dict[str, np.ndarray]:
    return _read_sharded(index_path, read_safetensors)


def read_torch_bin_sharded(index_path: str) -> dict[str, np.ndarray]:
    return _read_sharded(index_path, read_torch_bin)


def _tf_name_to_pt(tf_name: str, ndim: int) -> tuple[str, tuple | None]:
    """transformers' TF2 -> PyTorch naming rules; returns (name, transpose axes)."""
    name = tf_name.replace(":0", "")
    name = re.sub(r"/[^/]*___([^/]*)/", r"/\1/", name)
    name = name.replace("_._", "/")
    name = re.sub(r"//+", "/", name)
    parts = [p for p in name.split("/") if p]
    if len(parts) > 1:
        parts = parts[1:]                    # level zero is the TF model's own name
    last = parts[-1]
    axes = None
    if last == "kernel" and ndim == 4:
        axes = (3, 2, 0, 1)                  # (kh, kw, in, out) -> (out, in, kh, kw)
    elif last == "kernel" and ndim == 3:
        axes = (2, 1, 0)                     # (k, in, out) -> (out, in, k)
    elif last in ("kernel", "pointwise_kernel", "depthwise_kernel") and ndim == 2:
        axes = (1, 0)
    rename = {"kernel": "weight", "embeddings": "weight", "gamma": "weight", "beta": "bias",
              "moving_mean": "running_mean", "moving_variance": "running_var"}
    parts[-1] = rename.get(last, last)
    return ".".join(parts), axes


# Transformers 4.x's TF semantic-segmentation heads name their conv blocks the Keras way
# (conv/bn, a "bottleneck" for the PSP bottleneck, conv_module_<k> counted from 1 after the first
# auxiliary conv); these rules give the PyTorch names, applied after the generic TF->PT rules.
TF_SEGMENTATION_RENAMES: list[tuple[str, object]] = [
    (r"^decode_head\.psp_modules\.(\d+)\.1\.conv\.", r"decode_head.psp_modules.blocks.\1.conv.convolution."),
    (r"^decode_head\.psp_modules\.(\d+)\.1\.bn\.", r"decode_head.psp_modules.blocks.\1.conv.normalization."),
    (r"^decode_head\.bottleneck\.", r"decode_head.psp_bottleneck."),
    (r"^auxiliary_head\.conv_module_(\d+)\.", lambda m: f"auxiliary_head.convs.{int(m.group(1)) - 1}."),
    (r"^((?:decode_head|auxiliary_head)\..*)\.conv\.weight$", r"\1.convolution.weight"),
    (r"^((?:decode_head|auxiliary_head)\..*)\.bn\.(weight|bias|running_mean|running_var)$", r"\1.normalization.\2"),
]


def _tf_segmentation_name(name: str) -> str:
    for pattern, replacement in TF_SEGMENTATION_RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def _h5_str_list(value) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(value).tolist()]


def read_tf_h5(path: str) -> dict[str, np.ndarray]:
    """Keras ``save_weights`` HDF5 file as written by transformers' TF models."""
    try:
        import h5py  # lazily: only needed for TF checkpoints
    except ImportError:
        raise ConvertError(f"{path}: reading tf_model.h5 needs h5py (pip install -r "
                           "weights_tools/requirements.txt)") from None
    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            if "layer_names" not in f.attrs:
                raise ConvertError(f"{path}: not a Keras weights file (no 'layer_names' attribute)")
            for layer in _h5_str_list(f.attrs["layer_names"]):
                group = f[layer]
                for wname in _h5_str_list(group.attrs.get("weight_names", [])):
                    ds = group[wname]
                    arr = np.asarray(ds[()])
                    pt_name, axes = _tf_name_to_pt(wname, arr.ndim)
                    pt_name = _tf_segmentation_name(pt_name)
                    if axes is not None:
                        arr = np.ascontiguousarray(np.transpose(arr, axes))
                    if pt_name in out:
                        raise ConvertError(f"{path}: two TF weights map to {pt_name!r}")
                    out[pt_name] = arr
    except ConvertError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise ConvertError(f"{path}: cannot read HDF5 weights: {e}") from None
    if not out:
        raise ConvertError(f"{path}: no weights found")
    return out


# priority order
INPUT_FORMATS: list[tuple[str, Callable[[str], dict]]] = [
    ("model.safetensors", read_safetensors),
    ("model.safetensors.index.json", read_safetensors_sharded),
    ("pytorch_model.bin", read_torch_bin),
    ("pytorch_model.bin.index.json", read_torch_bin_sharded),
    ("tf_model.h5", read_tf_h5),
]


def load_checkpoint_tensors(folder: str) -> tuple[str, dict[str, np.ndarray]]:
    for fname, reader in INPUT_FORMATS:
        path = os.path.join(folder, fname)
        if os.path.isfile(path):
            return fname, reader(path)
    raise ConvertError(
        f"{folder}: no weights found (looked for {', '.join(f for f, _ in INPUT_FORMATS)})")


# ---------------------------------------------------------------------------
# canonicalisation
# ---------------------------------------------------------------------------

def to_float32(tensors: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Keep floating tensors as little-endian f32; return (kept, dropped descriptions)."""
    kept, dropped = {}, []
    for name, arr in tensors.items():
        if arr.dtype.kind != "f":
            dropped.append(f"{name} ({arr.dtype}, shape {list(arr.shape)})")
            continue
        if arr.dtype != np.dtype("<f4"):
            arr = arr.astype("<f4")
        kept[name] = arr
    return kept, dropped


def _put(d: dict, name: str, arr: np.ndarray, origin: str) -> None:
    if name in d:
        raise ConvertError(f"name clash: {origin} would overwrite existing tensor {name!r}")
    d[name] = arr


def rename_gamma_beta(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    plain = {n: a for n, a in tensors.items() if not re.search(r"(^|\.)(gamma|beta)$", n)}
    out.update(plain)
    for name, arr in tensors.items():
        if name in plain:
            continue
        new = re.sub(r"gamma$", "weight", name) if name.endswith("gamma") else re.sub(r"beta$", "bias", name)
        _put(out, new, arr, f"renaming {name!r}")
    return out


def fold_weight_norm(g: np.ndarray, v: np.ndarray, what: str) -> np.ndarray:
    if g.ndim not in (0, v.ndim):
        raise ConvertError(f"{what}: weight-norm g shape {list(g.shape)} does not fit v {list(v.shape)}")
    v64 = v.astype(np.float64)
    if g.size == 1:
        norm = np.sqrt(np.sum(v64 * v64))      # the kept dim (if any) has size 1
    else:
        dims = [d for d in range(v.ndim) if g.shape[d] != 1]
        if len(dims) != 1 or g.shape[dims[0]] != v.shape[dims[0]]:
            raise ConvertError(f"{what}: weight-norm g shape {list(g.shape)} does not fit v {list(v.shape)}")
        axes = tuple(d for d in range(v.ndim) if d != dims[0])
        norm = np.sqrt(np.sum(v64 * v64, axis=axes, keepdims=True))
    w = g.astype(np.float64) * v64 / norm
    return w.astype("<f4")


_WN_PATTERNS = [
    (re.compile(r"^(.*)\.weight_g$"), ".weight_v", ".weight_g"),
    (re.compile(r"^(.*)\.parametrizations\.weight\.original0$"),
     ".parametrizations.weight.original1", ".parametrizations.weight.original0"),
]


def fold_all_weight_norms(tensors: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    out = dict(tensors)
    folded = []
    for pat, v_suffix, g_suffix in _WN_PATTERNS:
        for name in list(out):
            m = pat.match(name)
            if not m:
                continue
            base = m.group(1)
            v_name = base + v_suffix
            if v_name not in out:
                raise ConvertError(f"weight-norm tensor {name!r} has no partner {v_name!r}")
            g, v = out.pop(name), out.pop(v_name)
            _put(out, base + ".weight", fold_weight_norm(g, v, base), f"weight-norm folding of {base!r}")
            folded.append(base + ".weight")
    for name in out:
        if name.endswith(".weight_v") or name.endswith(".parametrizations.weight.original1"):
            raise ConvertError(f"weight-norm tensor {name!r} has no matching g tensor")
    return out, folded


def add_backbone_prefix(tensors: dict[str, np.ndarray], prefix: str) -> tuple[dict[str, np.ndarray], bool]:
    if any(n.startswith(prefix) for n in tensors):
        return tensors, False
    return {prefix + n: a for n, a in tensors.items()}, True


def tie_weights(tensors: dict[str, np.ndarray], prefix: str) -> list[str]:
    notes = []
    if "lm_head.dense.weight" not in tensors:
        return notes        # only the text LM head (dense + decoder) has tied weights
    if "lm_head.decoder.weight" not in tensors:
        src = prefix + "embeddings.word_embeddings.weight"
        if src not in tensors:
            raise ConvertError(f"lm_head.decoder.weight is tied to {src!r}, which is missing")
        tensors["lm_head.decoder.weight"] = tensors[src]
        notes.append(f"lm_head.decoder.weight <- {src}")
    if "lm_head.decoder.bias" not in tensors and "lm_head.bias" in tensors:
        tensors["lm_head.decoder.bias"] = tensors["lm_head.bias"]
        notes.append("lm_head.decoder.bias <- lm_head.bias")
    elif "lm_head.bias" not in tensors and "lm_head.decoder.bias" in tensors:
        tensors["lm_head.bias"] = tensors["lm_head.decoder.bias"]
        notes.append("lm_head.bias <- lm_head.decoder.bias")
    return notes


# ---------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------

def read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConvertError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConvertError(f"{path}: not valid UTF-8: {e}") from None


def read_json(path: str):
    text = read_text(path)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConvertError(f"{path}: invalid JSON: {e}") from None


def resolve_model_class(config: dict, override: str | None, stem: str, model_type: str) -> str:
    if override:
        cls = override
    else:
        archs = config.get("architectures")
        if not isinstance(archs, list) or not archs or not isinstance(archs[0], str) or not archs[0]:
            raise ConvertError(
                "config.json has no 'architectures' entry; pass --model-class "
                f"(e.g. {stem}Model)")
        cls = archs[0]
    if cls.startswith("TF") and len(cls) > 2 and cls[2].isupper():
        cls = cls[2:]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cls) or not cls.startswith(stem):
        raise ConvertError(f"model class {cls!r} does not belong to model_type {model_type!r} "
                           f"(expected a {stem}* class)")
    return cls


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def convert(ckpt_dir: str, out_path: str, model_class: str | None = None) -> None:
    if not os.path.isdir(ckpt_dir):
        raise ConvertError(f"{ckpt_dir}: not a directory")
    cfg_path = os.path.join(ckpt_dir, "config.json")
    if not os.path.isfile(cfg_path):
        raise ConvertError(f"{ckpt_dir}: config.json is missing")
    config = read_json(cfg_path)
    if not isinstance(config, dict):
        raise ConvertError(f"{cfg_path}: not a JSON object")
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ConvertError(f"{cfg_path}: unsupported model_type {model_type!r} "
                           f"(supported: {', '.join(MODEL_TYPES)})")
    arch, prefix, stem = MODEL_TYPES[model_type]
    cls = resolve_model_class(config, model_class, stem, model_type)

    kv_strings: list[tuple[str, str]] = []
    for fname, key, is_json in OPTIONAL_FILES:
        p = os.path.join(ckpt_dir, fname)
        if not os.path.isfile(p):
            continue
        if is_json:
            text = json.dumps(read_json(p), ensure_ascii=False, separators=(",", ":"))
        else:
            text = read_text(p)
        kv_strings.append((key, text))

    source, raw = load_checkpoint_tensors(ckpt_dir)
    tensors, dropped = to_float32(raw)
    del raw
    tensors = rename_gamma_beta(tensors)
    tensors, folded = fold_all_weight_norms(tensors)
    tensors, prefixed = add_backbone_prefix(tensors, prefix)
    tied = tie_weights(tensors, prefix)
    if not tensors:
        raise ConvertError(f"{source}: no floating-point tensors")

    for d in dropped:
        warn(f"dropped non-float tensor {d}")
    for w in folded:
        warn(f"folded weight norm into {w}")
    if prefixed:
        warn(f"base-model checkpoint: added prefix {prefix!r} to all tensor names")
    for t in tied:
        warn(f"tied weight: {t}")

    name = os.path.basename(os.path.normpath(os.path.abspath(ckpt_dir)))
    write_gguf(out_path, arch, name, cls, config, kv_strings, tensors)
    warn(f"wrote {out_path}: {len(tensors)} tensors from {source}, "
         f"architecture {arch}, model class {cls}")


def write_gguf(out_path, arch, name, cls, config, kv_strings, tensors) -> None:
    try:
        import gguf
    except ImportError:
        raise ConvertError("the 'gguf' package is required (pip install -r weights_tools/requirements.txt)") from None
    STR = gguf.GGUFValueType.STRING
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        raise ConvertError(f"{out_path}: output directory does not exist")
    tmp = f"{out_path}.tmp{os.getpid()}"
    writer = gguf.GGUFWriter(tmp, arch)
    try:
        writer.add_custom_alignment(ALIGNMENT)
        writer.add_key_value("general.name", name, STR)
        writer.add_uint32("d2v.format_version", FORMAT_VERSION)
        writer.add_key_value("d2v.model_class", cls, STR)
        writer.add_key_value("d2v.config_json", json.dumps(config, sort_keys=True), STR)
        for key, text in kv_strings:
            writer.add_key_value(key, text, STR)
        for tname in sorted(tensors):
            arr = tensors[tname]
            if arr.ndim == 0:
                arr = arr.reshape(1)
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
            writer.add_tensor(tname, arr)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_path)
    except BaseException:
        writer.close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="convert.py",
        description="Convert a Hugging Face Data2Vec checkpoint folder to GGUF (see module docstring).")
    ap.add_argument("checkpoint_dir")
    ap.add_argument("out_file")
    ap.add_argument("--model-class", default=None,
                    help="override config.json architectures[0], e.g. Data2VecAudioForCTC")
    args = ap.parse_args(argv)
    try:
        convert(args.checkpoint_dir, args.out_file, args.model_class)
    except ConvertError as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 1
    except MemoryError:
        print("convert.py: error: out of memory", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
