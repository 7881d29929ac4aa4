"""Reading a checkpoint folder safely: which files may be read, and the weight-file readers.

Everything here treats the folder as hostile (see the Security section of README.md):

* ``CheckpointFolder.file(name)`` is the only way a file is opened: the path must resolve (after
  symlinks) inside the folder -- or, for a Hugging Face hub cache snapshot, inside that repository's
  ``blobs/`` folder, where the hub keeps the real files behind its snapshot symlinks -- and must be
  a regular file (a FIFO would hang us, a device would never end).
* Every size that a header claims is checked against what the file really holds before anything
  is allocated; nested JSON / pickle / HDF5 structures are bounded.
* Failures raise ``ConvertError`` with a one-line message; convert.py prints it and exits 1.

Readers return ``{name: numpy array (any dtype)}``.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import resource
import signal
import stat
import sys
import tempfile
from typing import Callable

import numpy as np

from safe_torch_pickle import TorchLoadError, load_torch_state_dict


class ConvertError(Exception):
    """Expected failure: reported as a one-line message, exit status 1."""


MAX_DOCUMENT_BYTES = 64 * 1024 * 1024           # a JSON / merges.txt document (tokenizer.json of big vocabularies: ~20 MB)
SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
MAX_DIM = 2 ** 31 - 1                           # no real tensor has a dimension beyond this
MAX_NDIM = 8
MAX_TENSOR_BYTES = 16 * 1024 ** 3


# ---------------------------------------------------------------------------
# the folder
# ---------------------------------------------------------------------------

class CheckpointFolder:
    def __init__(self, path: str):
        if not os.path.isdir(path):
            raise ConvertError(f"{path}: not a directory")
        self.path = path
        real = os.path.realpath(path)
        self.roots = [real]
        # ~/.cache/huggingface/hub/models--org--name/snapshots/<rev>/x -> ../../blobs/<sha>
        parent = os.path.dirname(real)
        if os.path.basename(parent) == "snapshots":
            blobs = os.path.join(os.path.dirname(parent), "blobs")
            if os.path.isdir(blobs):
                self.roots.append(os.path.realpath(blobs))

    def _inside(self, real: str) -> bool:
        return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots)

    def file(self, name: str, required: bool = False) -> str | None:
        """Resolved path of folder/name, or None if absent; refuses links out and non-regular files."""
        p = os.path.join(self.path, name)
        if not os.path.lexists(p):
            if required:
                raise ConvertError(f"{self.path}: {name} is missing")
            return None
        real = os.path.realpath(p)
        if not self._inside(real):
            raise ConvertError(f"{p}: resolves to {real}, outside the checkpoint folder; refusing to read it")
        try:
            st = os.stat(real)
        except OSError as e:
            raise ConvertError(f"{p}: cannot open: {e.strerror or e}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ConvertError(f"{p}: not a regular file")
        return real

    def display(self, name: str) -> str:
        return os.path.join(self.path, name)


def read_document(path: str, shown: str | None = None) -> str:
    """A UTF-8 text file of bounded size (path already resolved by CheckpointFolder.file)."""
    shown = shown or path
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as e:
        raise ConvertError(f"{shown}: cannot read: {e.strerror or e}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ConvertError(f"{shown}: larger than {MAX_DOCUMENT_BYTES} bytes; not a checkpoint document")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConvertError(f"{shown}: not valid UTF-8: {e}") from None


def parse_json(text: str, shown: str, pairs_hook=None):
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, object_pairs_hook=pairs_hook)
    except RecursionError:
        raise ConvertError(f"{shown}: invalid JSON: nested too deeply") from None
    except ValueError as e:
        raise ConvertError(f"{shown}: invalid JSON: {e}") from None


def read_json(path: str, shown: str | None = None):
    return parse_json(read_document(path, shown), shown or path)


# ---------------------------------------------------------------------------
# safetensors
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
            raise ValueError(f"duplicate key {k[:100]!r}")
        out[k] = v
    return out


def bf16_to_f32(a: np.ndarray) -> np.ndarray:
    return (a.astype(np.uint32) << 16).view(np.float32)


def check_shape(shape, where: str) -> int:
    """Element count of a header's shape; refuses non-integers, absurd ranks and dimensions."""
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(type(d) is int and 0 <= d <= MAX_DIM for d in shape)):
        raise ConvertError(f"{where}: corrupt shape {str(shape)[:100]}")
    count = 1
    for d in shape:
        count *= d
    return count


