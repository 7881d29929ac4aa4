#!/usr/bin/env python3
"""Convert a Hugging Face Data2Vec checkpoint folder into one GGUF file.

Usage::

    python3 weights_tools/convert.py <hf_checkpoint_dir> <out_file.gguf> [--model-class NAME]
                                     [--allow-no-tokenizer] [--outtype f32|bf16|q8]
    python3 weights_tools/convert.py --from-gguf <f32_file.gguf> <out_file.gguf> --outtype bf16|q8

Needs only numpy and gguf (h5py, imported lazily, for ``tf_model.h5``); it
never imports torch, transformers or safetensors, and never executes pickle
code (see ``safe_torch_pickle.py``).  The folder is read as untrusted input
(``checkpoint_io.py``): no file outside it is read (symlinks that leave it,
HDF5 external links/storage are refused), and every size a header claims is
checked against what the file holds.  Expected failures print
``convert.py: error: ...`` on stderr and exit with status 1.

What a head needs is checked here, not discovered later by the CLI:

* data2vec-text: a tokenizer (``tokenizer.json``, or ``vocab.json`` +
  ``merges.txt``) -- refused without one unless ``--allow-no-tokenizer``;
* Data2VecAudioForCTC: the CTC vocabulary ``vocab.json`` -- refused without
  it unless ``--allow-no-tokenizer``;
* audio / vision: the preprocessing settings; without them a warning names
  the defaults the C++ side will use.

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
``d2v.outtype``           string: ``f32`` | ``bf16`` | ``q8`` (``--outtype``); absent in files
                          written before it existed, which are f32
Optional strings (JSON re-serialized compactly: ``ensure_ascii=False``,
``separators=(",", ":")``, key order kept; merges.txt verbatim):

    d2v.preprocessor_json        the feature-extractor / image-processor settings
                                 as one flat object, from whichever file
                                 Transformers 5 reads them: the
                                 "feature_extractor" (or "audio_processor") /
                                 "image_processor" section of
                                 processor_config.json, else
                                 preprocessor_config.json (whose own nested
                                 section, Transformers 4's way, is unwrapped)
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
       exists) are stored once: ``lm_head.decoder.weight`` is written only
       when it differs from ``data2vec_text.embeddings.word_embeddings.weight``
       (Transformers 5 then unties them); absent, the loader uses the word
       embeddings.  The decoder bias is stored as ``lm_head.decoder.bias``
       (taken from ``lm_head.bias`` when that is the only one), and
       ``lm_head.bias`` is not written.
  Names may be longer than ggml's 64-character limit.

Reduced precision (``--outtype``)
---------------------------------
``f32`` (default) writes the files described above, byte for byte as before
(no ``d2v.outtype`` key).  ``bf16`` and ``q8`` change only the transformer
layers' Linear weight matrices -- attention query/key/value/output and FFN
intermediate/output, in every modality -- and the audio conv front end's
kernels after its first layer (``REDUCED_WEIGHTS`` below); embeddings, layer
norms, biases, the first conv layer, the positional conv, the patch embedding,
pooler, heads and UperNet stay F32:

* ``bf16``: the matrix as GGML ``BF16`` (type 30), same shape, rounded to
  nearest even;
* ``q8``: the matrix as GGML ``I8`` (type 24), same shape, symmetric per output
  channel (a conv kernel's row is its ``[C_in, k]`` slice):
  ``scale[r] = max|W[r, :]| / 127`` (1 for an all-zero row) and
  ``q = round(W / scale[r])`` in [-127, 127]; plus one F32 tensor
  ``<name>.scale`` of shape ``[rows]``.  The weight is ``q * scale[r]``.

``--from-gguf`` re-writes an existing f32 GGUF (e.g. ``models/*.gguf``, whose
checkpoints are not kept) with the chosen ``--outtype``: every metadata string
kept, the same tensors reduced.

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
import os
import re
import sys

import numpy as np

sys.dont_write_bytecode = True   # keep weights_tools/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_io import (  # noqa: E402
    CheckpointFolder, ConvertError, parse_json, read_document, read_json, read_safetensors, read_sharded,
    read_tf_h5, read_torch_bin)

FORMAT_VERSION = 1
ALIGNMENT = 64
OUTTYPES = ("f32", "bf16", "q8")

# The transformer layers' Linear weight matrices: the only tensors --outtype bf16 / q8 reduces.
REDUCED_WEIGHTS = re.compile(
    r"^data2vec_(audio|text|vision)\.encoder\.layers?\.\d+\."
    r"(attention\.(q_proj|k_proj|v_proj|out_proj)|attention\.self\.(query|key|value)|"
    r"attention\.attention\.(query|key|value)|attention\.output\.dense|"
    r"feed_forward\.(intermediate_dense|output_dense)|intermediate\.dense|output\.dense)\.weight$"
    # The audio conv front end's kernels [C_out, C_in, k] after the first layer (which has one input
    # channel and stays f32): run as im2col products, per-output-channel scales like a matrix's rows.
    r"|^data2vec_audio\.feature_extractor\.conv_layers\.([1-9]\d*)\.conv\.weight$")

# model_type -> (general.architecture, backbone prefix, class-name stem)
MODEL_TYPES = {
    "data2vec-audio": ("data2vec-audio", "data2vec_audio.", "Data2VecAudio"),
    "data2vec-text": ("data2vec-text", "data2vec_text.", "Data2VecText"),
    "data2vec-vision": ("data2vec-vision", "data2vec_vision.", "Data2VecVision"),
}

# (file name, gguf key): JSON documents, re-serialised compactly
TOKENIZER_DOCUMENTS = [
    ("vocab.json", "d2v.vocab_json"),
    ("tokenizer_config.json", "d2v.tokenizer_config_json"),
    ("special_tokens_map.json", "d2v.special_tokens_map_json"),
    ("added_tokens.json", "d2v.added_tokens_json"),
    ("tokenizer.json", "d2v.tokenizer_json"),
]
MERGES = ("merges.txt", "d2v.merges_txt")   # verbatim

# The processor_config.json sections Transformers 5 reads the preprocessing settings from (before
# it looks at preprocessor_config.json), and the defaults the C++ side uses when there are none.
PROCESSOR_SECTIONS = {
    "data2vec-audio": ("feature_extractor", "audio_processor"),
    "data2vec-vision": ("image_processor",),
}
PREPROCESSING_DEFAULTS = {
    "data2vec-audio": "Wav2Vec2FeatureExtractor defaults (sampling_rate=16000, do_normalize=True, "
                      "padding_value=0.0)",
    "data2vec-vision": "BeitImageProcessor defaults (resize to 224x224 bicubic, no center crop, "
                       "rescale 1/255, normalize with mean=std=0.5)",
}


def warn(msg: str) -> None:
    print(f"convert.py: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------

def load_checkpoint_tensors(folder: CheckpointFolder, config: dict) -> tuple[str, dict[str, np.ndarray]]:
    """The first weight file found, in priority order."""
    formats = [
        ("model.safetensors", lambda p: read_safetensors(p)),
        ("model.safetensors.index.json", lambda p: read_sharded(folder, "model.safetensors.index.json", read_safetensors)),
        ("pytorch_model.bin", lambda p: read_torch_bin(p)),
        ("pytorch_model.bin.index.json", lambda p: read_sharded(folder, "pytorch_model.bin.index.json", read_torch_bin)),
        ("tf_model.h5", lambda p: read_tf_h5(p, config)),
    ]
    for fname, reader in formats:
        path = folder.file(fname)
        if path is not None:
            return fname, reader(path)
    raise ConvertError(f"{folder.path}: no weights found (looked for {', '.join(f for f, _ in formats)})")


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


def tie_weights(tensors: dict[str, np.ndarray], prefix: str, config: dict) -> list[str]:
    """The LM head's decoder shares the word embeddings: store the matrix once (see the contract)."""
    if "lm_head.dense.weight" not in tensors:
        return []           # only the text LM head (dense + decoder) has tied weights
    notes = []
    emb_name = prefix + "embeddings.word_embeddings.weight"
    emb = tensors.get(emb_name)
    decoder = tensors.get("lm_head.decoder.weight")
    if decoder is None:
        if config.get("tie_word_embeddings", True) is False:
            raise ConvertError("lm_head.decoder.weight is missing and config.json says tie_word_embeddings=false: "
                               "Transformers would initialise the decoder randomly; refusing")
        if emb is None:
            raise ConvertError(f"lm_head.decoder.weight is tied to {emb_name!r}, which is missing")
        notes.append(f"lm_head.decoder.weight is {emb_name} (stored once)")
    elif emb is not None and decoder.shape == emb.shape and np.array_equal(decoder, emb):
        del tensors["lm_head.decoder.weight"]
        notes.append(f"lm_head.decoder.weight equals {emb_name}: stored once")
    else:
        notes.append("lm_head.decoder.weight differs from the word embeddings: kept (Transformers 5 unties them; "
                     "Transformers 4 would tie them if tie_word_embeddings)")
    bias = tensors.pop("lm_head.bias", None)
    if "lm_head.decoder.bias" not in tensors and bias is not None:
        tensors["lm_head.decoder.bias"] = bias
        notes.append("lm_head.decoder.bias <- lm_head.bias")
    elif bias is not None and not np.array_equal(bias, tensors["lm_head.decoder.bias"]):
        notes.append("lm_head.bias differs from lm_head.decoder.bias and is not used by the forward pass: dropped")
    return notes


