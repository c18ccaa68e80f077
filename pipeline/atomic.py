"""Atomic outputs: write to a temporary name beside the target, rename when complete.

DVC caches outputs by linking, so a file opened for writing in place could corrupt the cache, and
an interrupted stage must never leave a half-written file under its final name. Every output in
this project goes through these helpers.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

TMP_MARK = ".tmp-"
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path in the same directory as ``final``; rename it onto ``final`` on
    success, remove it on any exception. The suffix defaults to the final one (ffmpeg and h5py
    pick formats by extension)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = final.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_MARK}{final.stem}-", suffix=suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.is_dir():
            raise IsADirectoryError(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike):
    """Yield a temporary directory beside ``final``; it replaces ``final`` when the block ends."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_MARK}{final.name}-", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; give the usual directory mode
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(final: str | os.PathLike, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_torch(final: str | os.PathLike, obj) -> None:
    """torch.save atomically, with the same bytes for the same object (saved through a buffer:
    a file's zip records would carry its temporary name)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(final, buf.getvalue())


def write_text(final: str | os.PathLike, text: str) -> None:
    write_bytes(final, text.encode("utf-8"))


def write_json(final: str | os.PathLike, obj, indent: int | None = 2) -> None:
    write_text(final, json.dumps(obj, indent=indent, sort_keys=True) + "\n")


def clean_temporaries(directory: str | os.PathLike) -> int:
    """Remove leftovers of interrupted runs (files named by ``atomic_path``). Returns the count."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    n = 0
    for p in directory.glob(f"{TMP_MARK}*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n