def parse_safetensors_header(raw: bytes, path: str) -> dict:
    try:
        header = parse_json(raw.decode("utf-8"), f"{path}: safetensors header", _no_duplicate_keys)
    except UnicodeDecodeError as e:
        raise ConvertError(f"{path}: corrupt safetensors header: {e}") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path}: corrupt safetensors header: not a JSON object")
    return header


def safetensors_layout(header: dict, data_size: int, path: str) -> list[tuple[str, np.dtype, list, int, int]]:
    """Validated (name, numpy dtype, shape, begin, end) of every tensor; offsets relative to the data."""
    out, ranges = [], []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name[:200]!r}"
        if not isinstance(info, dict):
            raise ConvertError(f"{where}: corrupt header entry")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _ST_DTYPES:
            raise ConvertError(f"{where}: unsupported safetensors dtype {str(dtype)[:50]!r}")
        count = check_shape(shape, where)
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(type(o) is int and o >= 0 for o in offs) or offs[0] > offs[1]):
            raise ConvertError(f"{where}: corrupt data_offsets {str(offs)[:100]}")
        np_dt = np.dtype(_ST_DTYPES[dtype])
        begin, end = offs
        if end - begin != count * np_dt.itemsize:
            raise ConvertError(
                f"{where}: data_offsets {offs} hold {end - begin} bytes but shape {shape} "
                f"of {dtype} needs {count * np_dt.itemsize}")
        if end > data_size:
            raise ConvertError(
                f"{path}: truncated or corrupt safetensors file: tensor {name[:200]!r} ends at data byte "
                f"{end} but the file holds only {data_size} data bytes")
        ranges.append((begin, end, name))
        out.append((name, np_dt, shape, begin, end))
    ranges.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(ranges, ranges[1:]):
        if b1 < e0:
            raise ConvertError(f"{path}: corrupt safetensors file: tensors {n0[:200]!r} and {n1[:200]!r} overlap")
    return out


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
        header = parse_safetensors_header(f.read(n), path)
        data_start = 8 + n
        layout = safetensors_layout(header, size - data_start, path)
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    out: dict[str, np.ndarray] = {}
    for name, np_dt, shape, begin, end in layout:
        count = (end - begin) // np_dt.itemsize
        if count == 0:
            arr = np.zeros(shape, dtype=np_dt)
        else:
            arr = np.frombuffer(mm, dtype=np_dt, count=count, offset=data_start + begin).reshape(shape)
        if np_dt == np.dtype("<u2") and header[name]["dtype"] == "BF16":
            arr = bf16_to_f32(arr)
        out[name] = arr
    return out


def read_torch_bin(path: str) -> dict[str, np.ndarray]:
    try:
        return load_torch_state_dict(path)
    except TorchLoadError as e:
        raise ConvertError(str(e)) from None


# ---------------------------------------------------------------------------
# sharded checkpoints
# ---------------------------------------------------------------------------

def read_index(folder: CheckpointFolder, index_name: str) -> dict[str, str]:
    shown = folder.display(index_name)
    index = read_json(folder.file(index_name, required=True), shown)
    wm = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(wm, dict) or not wm:
        raise ConvertError(f"{shown}: missing or empty 'weight_map'")
    for name, shard in wm.items():
        if (not isinstance(shard, str) or not shard or os.path.basename(shard) != shard
                or shard in (".", "..") or "\\" in shard or "\0" in shard):
            raise ConvertError(f"{shown}: invalid shard file name {str(shard)[:100]!r} for {name[:200]!r}")
    return wm


def read_sharded(folder: CheckpointFolder, index_name: str, reader: Callable[[str], dict]) -> dict[str, np.ndarray]:
    wm = read_index(folder, index_name)
    shown = folder.display(index_name)
    out: dict[str, np.ndarray] = {}
    for shard in sorted(set(wm.values())):
        shard_path = folder.file(shard)
        if shard_path is None:
            raise ConvertError(f"{shown}: shard {shard} is missing")
        for name, arr in reader(shard_path).items():
            if name in out:
                raise ConvertError(f"{shown}: tensor {name[:200]!r} appears in more than one shard")
            out[name] = arr
    for name, shard in wm.items():
        if name not in out:
            raise ConvertError(f"{shown}: tensor {name[:200]!r} listed for {shard} is not in any shard")
    return out


# ---------------------------------------------------------------------------
# tf_model.h5 (Keras save_weights as written by Transformers' TF models)
# ---------------------------------------------------------------------------