# ---------------------------------------------------------------------------
# documents: preprocessing settings and tokenizer files
# ---------------------------------------------------------------------------

def _json_object(folder: CheckpointFolder, name: str):
    path = folder.file(name)
    if path is None:
        return None
    value = read_json(path, folder.display(name))
    if not isinstance(value, dict):
        raise ConvertError(f"{folder.display(name)}: not a JSON object")
    return value


def find_preprocessing(folder: CheckpointFolder, arch: str) -> tuple[dict | None, list[str]]:
    """(settings, warnings): the feature-extractor / image-processor settings as Transformers 5
    reads them -- processor_config.json's section first, then preprocessor_config.json."""
    sections = PROCESSOR_SECTIONS.get(arch)
    if sections is None:
        return None, []
    notes = []
    chosen, source = None, None
    processor = _json_object(folder, "processor_config.json")
    if processor is not None:
        for key in sections:
            if key in processor:
                if not isinstance(processor[key], dict):
                    raise ConvertError(f"{folder.display('processor_config.json')}: section {key!r} is not an object")
                chosen, source = processor[key], f"processor_config.json[{key!r}]"
                break
        if chosen is None:
            notes.append(f"warning: processor_config.json has no {' / '.join(sections)} section; not used")
    legacy = _json_object(folder, "preprocessor_config.json")
    if legacy is not None:
        # Transformers 4 reads preprocessor_config.json first and unwraps a "feature_extractor" section.
        nested = next((legacy[k] for k in sections if isinstance(legacy.get(k), dict)), None)
        legacy = nested if nested is not None else legacy
        if chosen is None:
            chosen, source = legacy, "preprocessor_config.json"
        elif legacy != chosen:
            notes.append("warning: preprocessor_config.json differs from " + source + "; using the latter as Transformers 5 "
                         "does (Transformers 4 would use preprocessor_config.json)")
    if chosen is None:
        notes.append(f"warning: no preprocessing settings (processor_config.json / preprocessor_config.json): the model file "
                     f"will use the {PREPROCESSING_DEFAULTS[arch]}")
    else:
        notes.append(f"preprocessing settings from {source}")
    return chosen, notes


