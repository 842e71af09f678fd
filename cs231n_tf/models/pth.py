"""Read PyTorch ``.pth`` state dicts into NumPy arrays without PyTorch and without running code.

A ``torch.save`` file is a pickle, and unpickling an arbitrary pickle runs arbitrary code. This
reader follows the rule of PyTorch's own ``weights_only=True`` mode: the unpickler resolves only
the few globals a state dict needs -- ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
(and ``_rebuild_parameter``) and the typed storage classes such as ``torch.FloatStorage`` -- each
to a harmless stand-in defined here, and refuses every other global with :class:`UnsafeWeightsError`.

Both of PyTorch's layouts are read:

- the legacy (pre-1.6) stream: magic number, protocol version and system-info pickles, the state
  dict pickle, a pickle listing the storage keys, then per storage an int64 element count followed
  by the raw little-endian bytes;
- the zip archive of PyTorch >= 1.6: ``ARCHIVE/data.pkl`` plus one ``ARCHIVE/data/KEY`` entry per
  storage.

Tensors are views into their storage (size, stride, offset); they are rebuilt with NumPy strides,
after checking that every view stays inside its storage, and returned as C-contiguous copies.
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from cs231n_tf.errors import Cs231nError, DataError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeWeightsError(Cs231nError, ValueError):
    """A weights file asks the unpickler for something a state dict never needs."""


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only its element type matters."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])

    def __setstate__(self, state):
        # the pickle BUILD opcode would otherwise rewrite this shared allow-list entry for every later load
        raise UnsafeWeightsError(f"a weights file tries to modify the storage type torch.{self.name}")


class _TensorRef:
    """A tensor as the pickle describes it: a strided view of a storage not read yet."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if (not isinstance(storage, tuple) or len(storage) != 2 or not isinstance(storage[0], _StorageType)
            or not isinstance(storage[1], str)):
        raise UnsafeWeightsError("a tensor in the weights file does not refer to a storage")
    try:
        size = tuple(int(d) for d in size)
        stride = tuple(int(s) for s in stride)
        offset = int(storage_offset)
    except (TypeError, ValueError):
        raise DataError("corrupt weights file: a tensor has a malformed size or stride") from None
    if len(size) != len(stride) or any(d < 0 for d in size) or any(s < 0 for s in stride) or offset < 0:
        raise DataError(f"corrupt weights file: tensor size {size} / stride {stride} / offset {offset}")
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, _TensorRef):
        raise UnsafeWeightsError("a parameter in the weights file does not wrap a tensor")
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}
_ALLOWED.update({("torch", name): _StorageType(name) for name in STORAGE_DTYPES})


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise UnsafeWeightsError(
                f"refusing to load {module}.{name} from a weights file: only tensors, storages and "
                "OrderedDict are allowed (the weights_only rule); the file may be malicious") from None

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if (not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], (str, int))):
            raise UnsafeWeightsError(f"unexpected persistent id in the weights file: {pid!r:.80}")
        return (pid[1], str(pid[2]))


def _load_pickle(stream, what, restricted=True):
    try:
        if restricted:
            return _RestrictedUnpickler(stream).load()
        return _PlainDataUnpickler(stream).load()
    except UnsafeWeightsError:
        raise
    except Cs231nError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, struct.error, RecursionError) as exc:
        raise DataError(f"corrupt or truncated weights file {what}: {type(exc).__name__}: {exc}") from None


class _PlainDataUnpickler(pickle.Unpickler):
    """For the legacy header pickles, which hold plain numbers, strings, lists and dicts only."""

    def find_class(self, module, name):
        raise UnsafeWeightsError(f"refusing to load {module}.{name} from a weights file header")

    def persistent_load(self, pid):
        raise UnsafeWeightsError("unexpected persistent id in a weights file header")


def _collect_refs(obj, prefix=""):
    """Flatten a (possibly nested) state dict into ``{dotted_name: _TensorRef}``."""
    out = {}
    if isinstance(obj, _TensorRef):
        return {prefix: obj}
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise DataError(f"weights file has a non-string key {key!r:.40}")
            out.update(_collect_refs(value, f"{prefix}.{key}" if prefix else key))
        return out
    if obj is None or isinstance(obj, (int, float, str, bool)):
        return {}  # e.g. a saved epoch number beside the state dict
    raise DataError(f"weights file holds a {type(obj).__name__} at {prefix or 'the top level'}; expected tensors")