def _tf_name_to_pt(tf_name: str, ndim: int) -> tuple[str, tuple | None]:
    """transformers' TF2 -> PyTorch naming rules; returns (name, transpose axes)."""
    name = tf_name.replace(":0", "")
    name = re.sub(r"/[^/]*___([^/]*)/", r"/\1/", name)
    name = name.replace("_._", "/")
    name = re.sub(r"//+", "/", name)
    parts = [p for p in name.split("/") if p]
    if not parts:
        raise ConvertError(f"TF weight name {tf_name[:200]!r} is empty")
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


def _h5_str_list(value, what: str) -> list[str]:
    arr = np.asarray(value)
    if arr.ndim > 1 or arr.dtype.kind not in "SUO":
        raise ConvertError(f"{what} is not a list of strings")
    out = []
    for v in arr.reshape(-1).tolist():
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                raise ConvertError(f"{what} holds a name that is not UTF-8") from None
        if not isinstance(v, str):
            raise ConvertError(f"{what} is not a list of strings")
        out.append(v)
    return out


def config_dimension_bound(config: dict) -> int:
    """The largest dimension a tensor of this config can have: every size in a data2vec model is a
    config integer (hidden/intermediate size, channels, image size ...) or the label count, or a
    small derived number (relative-position table rows, in_channels of the fused FPN level) that
    stays under 4 x the largest of them."""
    ints = [v for v in config.values() if type(v) is int]
    for v in config.values():
        if isinstance(v, list):
            ints += [x for x in v if type(x) is int]
    labels = config.get("id2label")
    n_labels = len(labels) if isinstance(labels, dict) else 0
    return 4 * max([1024, n_labels] + ints)


def check_h5_links_and_datasets(f, h5py, path: str) -> None:
    """Refuse anything that makes HDF5 read outside this file: external/soft links, external
    storage, virtual datasets."""
    problems = []

    def visit(name, link):
        if isinstance(link, h5py.ExternalLink):
            problems.append(f"'{name[:200]}' is an external link to {link.filename[:200]}")
        elif isinstance(link, h5py.SoftLink):
            problems.append(f"'{name[:200]}' is a soft link")
        elif not isinstance(link, h5py.HardLink):
            problems.append(f"'{name[:200]}' is a link of an unknown kind")
        return True if problems else None      # a non-None value stops the walk

    f.visititems_links(visit)
    if problems:
        raise ConvertError(f"{path}: {problems[0]}; refusing a file that points outside itself")

    def visit_objects(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return None
        if obj.is_virtual:
            problems.append(f"dataset '{name[:200]}' is a virtual dataset")
        elif obj.external:
            problems.append(f"dataset '{name[:200]}' keeps its data in an external file")
        return True if problems else None

    f.visititems(visit_objects)
    if problems:
        raise ConvertError(f"{path}: {problems[0]}; refusing a file that points outside itself")


def read_h5_dataset(ds, h5py, wname: str, path: str, dim_bound: int) -> np.ndarray:
    where = f"{path}: dataset {wname[:200]!r}"
    if not isinstance(ds, h5py.Dataset):
        raise ConvertError(f"{where} is not a dataset")
    if ds.dtype.kind not in "fiub" or ds.dtype.fields is not None:
        raise ConvertError(f"{where}: unsupported element type {ds.dtype}")
    shape = list(ds.shape or ())
    if len(shape) > MAX_NDIM or any(d > dim_bound for d in shape):
        raise ConvertError(f"{where}: shape {shape} does not fit the config (largest plausible dimension {dim_bound})")
    nbytes = int(np.prod(shape, dtype=np.int64)) * ds.dtype.itemsize
    if nbytes > MAX_TENSOR_BYTES:
        raise ConvertError(f"{where}: {nbytes} bytes is more than any tensor may hold")
    stored = ds.id.get_storage_size()
    # Keras writes contiguous, uncompressed data; allow compressed chunks, but not a dataset whose
    # values are mostly a fill value that the file does not hold (a few KB becoming gigabytes).
    if nbytes > 64 * stored + 4096:
        raise ConvertError(f"{where}: {nbytes} bytes of values but only {stored} bytes stored in the file")
    return np.asarray(ds[()])


H5_CPU_LIMIT_S = 60  # a whole tf_model.h5 of a large model parses in a few seconds


class H5TimeLimit(ConvertError):
    """The HDF5 child was stopped at its CPU limit: the bound doing its job, slow by design."""


def read_tf_h5(path: str, config: dict | None = None) -> dict[str, np.ndarray]:
    """Keras ``save_weights`` HDF5 file as written by transformers' TF models.

    The HDF5 library's parser is not hardened against hostile files (fuzz_convert.py made it
    segfault on a mutated attribute), so the file is parsed in a forked child that hands the arrays
    back as .npy files; a crash there is reported as a corrupt file instead of killing us."""
    try:
        import h5py  # noqa: F401 -- lazily: only needed for TF checkpoints
    except ImportError:
        raise ConvertError(f"{path}: reading tf_model.h5 needs h5py (pip install -r "
                           "weights_tools/requirements.txt)") from None
    with tempfile.TemporaryDirectory(prefix="d2v_h5_") as tmp:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                # a mutated file sent the HDF5 library into an endless loop (fuzz_convert.py, h5):
                # the kernel stops the child after H5_CPU_LIMIT_S of CPU (SIGXCPU, reported below)
                resource.setrlimit(resource.RLIMIT_CPU, (H5_CPU_LIMIT_S, H5_CPU_LIMIT_S))
                arrays = _read_tf_h5_here(path, config)
                for i, arr in enumerate(arrays.values()):
                    np.save(os.path.join(tmp, f"{i}.npy"), arr, allow_pickle=False)
                with open(os.path.join(tmp, "names.json"), "w") as f:
                    json.dump(list(arrays), f)
            except ConvertError as e:
                code = 3
                _write_message(tmp, str(e))
            except BaseException as e:  # noqa: BLE001 -- reported by the parent as a bug
                code = 4
                _write_message(tmp, f"{type(e).__name__}: {str(e)[:300]}")
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL):
            raise H5TimeLimit(f"{path}: reading it took more than {H5_CPU_LIMIT_S} s of CPU: a corrupt or hostile file")
        if os.WIFSIGNALED(status):
            raise ConvertError(f"{path}: the HDF5 library crashed reading it (signal {os.WTERMSIG(status)}): "
                               "a corrupt or hostile file")
        code = os.WEXITSTATUS(status)
        if code == 3:
            raise ConvertError(_read_message(tmp))
        if code != 0:
            raise RuntimeError(f"{path}: h5 reader failed: {_read_message(tmp)}")
        with open(os.path.join(tmp, "names.json")) as f:
            names = json.load(f)
        return {n: np.load(os.path.join(tmp, f"{i}.npy"), allow_pickle=False) for i, n in enumerate(names)}


