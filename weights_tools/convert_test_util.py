"""Helpers for the converter tests that need no torch: hand-written checkpoint files, a bounded
run of convert.py, and a GGUF reader.  Used by test_convert_layouts.py, test_convert_hostile.py and
fuzz_convert.py (all runnable with just weights_tools/requirements.txt installed)."""

from __future__ import annotations

import io
import json
import os
import pickle
import resource
import subprocess
import sys
import types
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERT = os.path.join(HERE, "convert.py")

# The bounds every hostile-input run is held to: a converter that needs more is a finding.
MEMORY_LIMIT = 2 * 1024 ** 3        # RLIMIT_AS of the child (Python + numpy + h5py start at ~0.5 GB)
TIME_LIMIT_S = 60


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_convert(ckpt, out, *extra, timeout=TIME_LIMIT_S):
    """convert.py in a child process with torch/transformers/safetensors unimportable, under
    RLIMIT_AS and a wall-clock limit.  Returns (rc, stderr)."""
    child = ("import sys, runpy\n"
             "for m in ('torch', 'transformers', 'safetensors'):\n"
             "    sys.modules[m] = None\n"
             "sys.argv = sys.argv[1:]\n"
             "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    try:
        p = subprocess.run([sys.executable, "-c", child, CONVERT, ckpt, out, *extra], capture_output=True,
                           text=True, timeout=timeout, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        raise Failure(f"convert.py {os.path.basename(ckpt)} {' '.join(extra)}: still running after {timeout} s") from None
    return p.returncode, p.stderr


def expect_ok(ckpt, out, *extra):
    rc, err = run_convert(ckpt, out, *extra)
    check(rc == 0 and os.path.exists(out), f"convert {ckpt} failed (rc {rc}):\n{err[-3000:]}")
    return err


def expect_refused(ckpt, out, *needles, extra=()):
    """Exit status 1, a one-line 'convert.py: error:' naming every needle, no traceback, no output."""
    rc, err = run_convert(ckpt, out, *extra)
    check(rc == 1, f"{ckpt}: expected exit status 1, got {rc}:\n{err[-3000:]}")
    check("Traceback" not in err, f"{ckpt}: traceback instead of a message:\n{err[-3000:]}")
    lines = [line for line in err.splitlines() if line.startswith("convert.py: error:")]
    check(len(lines) == 1, f"{ckpt}: expected one error line:\n{err[-3000:]}")
    for n in needles:
        check(n in lines[0], f"{ckpt}: error does not mention {n!r}: {lines[0][:500]}")
    check(not os.path.exists(out), f"{out} was written despite the error")
    return lines[0]


def read_gguf(path):
    import gguf
    r = gguf.GGUFReader(path)
    kv = {name: field.contents() for name, field in r.fields.items() if not name.startswith("GGUF.")}
    tensors = {}
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(list(t.shape)))
        tensors[t.name] = np.array(t.data, dtype=np.float32).reshape(shape)
    return kv, tensors


# ---------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------

_ST_NAMES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64"}


def safetensors_bytes(tensors: dict[str, np.ndarray], header_extra: dict | None = None) -> bytes:
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": _ST_NAMES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header.update(header_extra or {})
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + b"".join(blobs)


def write_safetensors(path, tensors, header_extra=None):
    with open(path, "wb") as f:
        f.write(safetensors_bytes(tensors, header_extra))


def _fake_torch_modules():
    """Module objects named like torch's, holding stand-ins that pickle by reference to exactly the
    globals torch.save writes (the converter never imports torch; neither do we)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, torch._utils = FloatStorage, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    return {"torch": torch, "torch._utils": utils}


class _Tensor:
    def __init__(self, key, shape, rebuild):
        self.key, self.shape, self.rebuild = key, shape, rebuild

    def __reduce__(self):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        from collections import OrderedDict
        return (self.rebuild, (_StorageRef(self.key, acc), 0, tuple(self.shape), tuple(stride), False, OrderedDict()))


class _StorageRef:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


def torch_pickle_bytes(state_layout: dict, persistent_ids=None) -> bytes:
    """data.pkl of torch.save({name: tensor}) for {name: (storage key, shape)} (float32)."""
    mods = _fake_torch_modules()
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        class P(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _StorageRef):
                    return ("storage", mods["torch"].FloatStorage, obj.key, "cpu", obj.numel)
                return None

        buf = io.BytesIO()
        rebuild = mods["torch._utils"]._rebuild_tensor_v2
        P(buf, protocol=2).dump({name: _Tensor(key, shape, rebuild) for name, (key, shape) in state_layout.items()})
        return buf.getvalue()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write_torch_zip(path, tensors: dict[str, np.ndarray], pickle_bytes: bytes | None = None,
                    compress_pickle=False):
    """A zip-format pytorch_model.bin as torch.save writes it (archive/data.pkl + archive/data/<k>)."""
    layout = {name: (str(i), list(a.shape)) for i, (name, a) in enumerate(tensors.items())}
    data = pickle_bytes if pickle_bytes is not None else torch_pickle_bytes(layout)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data, zipfile.ZIP_DEFLATED if compress_pickle else zipfile.ZIP_STORED)
        z.writestr("archive/byteorder", "little")
        for name, (key, _) in layout.items():
            z.writestr(f"archive/data/{key}", np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
        z.writestr("archive/version", "3\n")


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)


# ---------------------------------------------------------------------------
# tiny checkpoints (names and shapes as Transformers saves them)
# ---------------------------------------------------------------------------

def tiny_text_mlm(rng, vocab=20, hidden=8, tie_in_file=False, untied=False):
    """Data2VecTextForMaskedLM weights of one layer. tie_in_file: the decoder weight is written as
    a copy (Transformers 4); untied: it differs from the embeddings."""
    H, V, I = hidden, vocab, 12
    t = {}
    p = "data2vec_text."
    t[p + "embeddings.word_embeddings.weight"] = rng.standard_normal((V, H)).astype("<f4")
    t[p + "embeddings.position_embeddings.weight"] = rng.standard_normal((16, H)).astype("<f4")
    t[p + "embeddings.token_type_embeddings.weight"] = rng.standard_normal((1, H)).astype("<f4")
    t[p + "embeddings.LayerNorm.weight"] = np.ones(H, "<f4")
    t[p + "embeddings.LayerNorm.bias"] = np.zeros(H, "<f4")
    lp = p + "encoder.layer.0."
    for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
        t[lp + n + ".weight"] = rng.standard_normal((H, H)).astype("<f4")
        t[lp + n + ".bias"] = rng.standard_normal(H).astype("<f4")
    for n in ("attention.output.LayerNorm", "output.LayerNorm"):
        t[lp + n + ".weight"] = np.ones(H, "<f4")
        t[lp + n + ".bias"] = np.zeros(H, "<f4")
    t[lp + "intermediate.dense.weight"] = rng.standard_normal((I, H)).astype("<f4")
    t[lp + "intermediate.dense.bias"] = rng.standard_normal(I).astype("<f4")
    t[lp + "output.dense.weight"] = rng.standard_normal((H, I)).astype("<f4")
    t[lp + "output.dense.bias"] = rng.standard_normal(H).astype("<f4")
    t["lm_head.dense.weight"] = rng.standard_normal((H, H)).astype("<f4")
    t["lm_head.dense.bias"] = rng.standard_normal(H).astype("<f4")
    t["lm_head.layer_norm.weight"] = np.ones(H, "<f4")
    t["lm_head.layer_norm.bias"] = np.zeros(H, "<f4")
    t["lm_head.bias"] = rng.standard_normal(V).astype("<f4")
    if tie_in_file:
        t["lm_head.decoder.weight"] = t[p + "embeddings.word_embeddings.weight"].copy()
        t["lm_head.decoder.bias"] = t["lm_head.bias"].copy()
    if untied:
        t["lm_head.decoder.weight"] = rng.standard_normal((V, H)).astype("<f4")
    config = {"model_type": "data2vec-text", "architectures": ["Data2VecTextForMaskedLM"], "vocab_size": V,
              "hidden_size": H, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": I,
              "max_position_embeddings": 16, "type_vocab_size": 1}
    if untied:
        config["tie_word_embeddings"] = False
    return config, t


def tiny_audio(rng, head="Data2VecAudioModel"):
    """A few tensors named like a data2vec-audio checkpoint (the converter checks no shapes)."""
    t = {"data2vec_audio.feature_projection.projection.weight": rng.standard_normal((8, 4)).astype("<f4"),
         "data2vec_audio.feature_projection.projection.bias": rng.standard_normal(8).astype("<f4")}
    if head == "Data2VecAudioForCTC":
        t["lm_head.weight"] = rng.standard_normal((6, 8)).astype("<f4")
        t["lm_head.bias"] = rng.standard_normal(6).astype("<f4")
    return {"model_type": "data2vec-audio", "architectures": [head], "hidden_size": 8, "vocab_size": 6}, t


def tiny_vision(rng):
    t = {"data2vec_vision.embeddings.cls_token": rng.standard_normal((1, 1, 8)).astype("<f4")}
    return {"model_type": "data2vec-vision", "architectures": ["Data2VecVisionModel"], "hidden_size": 8}, t


def make_checkpoint(folder, config, tensors, files: dict | None = None):
    """folder with config.json, model.safetensors and extra {name: JSON object or text}."""
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, "config.json"), config)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    for name, content in (files or {}).items():
        if isinstance(content, str):
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                f.write(content)
        else:
            write_json(os.path.join(folder, name), content)
    return folder
