"""Pretrained weights: where the converted files are cached and how they are read back.

Weights that ship in another framework's format (EfficientNet-Lite0's PyTorch ``.pth``) are
converted once to Keras variable order and cached as a NumPy ``.npz`` in the user cache directory:
``$CS231N_TF_CACHE`` if set, else ``$XDG_CACHE_HOME/cs231n_tf``, else ``~/.cache/cs231n_tf``. The
cache file's name carries the SHA-256 of the source file and the converter's version, so a changed
source or converter never reuses a stale file; it is written to a temporary path and renamed, and
read with ``allow_pickle=False``. A cache that cannot be written (read-only home) only costs the
conversion on every load; one that cannot be read is converted again.
"""

import hashlib
import io
import os
import warnings
import zipfile

import numpy as np

from cs231n_tf.fileio import atomic_write_bytes

CACHE_ENV = "CS231N_TF_CACHE"


def cache_dir():
    """The directory converted weights are cached in (not created here)."""
    if os.environ.get(CACHE_ENV):
        return os.path.abspath(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "cs231n_tf")


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_arrays(name, source_path, convert, version):
    """``convert(source_path) -> [np.ndarray]``, cached under ``name`` keyed by the source's checksum.

    Returns ``(arrays, cache_path)``; ``cache_path`` is None when the cache could not be written.
    """
    digest = sha256_file(source_path)
    path = os.path.join(cache_dir(), f"{name}-v{version}-{digest[:16]}.npz")
    if os.path.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as archive:
                if str(archive["source_sha256"]) == digest:
                    count = int(archive["count"])
                    return [archive[f"w{i}"] for i in range(count)], path
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError):
            pass  # unreadable cache: convert again and overwrite it
    arrays = convert(source_path)
    buffer = io.BytesIO()
    np.savez(buffer, source_sha256=np.array(digest), count=np.array(len(arrays)),
             **{f"w{i}": a for i, a in enumerate(arrays)})
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        warnings.warn(f"could not cache converted weights in {path}: {exc}; set ${CACHE_ENV} to a writable "
                      "directory to avoid converting them on every load", stacklevel=3)
        path = None
    return arrays, path
