#!/usr/bin/env python3
"""Hostile checkpoints (issue #10 findings 4, 9, 10, 11): each must end in exit status 1 with a
one-line message and no traceback, inside 2 GB of address space and 60 s (convert_test_util), and
must never copy a file from outside the checkpoint folder into the output.  Hand-written files
only: needs weights_tools/requirements.txt (gguf, numpy, h5py); CI runs it.

    python3 weights_tools/test_convert_hostile.py [-k NAME]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_test_util import (  # noqa: E402
    Failure, check, expect_ok, expect_refused, make_checkpoint, safetensors_bytes, tiny_audio,
    write_json, write_safetensors, write_torch_zip)

SECRET = "TOP-SECRET-7c1d: a file outside the checkpoint folder\n"
FE = {"feature_size": 1, "sampling_rate": 16000, "do_normalize": True}


def secret_file(tmp):
    path = os.path.join(tmp, "outside", "secret.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(SECRET)
    return path


def audio_ckpt(tmp, name="ckpt"):
    cfg, t = tiny_audio(np.random.default_rng(0))
    return make_checkpoint(os.path.join(tmp, name), cfg, t, {"preprocessor_config.json": FE}), cfg, t


# ---------------------------------------------------------------------------
# finding 9: nothing outside the checkpoint folder is read
# ---------------------------------------------------------------------------

def test_symlinked_documents_outside_refused(tmp):
    secret = secret_file(tmp)
    for name in ("merges.txt", "vocab.json", "tokenizer.json", "preprocessor_config.json", "config.json"):
        d, _, _ = audio_ckpt(tmp, "ck_" + name.replace(".", "_"))
        target = os.path.join(d, name)
        if os.path.exists(target):
            os.unlink(target)
        os.symlink(secret, target)
        expect_refused(d, f"{tmp}/{name}.gguf", name, "outside the checkpoint folder")
    # relative link climbing out of the folder
    d, _, _ = audio_ckpt(tmp, "ck_rel")
    os.symlink("../outside/secret.txt", os.path.join(d, "merges.txt"))
    expect_refused(d, f"{tmp}/rel.gguf", "outside the checkpoint folder")


def test_symlinked_weights_outside_refused(tmp):
    cfg, t = tiny_audio(np.random.default_rng(0))
    outside = os.path.join(tmp, "outside")
    os.makedirs(outside)
    write_safetensors(os.path.join(outside, "model.safetensors"), t)
    write_json(os.path.join(outside, "index.json"), {"weight_map": {n: "model-1.safetensors" for n in t}})
    # model.safetensors
    d = os.path.join(tmp, "st")
    os.makedirs(d)
    write_json(os.path.join(d, "config.json"), cfg)
    os.symlink(os.path.join(outside, "model.safetensors"), os.path.join(d, "model.safetensors"))
    expect_refused(d, f"{tmp}/st.gguf", "model.safetensors", "outside the checkpoint folder")
    # a shard
    d = os.path.join(tmp, "shard")
    os.makedirs(d)
    write_json(os.path.join(d, "config.json"), cfg)
    write_json(os.path.join(d, "model.safetensors.index.json"), {"weight_map": {n: "model-1.safetensors" for n in t}})
    os.symlink(os.path.join(outside, "model.safetensors"), os.path.join(d, "model-1.safetensors"))
    expect_refused(d, f"{tmp}/shard.gguf", "model-1.safetensors", "outside the checkpoint folder")
    # the index
    d = os.path.join(tmp, "index")
    os.makedirs(d)
    write_json(os.path.join(d, "config.json"), cfg)
    write_safetensors(os.path.join(d, "model-1.safetensors"), t)
    os.symlink(os.path.join(outside, "index.json"), os.path.join(d, "model.safetensors.index.json"))
    expect_refused(d, f"{tmp}/index.gguf", "index.json", "outside the checkpoint folder")


def test_symlinks_inside_and_hub_cache_accepted(tmp):
    d, _, _ = audio_ckpt(tmp)
    os.rename(os.path.join(d, "model.safetensors"), os.path.join(d, "weights.bin"))
    os.symlink("weights.bin", os.path.join(d, "model.safetensors"))
    expect_ok(d, f"{tmp}/inside.gguf")
    # ~/.cache/huggingface/hub layout: snapshots/<rev>/file -> ../../blobs/<sha>
    repo = os.path.join(tmp, "hub", "models--org--tiny")
    snap = os.path.join(repo, "snapshots", "abc123")
    os.makedirs(os.path.join(repo, "blobs"))
    os.makedirs(snap)
    for name in os.listdir(d):
        src = os.path.realpath(os.path.join(d, name))
        blob = os.path.join(repo, "blobs", "sha-" + name)
        shutil.copy(src, blob)
        os.symlink(os.path.join("..", "..", "blobs", "sha-" + name), os.path.join(snap, name))
    os.unlink(os.path.join(snap, "weights.bin"))
    expect_ok(snap, f"{tmp}/hub.gguf")


def test_fifo_and_oversized_documents_refused(tmp):
    d, _, _ = audio_ckpt(tmp, "fifo")
    os.unlink(os.path.join(d, "preprocessor_config.json"))
    os.mkfifo(os.path.join(d, "preprocessor_config.json"))       # opening it would block forever
    expect_refused(d, f"{tmp}/fifo.gguf", "preprocessor_config.json", "not a regular file")
    d, _, _ = audio_ckpt(tmp, "big")
    with open(os.path.join(d, "vocab.json"), "wb") as f:
        f.truncate(65 * 1024 * 1024)                              # sparse: costs no disk
    expect_refused(d, f"{tmp}/big.gguf", "vocab.json", "larger than")


def _keras_file(path, datasets: dict, cfg_dir=None):
    """A Keras save_weights layout: root attr layer_names, per-layer weight_names; datasets are
    {weight name: callable(group, name)} creating each dataset."""
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"layer"]
        g = f.create_group("layer")
        g.attrs["weight_names"] = [n.encode() for n in datasets]
        for name, make in datasets.items():
            make(g, name)


def _vision_h5_ckpt(tmp, name, datasets):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    write_json(os.path.join(d, "config.json"), {"model_type": "data2vec-vision", "hidden_size": 8,
                                                "architectures": ["TFData2VecVisionModel"]})
    write_json(os.path.join(d, "preprocessor_config.json"), {"size": 32})
    _keras_file(os.path.join(d, "tf_model.h5"), datasets)
    return d


def _no_secret_in(path):
    if os.path.exists(path):
        with open(path, "rb") as f:
            check(SECRET.encode()[:20] not in f.read(), f"{path} holds the outside file's contents")


def test_h5_external_storage_link_virtual_refused(tmp):
    import h5py
    secret = secret_file(tmp)
    n = len(SECRET)
    other = os.path.join(tmp, "outside", "other.h5")
    with h5py.File(other, "w") as f:
        f.create_dataset("data", data=np.frombuffer(SECRET.encode(), dtype="u1").astype("f4"))
    cases = {
        "external_storage": (lambda g, w: g.create_dataset(w, shape=(n // 4,), dtype="f4",
                                                           external=[(secret, 0, n // 4 * 4)]), "external file"),
        "external_link": (lambda g, w: g.__setitem__(w, h5py.ExternalLink(other, "/data")), "external link"),
        "soft_link": (lambda g, w: (g.create_dataset("real", data=np.zeros(3, "f4")),
                                    g.__setitem__(w, h5py.SoftLink("/layer/real"))), "soft link"),
    }

    def virtual(g, w):
        layout = h5py.VirtualLayout(shape=(n,), dtype="f4")
        layout[:] = h5py.VirtualSource(other, "data", shape=(n,))
        g.create_virtual_dataset(w, layout)

    cases["virtual"] = (virtual, "virtual dataset")
    for name, (make, needle) in cases.items():
        d = _vision_h5_ckpt(tmp, name, {"tf_model/data2vec_vision/embeddings/cls_token:0": make})
        out = f"{tmp}/{name}.gguf"
        expect_refused(d, out, "tf_model.h5", needle)
        _no_secret_in(out)


# ---------------------------------------------------------------------------
# finding 4: a tiny h5 claiming gigabytes
# ---------------------------------------------------------------------------

def test_h5_fill_value_dataset_refused(tmp):
    def huge(g, w):
        g.create_dataset(w, shape=(40000, 25000), dtype="f4", fillvalue=1.0)   # 4 GB of values, 0 stored

    d = _vision_h5_ckpt(tmp, "huge", {"tf_model/data2vec_vision/embeddings/cls_token:0": huge})
    check(os.path.getsize(os.path.join(d, "tf_model.h5")) < 100_000, "fixture should be tiny")
    expect_refused(d, f"{tmp}/huge.gguf", "does not fit the config")

    def unstored(g, w):    # dimensions the config allows, values the file does not hold
        g.create_dataset(w, shape=(4000, 4000), dtype="f4", fillvalue=1.0)

    d = _vision_h5_ckpt(tmp, "unstored", {"tf_model/data2vec_vision/embeddings/cls_token:0": unstored})
    expect_refused(d, f"{tmp}/unstored.gguf", "stored in the file")


# ---------------------------------------------------------------------------
# finding 10: pickles that cost exponential time / memory
# ---------------------------------------------------------------------------

def _proto2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _binput(i):
    return b"q" + bytes([i])


def _binget(i):
    return b"h" + bytes([i])


def _unicode(s: str) -> bytes:
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def shared_lists_pid_pickle(levels=40) -> bytes:
    """{'w': persistent_load(('storage', L40))}, L_k = [L_{k-1}, L_{k-1}]: 2**40 paths in ~400 bytes."""
    body = b"}" + _unicode("w") + b"]" + _binput(0) + b"0"
    for k in range(1, levels + 1):
        body += b"](" + _binget(k - 1) + _binget(k - 1) + b"e" + _binput(k) + b"0"
    body += b"(" + _unicode("storage") + _binget(levels) + b"tQs"
    return _proto2(body)


def shared_tuples_key_pickle(levels=40) -> bytes:
    """{T40: None}, T_k = (T_{k-1}, T_{k-1}): hashing the key visits 2**40 tuples."""
    body = b"}" + b")" + _binput(0) + b"0"
    for k in range(1, levels + 1):
        body += _binget(k - 1) + _binget(k - 1) + b"\x86" + _binput(k) + b"0"
    body += _binget(levels) + b"Ns"
    return _proto2(body)


def test_pickle_shared_structures_bounded(tmp):
    cases = {"lists_pid": (shared_lists_pid_pickle(), "malformed persistent id"),
             "tuples_key": (shared_tuples_key_pickle(), "nested elements"),
             "memo_index": (_proto2(b"Nr\xff\xff\xff\x7f"), "memo index"),
             "deep_stack": (_proto2(b"(" * 200_000), "stack deeper"),
             # fuzz_convert.py finding: the C unpickler raised OverflowError for this FRAME length
             "frame_length": (b"\x80\x04\x95" + (2 ** 64 - 1).to_bytes(8, "little") + b"N.", "corrupt pickle")}
    for name, (data, needle) in cases.items():
        d, _, _ = audio_ckpt(tmp, name)
        os.unlink(os.path.join(d, "model.safetensors"))
        write_torch_zip(os.path.join(d, "pytorch_model.bin"), {}, pickle_bytes=data)
        line = expect_refused(d, f"{tmp}/{name}.gguf", "pytorch_model.bin", needle)
        check(len(line) < 2000, f"{name}: message of {len(line)} characters")


# ---------------------------------------------------------------------------
# finding 11: compression bombs, absurd safetensors shapes, deep JSON
# ---------------------------------------------------------------------------

def test_deflated_pickle_bomb_refused(tmp):
    d, _, _ = audio_ckpt(tmp)
    os.unlink(os.path.join(d, "model.safetensors"))
    path = os.path.join(d, "pytorch_model.bin")
    chunk = b"\0" * (16 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("archive/data.pkl", "w", force_zip64=True) as m:
            for _ in range(64):                                    # 1 GiB of zeros -> ~1 MB deflated
                m.write(chunk)
        z.writestr("archive/byteorder", "little")
    check(os.path.getsize(path) < 3_000_000, "bomb should be small")
    expect_refused(d, f"{tmp}/bomb.gguf", "data.pkl", "allowed")


def test_deflated_storage_bomb_refused(tmp):
    d, _, t = audio_ckpt(tmp)
    os.unlink(os.path.join(d, "model.safetensors"))
    path = os.path.join(d, "pytorch_model.bin")
    write_torch_zip(path, t)
    tmp_zip = path + ".new"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp_zip, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "archive/data/0":
                data = b"\0" * (256 << 20)
                zout.writestr(info.filename, data, zipfile.ZIP_DEFLATED)
            else:
                zout.writestr(info.filename, data)
    os.replace(tmp_zip, path)
    expect_refused(d, f"{tmp}/sbomb.gguf", "compression ratio")


def test_safetensors_absurd_shapes_and_deep_header(tmp):
    cfg, _ = tiny_audio(np.random.default_rng(0))
    cases = {
        "dims_2_62": {"a": {"dtype": "F32", "shape": [2 ** 62, 2 ** 62, 0], "data_offsets": [0, 0]}},
        "dims_2_64": {"a": {"dtype": "F32", "shape": [2 ** 64, 0], "data_offsets": [0, 0]}},
        "negative": {"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}},
        "rank_100": {"a": {"dtype": "F32", "shape": [1] * 100, "data_offsets": [0, 4]}},
    }
    for name, header in cases.items():
        d = make_checkpoint(os.path.join(tmp, name), cfg, {}, {"preprocessor_config.json": FE})
        raw = json.dumps(header).encode()
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(len(raw).to_bytes(8, "little") + raw + b"\0" * 4)
        expect_refused(d, f"{tmp}/{name}.gguf", "model.safetensors", "corrupt shape")
    d = make_checkpoint(os.path.join(tmp, "deep"), cfg, {}, {"preprocessor_config.json": FE})
    raw = b"[" * 100_000
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
    expect_refused(d, f"{tmp}/deep.gguf", "model.safetensors", "nested too deeply")
    d, _, _ = audio_ckpt(tmp, "deepcfg")
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write("[" * 100_000)
    expect_refused(d, f"{tmp}/deepcfg.gguf", "config.json", "nested too deeply")


def test_safetensors_overlap_and_truncation(tmp):
    cfg, t = tiny_audio(np.random.default_rng(0))
    data = safetensors_bytes(t)
    for name, blob, needle in (("trunc", data[:-3], "truncated"), ("short", data[:5], "truncated"),
                               ("len", (2 ** 63).to_bytes(8, "little") + data[8:], "header length")):
        d = make_checkpoint(os.path.join(tmp, name), cfg, {}, {"preprocessor_config.json": FE})
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(blob)
        expect_refused(d, f"{tmp}/{name}.gguf", needle)


def test_index_shard_names_refused(tmp):
    cfg, t = tiny_audio(np.random.default_rng(0))
    for bad in ("../outside.safetensors", "/etc/passwd", "a\\b"):
        d = make_checkpoint(os.path.join(tmp, f"idx{abs(hash(bad))}"), cfg, {}, {"preprocessor_config.json": FE})
        os.unlink(os.path.join(d, "model.safetensors"))
        write_json(os.path.join(d, "model.safetensors.index.json"), {"weight_map": {"x": bad}})
        expect_refused(d, f"{tmp}/idx.gguf", "invalid shard file name")


# ---------------------------------------------------------------------------
# fuzz_convert.py findings
# ---------------------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_hdf5_library_crash_contained(tmp):
    """A mutated Keras file on which HDF5 1.14 (h5py 3.16) segfaults reading an attribute."""
    d = _vision_h5_ckpt(tmp, "crash", {})
    shutil.copy(os.path.join(REPO, "tests", "fixtures", "converter", "hdf5_segfault_attribute.h5"),
                os.path.join(d, "tf_model.h5"))
    expect_refused(d, f"{tmp}/crash.gguf", "tf_model.h5")


def test_encrypted_zip_member_refused(tmp):
    d, _, t = audio_ckpt(tmp)
    os.unlink(os.path.join(d, "model.safetensors"))
    path = os.path.join(d, "pytorch_model.bin")
    write_torch_zip(path, t)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    i = data.find(b"PK\x01\x02")                     # first central-directory entry: data.pkl
    data[i + 8] |= 1                                   # general purpose flag bit 0: encrypted
    with open(path, "wb") as f:
        f.write(data)
    expect_refused(d, f"{tmp}/enc.gguf", "encrypted")


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]


def main(argv):
    only = argv[argv.index("-k") + 1] if "-k" in argv else None
    failed = 0
    for test in TESTS:
        if only and only not in test.__name__:
            continue
        with tempfile.TemporaryDirectory(prefix="d2v_hostile_") as tmp:
            try:
                test(tmp)
                print(f"ok    {test.__name__}", flush=True)
            except Failure as e:
                failed += 1
                print(f"FAIL  {test.__name__}: {e}", flush=True)
    print(f"{os.path.basename(__file__)}: {'all passed' if not failed else f'{failed} FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