def _materialise(name, ref, buffers):
    stype, key = ref.storage
    if key not in buffers:
        raise DataError(f"weights file is missing the storage of tensor {name!r}")
    flat = np.frombuffer(buffers[key], dtype=stype.dtype.newbyteorder("<"))
    if ref.size and min(ref.size) == 0:
        return np.zeros(ref.size, stype.dtype)
    last = ref.offset + sum((d - 1) * s for d, s in zip(ref.size, ref.stride))
    if last >= len(flat):
        raise DataError(f"corrupt weights file: tensor {name!r} (size {ref.size}, stride {ref.stride}) reads past "
                        f"the end of its storage of {len(flat)} elements")
    if int(np.prod(ref.size, dtype=object)) > len(flat):
        # Only broadcast (zero-stride) views have more elements than their storage; a state dict
        # never saves one, and a crafted one could ask for terabytes.
        raise DataError(f"corrupt weights file: tensor {name!r} (size {ref.size}) has more elements than its "
                        f"storage of {len(flat)}")
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[ref.offset:], shape=ref.size,
                                           strides=tuple(s * item for s in ref.stride), writeable=False)
    # np.array, not np.ascontiguousarray: the latter turns 0-d tensors (num_batches_tracked) into shape (1,)
    return np.array(view, order="C").astype(stype.dtype.newbyteorder("="), copy=False)


def _read_legacy(f, what):
    magic = _load_pickle(f, what, restricted=False)
    if magic != LEGACY_MAGIC:
        raise DataError(f"{what} is not a PyTorch weights file (bad magic number)")
    protocol = _load_pickle(f, what, restricted=False)
    if protocol != LEGACY_PROTOCOL:
        raise DataError(f"{what}: unsupported PyTorch legacy protocol {protocol!r}")
    sys_info = _load_pickle(f, what, restricted=False)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise DataError(f"{what}: only little-endian weights files are supported")
    state = _load_pickle(f, what)
    keys = _load_pickle(f, what, restricted=False)
    if not isinstance(keys, list) or not all(isinstance(k, (str, int)) for k in keys):
        raise DataError(f"corrupt weights file {what}: bad storage key list")
    refs = _collect_refs(state)
    types = {}
    for ref in refs.values():
        types.setdefault(ref.storage[1], ref.storage[0])
    buffers = {}
    for key in map(str, keys):
        header = f.read(8)
        if len(header) != 8:
            raise DataError(f"truncated weights file {what}: storage {key} is missing")
        (numel,) = struct.unpack("<q", header)
        stype = types.get(key)
        itemsize = stype.dtype.itemsize if stype is not None else 1
        if numel < 0:
            raise DataError(f"corrupt weights file {what}: storage {key} has {numel} elements")
        data = f.read(numel * itemsize)
        if len(data) != numel * itemsize:
            raise DataError(f"truncated weights file {what}: storage {key} has {len(data)} of "
                            f"{numel * itemsize} bytes")
        buffers[key] = data
    return refs, buffers


def _read_zip(path, what):
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DataError(f"corrupt weights file {what}: {exc}") from None
    with archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise DataError(f"{what} is a zip file but not a PyTorch archive (no single data.pkl)")
        root = pkl[0][: -len("data.pkl")]
        try:
            state = _load_pickle(io.BytesIO(archive.read(pkl[0])), what)
            refs = _collect_refs(state)
            buffers = {}
            for ref in refs.values():
                key = ref.storage[1]
                if key not in buffers:
                    entry = f"{root}data/{key}"
                    if entry not in names:
                        raise DataError(f"corrupt weights file {what}: storage {entry} is missing")
                    buffers[key] = archive.read(entry)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(f"corrupt or truncated weights file {what}: {exc}") from None
    return refs, buffers


def load_state_dict(path):
    """The tensors of the PyTorch weights file ``path`` as ``{name: numpy array}``, in file order.

    Nothing in the file is executed: globals other than the state-dict ones raise
    :class:`UnsafeWeightsError`; truncated or inconsistent files raise :class:`DataError`.
    Nested dicts (``{"state_dict": {...}}``) are flattened with dotted names.
    """
    path = os.fspath(path)
    what = repr(path)
    if not os.path.isfile(path):
        raise DataError(f"weights file {path} does not exist")
    with open(path, "rb") as f:
        signature = f.read(4)
    if zipfile.is_zipfile(path):
        refs, buffers = _read_zip(path, what)
    elif signature.startswith(b"PK"):
        # A legacy file starts with a pickle's PROTO opcode; "PK" is a zip archive whose end was cut
        # (pickle would read "P" as a persistent id and blame the file's safety instead).
        raise DataError(f"corrupt or truncated weights file {what}: an incomplete zip archive")
    else:
        with open(path, "rb") as f:
            refs, buffers = _read_legacy(f, what)
    if not refs:
        raise DataError(f"weights file {what} holds no tensors")
    return collections.OrderedDict((name, _materialise(name, ref, buffers)) for name, ref in refs.items())
