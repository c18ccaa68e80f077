"""Inputs and outputs checked before any work starts (issue 12, item 7).

Each check raises :class:`InputError`, a ``click.ClickException``, whose message is one line
that names the file and the problem; the commands and stages call them first, so a bad path is
reported before anything is read, computed or deleted, and without a traceback.
"""
from __future__ import annotations

from pathlib import Path

import click


class InputError(click.ClickException):
    """A bad input or output path; the one-line message names it."""


def output_path(path: str | Path, folder: bool = False) -> Path:
    """``path`` can be written: no part of it above it is an existing file (``--out x.json/y``
    under a file ``x.json``), and it is not a file where a folder is wanted or a folder where a
    file is wanted."""
    path = Path(path)
    for above in path.parents:
        if above.exists() and not above.is_dir():
            raise InputError(f"{path}: cannot write here: {above} is a file, not a folder")
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file; a folder is needed here")
    if not folder and path.is_dir():
        raise InputError(f"{path}: is a folder; a file is needed here")
    return path


def input_file(path: str | Path, what: str, hint: str = "") -> Path:
    """``path`` is an existing file (``what`` it should hold; ``hint`` says how to make it)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such {what}{f' ({hint})' if hint else ''}")
    if not path.is_file():
        raise InputError(f"{path}: is a folder, not a {what}")
    return path


def clip_shards(directory: str | Path) -> None:
    """Every clip shard of ``directory`` opens as HDF5, has the shard layout and its first and
    last rows read back (a 0-byte, non-HDF5 or truncated shard is named with its problem)."""
    from pipeline.data import shards
    from pipeline.data.shard_check import check_shard

    for path in shards.list_shards(directory):
        problems = check_shard(path, every_row=False)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InputError(f"{path}: damaged clip shard: {problems[0]}{more}; "
                             f"`tribert inspect {path}` lists every problem")


def pose_shards(directory: str | Path | None) -> None:
    """Every pose shard of ``directory`` opens as HDF5 and the last row of each of its datasets
    reads back."""
    import h5py

    from pipeline.data import shards

    if directory is None or not Path(directory).is_dir():
        return
    for path in shards.list_shards(directory):
        problem = _hdf5_problem(path, h5py)
        if problem:
            raise InputError(f"{path}: damaged pose shard: {problem}")


def _hdf5_problem(path: Path, h5py) -> str:
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    try:
        with h5py.File(path, "r") as f:
            for ds in f.values():
                if isinstance(ds, h5py.Dataset) and ds.shape and ds.shape[0]:
                    ds[ds.shape[0] - 1]
    except (OSError, ValueError, KeyError) as e:
        lines = str(e).strip().splitlines()
        return f"unreadable: {lines[0] if lines else type(e).__name__}"
    return ""