def tokenizer_documents(folder: CheckpointFolder) -> list[tuple[str, str]]:
    out = []
    for fname, key in TOKENIZER_DOCUMENTS:
        path = folder.file(fname)
        if path is not None:
            shown = folder.display(fname)
            value = parse_json(read_document(path, shown), shown)
            out.append((key, json.dumps(value, ensure_ascii=False, separators=(",", ":"))))
    path = folder.file(MERGES[0])
    if path is not None:
        out.append((MERGES[1], read_document(path, folder.display(MERGES[0]))))
    return out


def check_head_needs(arch: str, cls: str, docs: dict[str, str], allow_no_tokenizer: bool) -> list[str]:
    """Refuse (or, with --allow-no-tokenizer, warn about) a head converted without what it needs."""
    problem = None
    if arch == "data2vec-text":
        has_bpe = "d2v.vocab_json" in docs and "d2v.merges_txt" in docs
        if "d2v.tokenizer_json" not in docs and not has_bpe:
            have = [f for f, k in TOKENIZER_DOCUMENTS + [MERGES] if k in docs]
            problem = (f"{cls} needs its tokenizer: tokenizer.json, or vocab.json + merges.txt "
                       f"(found: {', '.join(have) or 'none'}); without it the model file cannot tokenize text")
    elif cls == "Data2VecAudioForCTC":
        if "d2v.vocab_json" not in docs:
            problem = f"{cls} needs the CTC vocabulary vocab.json (saved by Wav2Vec2CTCTokenizer / Wav2Vec2Processor)"
        elif not isinstance(json.loads(docs["d2v.vocab_json"]), dict):
            raise ConvertError("vocab.json: not a JSON object of token -> id")
    if problem is None:
        return []
    if not allow_no_tokenizer:
        raise ConvertError(problem + "; add it to the folder, or pass --allow-no-tokenizer to convert anyway")
    return [f"warning: {problem} (converted anyway: --allow-no-tokenizer)"]


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

