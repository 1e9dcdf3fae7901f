"""The tensors of a PyTorch file as numpy arrays, read without torch: TorchScript modules
(`torch.jit.save`), state dicts saved by `torch.save` (zip, torch >= 1.6, or the legacy format
before it).

Why not torch: it is a 700 MB dependency this project does not otherwise need, and loading a
pickle with it runs whatever code the file names. Here the pickle is read by a restricted
Unpickler: only OrderedDict, torch's tensor-rebuilding functions, its storage types, TorchScript's
list builders and TorchScript module classes (stand-ins that only keep their attributes) can be
named; anything else is refused, so a hostile file cannot run code.

The formats: a zip holds `<prefix>/data.pkl` (the object; each tensor is
`torch._utils._rebuild_tensor_v2(storage, offset, shape, stride, ...)`, each storage a persistent
id `('storage', torch.FloatStorage, key, location, numel)`) and the raw little-endian bytes of
storage `key` in `<prefix>/data/<key>`. The legacy format is a sequence of pickles: a magic number,
a protocol version, system info, the object, the list of storage keys, then each storage as an
int64 element count followed by its bytes, in key order.
"""

import collections
import io
import pickle
import zipfile
from typing import Any

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnreadableFile(ValueError):
    """Not a PyTorch file this reader understands; the message says what was found."""


class _Module:
    """A TorchScript module (or any `__torch__.*` object): only its attributes are kept."""

    def __init__(self, *args):
        self.state: dict[str, Any] = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


class _StorageType(str):
    """`torch.FloatStorage` and friends, as the name of their numpy dtype."""


class _Tensor:
    """A tensor to build once its storage's bytes are at hand."""

    def __init__(self, storage, offset, shape, stride, *_):
        self.storage, self.offset = storage, int(offset)
        self.shape, self.stride = tuple(int(n) for n in shape), tuple(int(s) for s in stride)

    def build(self, storages: dict[str, np.ndarray]) -> np.ndarray:
        data = storages[self.storage[0]]
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride))
        if min(self.shape, default=1) > 0 and (self.offset < 0 or last >= len(data)):
            raise UnreadableFile(f"a tensor of shape {self.shape} runs past its storage")
        if min(self.shape, default=1) == 0:
            return np.zeros(self.shape, data.dtype)
        strides = tuple(s * data.itemsize for s in self.stride)
        view = np.lib.stride_tricks.as_strided(data[self.offset :], self.shape, strides)
        return np.array(view)


def _rebuild_parameter(tensor, *_):
    return tensor


class _Unpickler(pickle.Unpickler):
    """Names only what a tensor file needs (module doc); storages become (key, dtype, numel)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _Tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch.jit._pickle" and name.startswith("build_"):
            return lambda items: items
        if module.startswith("__torch__."):
            return type(name, (_Module,), {})
        raise UnreadableFile(f"it names {module}.{name}, which a tensor file does not need")

    def persistent_load(self, pid: Any) -> tuple[str, Any, int]:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnreadableFile(f"unknown persistent id {str(pid)[:60]}")
        if len(pid) > 5 and pid[5] is not None:
            raise UnreadableFile("it holds storage views (torch < 0.4), which are not supported")
        if pid[1] not in _STORAGE_DTYPES:
            raise UnreadableFile(f"unsupported storage type {pid[1]}")
        return str(pid[2]), np.dtype(_STORAGE_DTYPES[pid[1]]), int(pid[4])


def _flatten(obj: Any, prefix: str = "") -> dict[str, _Tensor]:
    """{dotted name: tensor} of a state dict or a TorchScript module tree."""
    if isinstance(obj, _Module):
        obj = obj.state
    if isinstance(obj, _Tensor):
        return {prefix: obj}
    found = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            found.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def _storages_used(tensors: dict[str, _Tensor]) -> dict[str, tuple[np.dtype, int]]:
    return {t.storage[0]: t.storage[1:] for t in tensors.values()}


def _read_zip(archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise UnreadableFile("a zip without one <prefix>/data.pkl (not a torch.save/jit.save file)")
    prefix = pickles[0][: -len("data.pkl")]
    tensors = _flatten(_Unpickler(io.BytesIO(archive.read(pickles[0]))).load())
    storages = {}
    for key, (dtype, numel) in _storages_used(tensors).items():
        raw = archive.read(f"{prefix}data/{key}")
        if len(raw) < numel * dtype.itemsize:
            raise UnreadableFile(f"storage {key} holds {len(raw)} bytes, fewer than it claims")
        storages[key] = np.frombuffer(raw, dtype.newbyteorder("<"), numel).astype(dtype)
    return {name: t.build(storages) for name, t in tensors.items()}


def _read_legacy(file: io.BufferedReader) -> dict[str, np.ndarray]:
    if _Unpickler(file).load() != _LEGACY_MAGIC:
        raise UnreadableFile("neither a zip nor a legacy torch.save file")
    _Unpickler(file).load()  # protocol version
    _Unpickler(file).load()  # system info (a dict of plain values)
    tensors = _flatten(_Unpickler(file).load())
    keys = _Unpickler(file).load()
    used = _storages_used(tensors)
    storages = {}
    for key in keys:
        numel = int(np.frombuffer(file.read(8), "<i8")[0])
        dtype = used.get(key, (np.dtype(np.uint8), 0))[0]
        raw = file.read(numel * dtype.itemsize)
        if len(raw) < numel * dtype.itemsize:
            raise UnreadableFile(f"storage {key} is truncated")
        storages[key] = np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype)
    return {name: t.build(storages) for name, t in tensors.items()}


def read_tensors(path: str) -> dict[str, np.ndarray]:
    """Every tensor of a TorchScript module or a saved state dict, by its dotted name (a module's
    attribute path, e.g. `net.layers.conv.weight`, or the state dict's key). UnreadableFile if the
    file is not one, is truncated, or names anything beyond what tensors need."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _read_zip(archive)
        with open(path, "rb") as file:
            return _read_legacy(file)
    except UnreadableFile:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise UnreadableFile(f"{type(error).__name__}: {str(error)[:100]}") from None
