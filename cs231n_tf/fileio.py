"""Crash-safe file output: write to a temporary path beside the target, then rename into place.

A reader never sees a half-written report, checkpoint index or export: either the old file or the
complete new one. ``os.replace`` is atomic on POSIX within one file system, which is why the
temporary path is always in the target's own directory.
"""

import json
import os
import shutil
import tempfile

import numpy as np

from cs231n_tf.errors import ConfigError


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def atomic_write_bytes(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path, obj):
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=True) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class AtomicDirectory:
    """Context manager yielding a temporary directory that replaces ``target`` on success.

    On an exception the temporary directory is removed and ``target`` is left untouched.
    """

    def __init__(self, target):
        self.target = os.path.abspath(target)
        self.tmp = None

    def __enter__(self):
        parent = os.path.dirname(self.target)
        os.makedirs(parent, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(self.target) + "-", dir=parent)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        old = None
        if os.path.exists(self.target):
            old = self.target + ".old-" + os.path.basename(self.tmp)
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return False


def confined_path(base, *parts):
    """``os.path.join(base, *parts)``, refusing results that escape ``base`` (e.g. via ``..``)."""
    base = os.path.abspath(base)
    path = os.path.abspath(os.path.join(base, *parts))
    if os.path.commonpath([base, path]) != base:
        raise ConfigError(f"path {os.path.join(*parts)!r} escapes the output directory {base!r}")
    return path
