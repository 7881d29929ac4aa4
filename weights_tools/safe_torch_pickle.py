"""Read a PyTorch ``pytorch_model.bin`` state dict without torch and without
running arbitrary pickle code.

Only the zip-based serialization format (``torch.save`` since PyTorch 1.6) is
supported::

    <root>/data.pkl        pickle (protocol 2) of the state dict
    <root>/data/<key>      raw bytes of each storage
    <root>/byteorder       "little" / "big" (optional, little if absent)

The pickle is loaded with a restricted unpickler: ``find_class`` only resolves
a short whitelist of names, and every one of them is mapped to a function or
marker object defined in this module (nothing from torch is imported or
called).  Any other global -- ``os.system``, ``builtins.eval``, ... -- makes
loading fail with ``UnsafePickleError("refusing to unpickle <module>.<name>")``
before it can be called.  Tensors are rebuilt as numpy arrays from the storage
blobs, with every offset / size / stride checked against the blob length.

Public API: ``load_torch_state_dict(path) -> dict[str, numpy.ndarray]``.
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import zipfile
import zlib
from typing import Any

import numpy as np

__all__ = [
    "TorchLoadError",
    "UnsafePickleError",
    "load_torch_state_dict",
]


class TorchLoadError(Exception):
    """The file is not a readable PyTorch zip checkpoint (corrupt/unsupported)."""


class UnsafePickleError(TorchLoadError):
    """The pickle references something outside the whitelist."""


# Bounds on the work one checkpoint may cause.  A real state dict's data.pkl is ~100 bytes and ~25
# opcodes per tensor (a few MB for the largest models); a hostile one of 1 KB must not take
# minutes or gigabytes (shared sub-objects make structures whose traversal is exponential).
MAX_PICKLE_BYTES = 64 * 1024 * 1024
MAX_PICKLE_OPS = 4_000_000
MAX_MEMO_INDEX = 1_000_000       # the C unpickler sizes its memo by the largest index it sees
MAX_STACK_DEPTH = 10_000
MAX_HASHED_TREE = 1_000_000      # elements reached when a tuple / frozenset is hashed or compared
MAX_COMPRESSION_RATIO = 100      # deflate of float weights gains ~1.1x, of a pickle ~10x
MAX_VIEW_BYTES_PER_STORAGE_BYTE = 4   # tensors may share a storage (tied weights, fused qkv)


def describe(obj: Any) -> str:
    """A short description of an untrusted object: never a full repr (that can be exponential)."""
    if isinstance(obj, (int, bool)) or obj is None:
        return repr(obj)[:40]
    if isinstance(obj, str):
        return repr(obj[:60]) + ("..." if len(obj) > 60 else "")
    if isinstance(obj, (tuple, list, dict)):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return f"a {type(obj).__name__}"


# ---------------------------------------------------------------------------
# dtype handling
# ---------------------------------------------------------------------------

class _DType:
    """Marker standing in for a torch dtype / legacy storage class."""

    __slots__ = ("torch_name", "np_kind", "itemsize")

    def __init__(self, torch_name: str, np_kind: str | None, itemsize: int):
        self.torch_name = torch_name
        self.np_kind = np_kind      # numpy type code without byte order, None = unsupported
        self.itemsize = itemsize

    def __repr__(self) -> str:
        return f"<torch dtype {self.torch_name}>"

    def __reduce__(self):  # never re-pickled
        raise TypeError("not picklable")

    def __setstate__(self, state):
        raise UnsafePickleError("refusing BUILD on a dtype marker")


# bf16 is read as raw uint16 and widened later; "bf16" is our own tag.
_DTYPES = {
    "float32": _DType("float32", "f4", 4),
    "float16": _DType("float16", "f2", 2),
    "bfloat16": _DType("bfloat16", "bf16", 2),
    "float64": _DType("float64", "f8", 8),
    "int64": _DType("int64", "i8", 8),
    "int32": _DType("int32", "i4", 4),
    "int16": _DType("int16", "i2", 2),
    "int8": _DType("int8", "i1", 1),
    "uint8": _DType("uint8", "u1", 1),
    "bool": _DType("bool", "b1", 1),
}

# torch.<Name>Storage legacy classes -> element dtype
_STORAGE_TYPES = {
    "FloatStorage": _DTYPES["float32"],
    "HalfStorage": _DTYPES["float16"],
    "BFloat16Storage": _DTYPES["bfloat16"],
    "DoubleStorage": _DTYPES["float64"],
    "LongStorage": _DTYPES["int64"],
    "IntStorage": _DTYPES["int32"],
    "ShortStorage": _DTYPES["int16"],
    "CharStorage": _DTYPES["int8"],
    "ByteStorage": _DTYPES["uint8"],
    "BoolStorage": _DTYPES["bool"],
}

# torch.UntypedStorage (used together with _rebuild_tensor_v3 + explicit dtype)
_UNTYPED = _DType("untyped", "u1", 1)

# torch.<dtype> names that may appear as globals
_DTYPE_ALIASES = {
    "float32": "float32", "float": "float32",
    "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16",
    "float64": "float64", "double": "float64",
    "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32",
    "int16": "int16", "short": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}


def _np_dtype(dt: _DType, big_endian: bool) -> np.dtype:
    if dt.np_kind is None:
        raise TorchLoadError(f"unsupported tensor dtype torch.{dt.torch_name}")
    if dt.np_kind == "bf16":
        code = "u2"
    else:
        code = dt.np_kind
    if code in ("b1", "u1", "i1"):
        return np.dtype(code if code != "b1" else "?")
    return np.dtype((">" if big_endian else "<") + code)


# ---------------------------------------------------------------------------
# storages and tensors
# ---------------------------------------------------------------------------

class _Storage:
    """Lazy view on ``<root>/data/<key>`` in the zip archive."""

    __slots__ = ("_reader", "key", "dtype", "_buf")

    def __init__(self, reader: "_ZipReader", key: str, dtype: _DType):
        self._reader = reader
        self.key = key
        self.dtype = dtype
        self._buf: bytes | None = None

    def data(self) -> bytes:
        if self._buf is None:
            self._buf = self._reader.read_storage(self.key)
        return self._buf

    def __reduce__(self):
        raise TypeError("not picklable")

    def __setstate__(self, state):
        raise UnsafePickleError("refusing BUILD on a storage")


class _TensorRef:
    """Result of ``_rebuild_tensor_v2``: a (not yet materialised) strided view."""

    __slots__ = ("storage", "offset", "size", "stride", "dtype")

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple, dtype: _DType):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride
        self.dtype = dtype

    def __setstate__(self, state):
        raise UnsafePickleError("refusing BUILD on a tensor")

    def to_numpy(self, big_endian: bool) -> np.ndarray:
        """Materialise as a C-contiguous numpy array (bf16 widened to float32)."""
        elem = _np_dtype(self.dtype, big_endian)
        blob = self.storage.data()
        if len(blob) % elem.itemsize:
            raise TorchLoadError(
                f"storage {describe(self.storage.key)}: {len(blob)} bytes is not a multiple of "
                f"the element size {elem.itemsize} ({self.dtype.torch_name})")
        n_elem = len(blob) // elem.itemsize
        size, stride, offset = self.size, self.stride, self.offset
        numel = 1
        for s in size:
            numel *= s
        # highest element index touched by this view
        last = offset + sum((s - 1) * st for s, st in zip(size, stride))
        if numel and last >= n_elem:
            raise TorchLoadError(
                f"storage {describe(self.storage.key)}: tensor view (offset {offset}, size {list(size)}, "
                f"stride {list(stride)}) exceeds the storage of {n_elem} elements")
        if numel > MAX_VIEW_BYTES_PER_STORAGE_BYTE * max(n_elem, 1):
            raise TorchLoadError(
                f"storage {describe(self.storage.key)}: tensor of {numel} elements over a storage of "
                f"{n_elem} elements (a broadcast view) is more than a checkpoint needs")
        if numel == 0:
            arr = np.zeros(size, dtype=elem)
        else:
            base = np.frombuffer(blob, dtype=elem, count=n_elem)
            arr = np.lib.stride_tricks.as_strided(
                base[offset:],
                shape=size,
                strides=tuple(st * elem.itemsize for st in stride),
                writeable=False,
            ).copy()
        if self.dtype.np_kind == "bf16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _check_int_tuple(value: Any, what: str) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise TorchLoadError(f"malformed tensor record: {what} is {describe(value)}, expected a tuple")
    if len(value) > 64:
        raise TorchLoadError(f"malformed tensor record: {what} has {len(value)} dimensions")
    out = []
    for v in value:
        if type(v) is not int or v < 0 or v > 2 ** 31 - 1:
            raise TorchLoadError(f"malformed tensor record: {what} contains {describe(v)}")
        out.append(v)
    return tuple(out)


def _make_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, dtype: _DType | None = None) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise TorchLoadError("malformed tensor record: first argument is not a storage")
    if type(storage_offset) is not int or storage_offset < 0:
        raise TorchLoadError(f"malformed tensor record: storage offset {describe(storage_offset)}")
    size = _check_int_tuple(size, "size")
    stride = _check_int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise TorchLoadError("malformed tensor record: size and stride differ in length")
    if dtype is None:
        dtype = storage.dtype
    if storage.dtype is not _UNTYPED and dtype is not storage.dtype:
        raise TorchLoadError("malformed tensor record: dtype does not match the storage type")
    if dtype is _UNTYPED:
        raise TorchLoadError("untyped storage without an explicit dtype")
    return _TensorRef(storage, storage_offset, size, stride, dtype)


# --- the functions the whitelisted globals resolve to -----------------------

def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _make_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _make_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    if not isinstance(dtype, _DType):
        raise TorchLoadError("malformed tensor record: bad dtype argument")
    return _make_tensor(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *unused):
    if not isinstance(data, _TensorRef):
        raise TorchLoadError("malformed parameter record")
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state=None):
    return _rebuild_parameter(data)


def _ordered_dict(*args):
    # only the empty constructor call (and an iterable of pairs) is meaningful
    return collections.OrderedDict(*args)


_SAFE_GLOBALS = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch", "UntypedStorage"): _UNTYPED,
}
for _n, _d in _STORAGE_TYPES.items():
    _SAFE_GLOBALS[("torch", _n)] = _d
for _alias, _canon in _DTYPE_ALIASES.items():
    _SAFE_GLOBALS[("torch", _alias)] = _DTYPES[_canon]


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, reader: "_ZipReader"):
        super().__init__(io.BytesIO(data))
        self._reader = reader
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(f"refusing to unpickle {str(module)[:100]}.{str(name)[:100]}") from None

    def persistent_load(self, pid: Any):
        # ('storage', storage_type, key, location, numel)
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _DType) or not isinstance(pid[2], str)
                or type(pid[4]) is not int):
            raise TorchLoadError(f"malformed persistent id ({describe(pid)})")
        storage_type, key = pid[1], pid[2]
        st = self._storages.get(key)
        if st is None:
            st = _Storage(self._reader, key, storage_type)
            self._reader.check_storage_exists(key)
            self._storages[key] = st
        elif st.dtype is not storage_type:
            raise TorchLoadError(f"storage {describe(key)} referenced with two different types")
        return st


# ---------------------------------------------------------------------------
# zip container
# ---------------------------------------------------------------------------

class _ZipReader:
    def __init__(self, zf: zipfile.ZipFile, path: str):
        self.zf = zf
        self.path = path
        self.file_size = zf.fp.seek(0, 2) if zf.fp is not None else 0
        names = zf.namelist()
        pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkls:
            if "data.pkl" in names:
                pkls = ["data.pkl"]
            else:
                raise TorchLoadError(f"{path}: zip archive has no data.pkl (not a PyTorch checkpoint)")
        if len(pkls) > 1:
            raise TorchLoadError(f"{path}: zip archive has several data.pkl records")
        self.root = pkls[0][: -len("data.pkl")]          # "archive/" or ""
        self.members = {info.filename: info for info in zf.infolist()}
        self.storage_bytes_read = 0
        bo = self.root + "byteorder"
        self.big_endian = False
        if bo in self.members:
            order = self.read_member(bo, 64).decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise TorchLoadError(f"{path}: unknown byteorder {order[:20]!r}")
            self.big_endian = order == "big"

    def read_member(self, name: str, limit: int) -> bytes:
        """A member's bytes, refusing sizes over `limit` or beyond what its compressed size can
        hold -- checked before inflating, and again while reading (the header may lie)."""
        info = self.members[name]
        if info.flag_bits & 0x1:
            raise TorchLoadError(f"{self.path}: {name} is encrypted")
        if info.file_size > limit:
            raise TorchLoadError(f"{self.path}: {name} is {info.file_size} bytes, more than the {limit} allowed")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size > self.file_size:
                raise TorchLoadError(f"{self.path}: {name} claims {info.file_size} bytes, more than the whole file")
        elif info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) + 4096:
            raise TorchLoadError(f"{self.path}: {name}: suspicious compression ratio "
                                 f"({info.compress_size} bytes inflate to {info.file_size})")
        with self.zf.open(info) as member:
            data = member.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise TorchLoadError(f"{self.path}: {name} holds {len(data)} bytes, its header says {info.file_size}")
        return data

    def read_pickle(self) -> bytes:
        return self.read_member(self.root + "data.pkl", MAX_PICKLE_BYTES)

    def _member(self, key: str) -> str:
        if not key or "/" in key or "\\" in key or key in (".", "..") or len(key) > 256:
            raise TorchLoadError(f"invalid storage key {describe(key)}")
        return self.root + "data/" + key

    def check_storage_exists(self, key: str) -> None:
        if self._member(key) not in self.members:
            raise TorchLoadError(f"storage record data/{describe(key)} is missing from the archive")

    def read_storage(self, key: str) -> bytes:
        data = self.read_member(self._member(key), 1 << 40)
        self.storage_bytes_read += len(data)
        return data


_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
_HASHABLE_CONTAINERS = {"TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "FROZENSET"}
_MARK = object()


def check_pickle_bounds(data: bytes) -> None:
    """Walk the opcodes (never executing them) with an abstract stack, and refuse a pickle whose
    unpickling would cost more than a state dict can need: too many opcodes, a huge memo index,
    a deep stack, or a tuple/frozenset whose element tree (counting shared sub-objects each time
    they are reached, as hashing and comparing do) is huge.  Stack items are that tree size; lists,
    dicts and everything opaque count 1 (hashing stops at them)."""
    stack: list = []
    memo: dict[int, Any] = {}
    n_ops = 0
    try:
        for op, arg, _pos in pickletools.genops(data):
            n_ops += 1
            if n_ops > MAX_PICKLE_OPS:
                raise TorchLoadError(f"pickle has more than {MAX_PICKLE_OPS} opcodes")
            name = op.name
            if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                index = len(memo) if name == "MEMOIZE" else arg
                if type(index) is not int or not 0 <= index <= MAX_MEMO_INDEX:
                    raise TorchLoadError(f"pickle memo index {describe(index)} is out of range")
                if not stack or stack[-1] is _MARK:
                    raise TorchLoadError("corrupt pickle: memo store from an empty stack")
                memo[index] = stack[-1]
                continue
            if name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise TorchLoadError(f"corrupt pickle: memo index {describe(arg)} was never stored")
                stack.append(memo[arg])
                continue
            if name == "MARK":
                stack.append(_MARK)
            elif name == "DUP":
                if not stack:
                    raise TorchLoadError("corrupt pickle: DUP on an empty stack")
                stack.append(stack[-1])
            else:
                before = op.stack_before
                popped: list = []
                if pickletools.markobject in before:
                    while stack and stack[-1] is not _MARK:
                        popped.append(stack.pop())
                    if not stack:
                        raise TorchLoadError(f"corrupt pickle: {name} without a MARK")
                    stack.pop()
                    n_more = before.index(pickletools.markobject)
                else:
                    n_more = len(before)
                for _ in range(n_more):
                    if not stack or stack[-1] is _MARK:
                        raise TorchLoadError(f"corrupt pickle: {name} on a too short stack")
                    popped.append(stack.pop())
                if name in _MUTATORS:
                    stack.append(popped[-1])                      # the container stays
                elif name in _HASHABLE_CONTAINERS:
                    tree = 1 + sum(popped)
                    if tree > MAX_HASHED_TREE:
                        raise TorchLoadError(f"pickle builds a {name.lower()} of more than {MAX_HASHED_TREE} "
                                             "nested elements (shared sub-objects)")
                    stack.append(tree)
                else:
                    stack.extend([1] * len(op.stack_after))
            if len(stack) > MAX_STACK_DEPTH:
                raise TorchLoadError(f"pickle stack deeper than {MAX_STACK_DEPTH}")
    except TorchLoadError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, UnicodeDecodeError) as e:
        raise TorchLoadError(f"corrupt pickle data: {type(e).__name__}: {str(e)[:200]}") from None


def _is_legacy_pickle(head: bytes) -> bool:
    return head[:1] == b"\x80"


def state_dict_from_pickle(data: bytes, reader, path: str) -> dict[str, np.ndarray]:
    """Unpickle data.pkl (bounded, whitelisted) and materialise its tensors from `reader`'s
    storages (anything with check_storage_exists / read_storage / storage_bytes_read)."""
    try:
        check_pickle_bounds(data)
        obj = _RestrictedUnpickler(data, reader).load()
    except TorchLoadError as e:
        raise type(e)(f"{path}: {e}") from None
    except RecursionError:
        raise TorchLoadError(f"{path}: pickle nesting too deep") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            IndexError, AttributeError, OverflowError, MemoryError) as e:
        raise TorchLoadError(f"{path}: corrupt pickle data: {type(e).__name__}: {str(e)[:300]}") from None
    if not isinstance(obj, dict):
        raise TorchLoadError(f"{path}: top-level object is {describe(obj)}, expected a state dict")
    # accept {"state_dict": {...}} / {"model": {...}} wrappers that only hold one dict
    if obj and not any(isinstance(v, _TensorRef) for v in obj.values()):
        inner = [v for v in obj.values() if isinstance(v, dict)]
        if len(inner) == 1:
            obj = inner[0]
    out: dict[str, np.ndarray] = {}
    out_bytes = 0
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TorchLoadError(f"{path}: state dict key {describe(name)} is not a string")
        if isinstance(value, _TensorRef):
            try:
                arr = value.to_numpy(reader.big_endian)
            except TorchLoadError as e:
                raise TorchLoadError(f"{path}: tensor {describe(name)}: {e}") from None
            out_bytes += arr.nbytes
            if out_bytes > MAX_VIEW_BYTES_PER_STORAGE_BYTE * reader.storage_bytes_read + (1 << 20):
                raise TorchLoadError(f"{path}: its tensors view the same storage bytes over and over "
                                     f"({out_bytes} bytes of tensors from {reader.storage_bytes_read} "
                                     "stored); refusing")
            out[name] = arr
        # non-tensor entries (e.g. nested metadata) are ignored
    return out


def load_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """Load a zip-format ``pytorch_model.bin`` as ``{name: numpy array}``.

    Floating tensors keep their dtype (float16/float32/float64; bfloat16 is
    widened to float32), integer/bool tensors are returned as such.  Raises
    ``UnsafePickleError`` for a non-whitelisted global and ``TorchLoadError``
    for anything else that is wrong with the file.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise TorchLoadError(f"{path}: cannot read: {e.strerror or e}") from None
    if not zipfile.is_zipfile(path):
        if _is_legacy_pickle(head):
            raise TorchLoadError(
                f"{path}: legacy (pre-1.6, non-zip) PyTorch serialization is not supported; "
                "re-save it with a recent torch (torch.save) or as safetensors")
        if head[:4] == b"PK\x03\x04":
            raise TorchLoadError(f"{path}: truncated or corrupt zip archive (no central directory)")
        if len(head) < 4:
            raise TorchLoadError(f"{path}: file is truncated")
        raise TorchLoadError(f"{path}: not a PyTorch zip checkpoint")
    try:
        with zipfile.ZipFile(path) as zf:
            reader = _ZipReader(zf, path)
            return state_dict_from_pickle(reader.read_pickle(), reader, path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, zlib.error, EOFError,
            ValueError, OverflowError, RuntimeError) as e:
        raise TorchLoadError(f"{path}: corrupt zip archive: {type(e).__name__}: {str(e)[:300]}") from None
    except OSError as e:
        raise TorchLoadError(f"{path}: read error: {e}") from None
