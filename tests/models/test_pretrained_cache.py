"""The converted-weights cache: keyed by the source's SHA-256, self-healing, never fatal."""

import hashlib
import io
import os

import numpy as np
import pytest

from cs231n_tf.models import pretrained
from cs231n_tf.models.pretrained import CACHE_ENV, cache_dir, cached_arrays, sha256_file


def _arrays():
    return [
        np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        np.array([-(2**40), 0, 5], np.int64),
        np.array(0.25, np.float64),  # 0-d
        np.zeros((0, 3), np.float32),  # empty
    ]


class Converter:
    """Counts its calls; returns fresh copies of :func:`_arrays` (plus a marker of the source bytes)."""

    def __init__(self):
        self.calls = []

    def __call__(self, source_path):
        self.calls.append(source_path)
        with open(source_path, "rb") as f:
            first = f.read(1)
        return _arrays() + [np.frombuffer(first, np.uint8).copy()]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(directory))
    return directory


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"A" + bytes(range(256)) * 3)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_arrays_equal(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert isinstance(g, np.ndarray)
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_array_equal(g, e)


def _npz_files(directory):
    return sorted(p.name for p in directory.iterdir() if p.suffix == ".npz")


def test_first_call_converts_and_writes_one_npz(cache, source):
    convert = Converter()
    arrays, path = cached_arrays("effnet", str(source), convert, 3)
    assert convert.calls == [str(source)]
    _assert_arrays_equal(arrays, _arrays() + [np.array([ord("A")], np.uint8)])
    digest = _digest(source)
    assert _npz_files(cache) == [f"effnet-v3-{digest[:16]}.npz"]
    assert path == os.path.join(str(cache), f"effnet-v3-{digest[:16]}.npz")
    assert digest[:16] in os.path.basename(path)
    assert not [p for p in os.listdir(cache) if p.startswith(".tmp-")]  # the temporary file was renamed
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(["source_sha256", "count"] + [f"w{i}" for i in range(5)])
        assert str(archive["source_sha256"]) == digest
        assert int(archive["count"]) == 5
        _assert_arrays_equal([archive[f"w{i}"] for i in range(5)], arrays)


def test_second_call_reads_the_cache(cache, source):
    convert = Converter()
    first, path = cached_arrays("effnet", source, convert, 1)
    second, path2 = cached_arrays("effnet", source, convert, 1)
    assert len(convert.calls) == 1
    assert path2 == path
    _assert_arrays_equal(second, first)
    assert second[2].shape == () and second[2].dtype == np.float64
    assert second[3].shape == (0, 3)
    assert _npz_files(cache) == [os.path.basename(path)]


def test_changed_source_converts_again_under_a_new_name(cache, source):
    convert = Converter()
    _, old_path = cached_arrays("effnet", source, convert, 1)
    source.write_bytes(b"B" + source.read_bytes()[1:])  # same size, other bytes
    arrays, new_path = cached_arrays("effnet", source, convert, 1)
    assert len(convert.calls) == 2
    assert new_path != old_path and _digest(source)[:16] in os.path.basename(new_path)
    assert arrays[-1].tolist() == [ord("B")]
    assert _npz_files(cache) == sorted([os.path.basename(old_path), os.path.basename(new_path)])
    cached, _ = cached_arrays("effnet", source, convert, 1)
    assert len(convert.calls) == 2 and cached[-1].tolist() == [ord("B")]


def test_new_converter_version_or_name_converts_again(cache, source):
    convert = Converter()
    _, p1 = cached_arrays("effnet", source, convert, 1)
    _, p2 = cached_arrays("effnet", source, convert, 2)
    _, p3 = cached_arrays("other", source, convert, 1)
    assert len(convert.calls) == 3 and len({p1, p2, p3}) == 3
    assert "-v2-" in os.path.basename(p2) and os.path.basename(p3).startswith("other-")


def _npy_bytes():
    buf = io.BytesIO()
    np.save(buf, np.arange(4))
    return buf.getvalue()


def _npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("damage", [
    "garbage", "empty", "truncated", "npy_not_npz", "missing_weight", "other_source", "pickled_object",
])
def test_corrupt_cache_is_reconverted(cache, source, damage):
    convert = Converter()
    expected, path = cached_arrays("effnet", source, convert, 1)
    good = open(path, "rb").read()
    bad = {
        "garbage": b"\x00garbage bytes, not an npz\xff" * 10,
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "npy_not_npz": _npy_bytes(),
        "missing_weight": _npz_bytes(source_sha256=np.array(_digest(source)), count=np.array(9), w0=np.ones(2)),
        "other_source": _npz_bytes(source_sha256=np.array("0" * 64), count=np.array(1), w0=np.ones(2)),
        "pickled_object": _npz_bytes(source_sha256=np.array([{"a": 1}], dtype=object), count=np.array(0)),
    }[damage]
    with open(path, "wb") as f:
        f.write(bad)
    arrays, path2 = cached_arrays("effnet", source, convert, 1)
    assert len(convert.calls) == 2
    assert path2 == path
    _assert_arrays_equal(arrays, expected)
    # the damaged file was replaced by a good one: the next call reads it
    again, _ = cached_arrays("effnet", source, convert, 1)
    assert len(convert.calls) == 2
    _assert_arrays_equal(again, expected)


def test_unwritable_cache_warns_and_still_returns(tmp_path, monkeypatch, source):
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"not a directory")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    convert = Converter()
    with pytest.warns(UserWarning, match="could not cache converted weights"):
        arrays, path = cached_arrays("effnet", source, convert, 1)
    assert path is None
    _assert_arrays_equal(arrays, _arrays() + [np.array([ord("A")], np.uint8)])
    with pytest.warns(UserWarning, match=CACHE_ENV):
        _, path = cached_arrays("effnet", source, convert, 1)
    assert path is None and len(convert.calls) == 2  # no cache: converted every time
    assert blocker.read_bytes() == b"not a directory"


def test_missing_source_raises(cache, tmp_path):
    with pytest.raises(FileNotFoundError):
        cached_arrays("effnet", tmp_path / "nope.pth", Converter(), 1)


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(5000))
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_file(path, chunk=7) == sha256_file(path)


def test_cache_dir_env_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == str(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CACHE_ENV, "relative/dir")
    assert cache_dir() == str(tmp_path / "relative" / "dir")  # made absolute
    monkeypatch.setenv(CACHE_ENV, "")  # empty counts as unset
    assert cache_dir() == str(tmp_path / "xdg" / "cs231n_tf")
    monkeypatch.delenv(CACHE_ENV)
    assert cache_dir() == str(tmp_path / "xdg" / "cs231n_tf")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == str(tmp_path / "home" / ".cache" / "cs231n_tf")
    assert not os.path.exists(cache_dir())  # not created by asking


def test_cached_arrays_writes_where_cache_dir_points(tmp_path, monkeypatch, source):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _, path = cached_arrays("effnet", source, Converter(), 1)
    assert os.path.dirname(path) == str(tmp_path / "xdg" / "cs231n_tf") == pretrained.cache_dir()