def _write_message(folder: str, msg: str) -> None:
    with open(os.path.join(folder, "message.txt"), "w", encoding="utf-8") as f:
        f.write(msg)


def _read_message(folder: str) -> str:
    try:
        with open(os.path.join(folder, "message.txt"), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return "no message"


def _read_tf_h5_here(path: str, config: dict | None) -> dict[str, np.ndarray]:
    import h5py
    dim_bound = config_dimension_bound(config or {})
    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            check_h5_links_and_datasets(f, h5py, path)
            if "layer_names" not in f.attrs:
                raise ConvertError(f"{path}: not a Keras weights file (no 'layer_names' attribute)")
            for layer in _h5_str_list(f.attrs["layer_names"], f"{path}: attribute layer_names"):
                group = f.get(layer)
                if not isinstance(group, h5py.Group):
                    raise ConvertError(f"{path}: layer {layer[:200]!r} is not a group")
                names = _h5_str_list(group.attrs.get("weight_names", []), f"{path}: {layer[:200]}/weight_names")
                for wname in names:
                    arr = read_h5_dataset(group.get(wname), h5py, wname, path, dim_bound)
                    pt_name, axes = _tf_name_to_pt(wname, arr.ndim)
                    pt_name = _tf_segmentation_name(pt_name)
                    if axes is not None:
                        arr = np.ascontiguousarray(np.transpose(arr, axes))
                    if pt_name in out:
                        raise ConvertError(f"{path}: two TF weights map to {pt_name[:200]!r}")
                    out[pt_name] = arr
    except ConvertError:
        raise
    except RecursionError:
        raise ConvertError(f"{path}: HDF5 structure nested too deeply") from None
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, SystemError) as e:
        # h5py turns some errors of the HDF5 library inside a visit callback into SystemError
        raise ConvertError(f"{path}: cannot read HDF5 weights: {type(e).__name__}: {str(e)[:300]}") from None
    if not out:
        raise ConvertError(f"{path}: no weights found")
    return out