def to_bf16_bits(arr: np.ndarray) -> np.ndarray:
    """f32 -> bf16 bit patterns (uint16), rounded to nearest even; NaN stays a quiet NaN."""
    u = np.ascontiguousarray(arr, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
    nan = np.isnan(arr.reshape(u.shape))
    rounded[nan] = ((u[nan] >> 16) | 0x40).astype("<u2")
    return rounded


def quantize_q8(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: (q [rows, cols] int8, scale [rows] f32), weight = q * scale[row]."""
    w = arr.astype(np.float64)
    amax = np.max(np.abs(w), axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype("<f4")
    q = np.clip(np.rint(w / scale.astype(np.float64)[:, None]), -127, 127).astype(np.int8)
    return q, scale


def reduce_tensors(tensors: dict[str, np.ndarray], outtype: str) -> tuple[dict, int]:
    """The tensors to write: {name: (array, raw_dtype or None)}, and how many matrices were reduced."""
    import gguf
    out, n = {}, 0
    for name, arr in tensors.items():
        if outtype == "f32" or not REDUCED_WEIGHTS.match(name) or arr.ndim < 2:
            out[name] = (arr, None)
            continue
        if not np.all(np.isfinite(arr)):
            raise ConvertError(f"{name}: non-finite weights cannot be stored as {outtype}")
        n += 1
        if outtype == "bf16":
            out[name] = (to_bf16_bits(arr), gguf.GGMLQuantizationType.BF16)
        else:
            q, scale = quantize_q8(arr.reshape(arr.shape[0], -1))  # a conv kernel: one scale per output channel
            out[name] = (q.reshape(arr.shape), None)
            _put(out, name + ".scale", (scale, None), f"q8 scales of {name!r}")
    return out, n


def convert(ckpt_dir: str, out_path: str, model_class: str | None = None, allow_no_tokenizer: bool = False,
            outtype: str = "f32") -> None:
    folder = CheckpointFolder(ckpt_dir)
    config = _json_object(folder, "config.json")
    if config is None:
        raise ConvertError(f"{ckpt_dir}: config.json is missing")
    cfg_path = folder.display("config.json")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or model_type not in MODEL_TYPES:
        raise ConvertError(f"{cfg_path}: unsupported model_type {str(model_type)[:100]!r} "
                           f"(supported: {', '.join(MODEL_TYPES)})")
    arch, prefix, stem = MODEL_TYPES[model_type]
    cls = resolve_model_class(config, model_class, stem, model_type)

    # Everything a head needs is checked before the (possibly large) weights are read.
    kv_strings = tokenizer_documents(folder)
    notes = check_head_needs(arch, cls, dict(kv_strings), allow_no_tokenizer)
    preprocessing, pre_notes = find_preprocessing(folder, arch)
    notes += pre_notes
    if preprocessing is not None:
        kv_strings.insert(0, ("d2v.preprocessor_json",
                              json.dumps(preprocessing, ensure_ascii=False, separators=(",", ":"))))

    source, raw = load_checkpoint_tensors(folder, config)
    tensors, dropped = to_float32(raw)
    del raw
    tensors = rename_gamma_beta(tensors)
    tensors, folded = fold_all_weight_norms(tensors)
    tensors, prefixed = add_backbone_prefix(tensors, prefix)
    tied = tie_weights(tensors, prefix, config)
    if not tensors:
        raise ConvertError(f"{source}: no floating-point tensors")

    for n in notes:
        warn(n)
    for d in dropped:
        warn(f"dropped non-float tensor {d}")
    for w in folded:
        warn(f"folded weight norm into {w}")
    if prefixed:
        warn(f"base-model checkpoint: added prefix {prefix!r} to all tensor names")
    for t in tied:
        warn(f"tied weight: {t}")

    name = os.path.basename(os.path.normpath(os.path.abspath(ckpt_dir)))
    n_tensors = len(tensors)
    typed, n_reduced = reduce_tensors(tensors, outtype)
    del tensors
    if outtype != "f32":
        kv_strings.append(("d2v.outtype", outtype))
    write_gguf(out_path, arch, name, cls, config, kv_strings, typed)
    warn(f"wrote {out_path}: {n_tensors} tensors from {source}, "
         f"architecture {arch}, model class {cls}" + (f", {n_reduced} matrices as {outtype}" if outtype != "f32" else ""))


def convert_from_gguf(in_path: str, out_path: str, outtype: str) -> None:
    """Re-write an f32 GGUF written by this script with another --outtype (metadata kept)."""
    try:
        import gguf
    except ImportError:
        raise ConvertError("the 'gguf' package is required (pip install -r weights_tools/requirements.txt)") from None
    try:
        reader = gguf.GGUFReader(in_path)
    except (ValueError, KeyError, IndexError) as e:
        raise ConvertError(f"{in_path}: not a readable GGUF file ({e})") from None
    fields = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.alignment":
            continue
        if field.types != [gguf.GGUFValueType.STRING] and key != "d2v.format_version":
            raise ConvertError(f"{in_path}: metadata {key!r} has an unexpected type; not a file of convert.py")
        fields[key] = field.contents()
    for key in ("general.architecture", "d2v.model_class", "d2v.config_json", "d2v.format_version"):
        if key not in fields:
            raise ConvertError(f"{in_path}: metadata {key!r} is missing; not a file of convert.py")
    if fields.get("d2v.format_version") != FORMAT_VERSION:
        raise ConvertError(f"{in_path}: d2v.format_version {fields.get('d2v.format_version')} is not {FORMAT_VERSION}")
    if fields.pop("d2v.outtype", "f32") != "f32":
        raise ConvertError(f"{in_path}: already reduced precision; convert from the f32 file")
    tensors = {}
    for t in reader.tensors:
        if t.tensor_type != gguf.GGMLQuantizationType.F32:
            raise ConvertError(f"{in_path}: tensor {t.name!r} is {t.tensor_type.name}, expected F32")
        tensors[t.name] = np.array(t.data, dtype="<f4").reshape([int(d) for d in reversed(t.shape)])
    arch = fields.pop("general.architecture")
    name = fields.pop("general.name", os.path.basename(in_path))
    cls = fields.pop("d2v.model_class")
    config = json.loads(fields.pop("d2v.config_json"))
    fields.pop("d2v.format_version")
    kv_strings = list(fields.items())
    typed, n_reduced = reduce_tensors(tensors, outtype)
    if outtype != "f32":
        kv_strings.append(("d2v.outtype", outtype))
    write_gguf(out_path, arch, name, cls, config, kv_strings, typed)
    warn(f"wrote {out_path}: {len(tensors)} tensors from {in_path}, {n_reduced} matrices as {outtype}")


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
            arr, raw_dtype = tensors[tname] if isinstance(tensors[tname], tuple) else (tensors[tname], None)
            if arr.ndim == 0:
                arr = arr.reshape(1)
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
            writer.add_tensor(tname, arr, raw_dtype=raw_dtype)
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
    ap.add_argument("checkpoint_dir", help="Hugging Face checkpoint folder (or, with --from-gguf, an f32 GGUF file)")
    ap.add_argument("out_file")
    ap.add_argument("--outtype", choices=OUTTYPES, default="f32",
                    help="precision of the transformer layers' weight matrices (default f32; see the docstring)")
    ap.add_argument("--from-gguf", action="store_true",
                    help="the input is an f32 GGUF written by this script: re-write it with --outtype")
    ap.add_argument("--model-class", default=None,
                    help="override config.json architectures[0], e.g. Data2VecAudioForCTC")
    ap.add_argument("--allow-no-tokenizer", action="store_true",
                    help="convert a text model without tokenizer files, or a CTC model without vocab.json "
                         "(the model file then cannot tokenize text / decode transcripts)")
    args = ap.parse_args(argv)
    try:
        if args.from_gguf:
            convert_from_gguf(args.checkpoint_dir, args.out_file, args.outtype)
        else:
            convert(args.checkpoint_dir, args.out_file, args.model_class, args.allow_no_tokenizer, args.outtype)
    except ConvertError as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 1
    except MemoryError:
        print("convert.py: error: out of memory", file=sys.stderr)
        return 1
    except RecursionError:
        print("convert.py: error: input nested too deeply", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
