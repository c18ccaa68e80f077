"""Integrity checks of clip shards (``tribert inspect`` and every stage that reads shards): kept
apart from :mod:`pipeline.tools.inspect`, whose model card imports the model code, so that the data
stages' code closure (what ``dvc.yaml`` lists as their deps) stays free of the network."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from pipeline.data import shards
from pipeline.classes import CLASSES
from pipeline.data.manifest import SPLITS

REQUIRED_ATTRS = {"schema_version": shards.SCHEMA_VERSION, "sample_rate": 11025,
                  "clip_samples": 65535, "n_fft": 1022, "hop": 256, "warp_size": 256}
OTHER_ATTRS = ("n_clips", "fps", "frame_size", "frames_per_clip", "classes", "params_hash",
               "warp", "window", "align_corners")


def _check_attrs(f: h5py.File) -> list[str]:
    problems = [f"attribute {k} missing" for k in (*REQUIRED_ATTRS, *OTHER_ATTRS)
                if k not in f.attrs]
    for k, want in REQUIRED_ATTRS.items():
        if k in f.attrs and f.attrs[k] != want:
            problems.append(f"attribute {k} is {f.attrs[k]!r}, expected {want!r}")
    if "classes" in f.attrs and [str(c) for c in f.attrs["classes"]] != list(CLASSES):
        problems.append("attribute classes differs from the 21 official classes")
    if "n_clips" in f.attrs and not int(f.attrs["n_clips"]) > 0:
        problems.append(f"attribute n_clips is {f.attrs['n_clips']!r}")
    return problems


def _check_rows(name: str, ds: h5py.Dataset, every_row: bool = True) -> list[str]:
    """Read every row (catches truncated data) and check the values of ``name``; with
    ``every_row`` False only read the first and the last row back (a quick check of the
    file's structure before training; the values are ``tribert inspect``'s business)."""
    problems = []
    rows = range(ds.shape[0]) if every_row else sorted({0, ds.shape[0] - 1} - {-1})
    for r in rows:
        try:
            row = ds[r]
        except (OSError, ValueError) as e:
            return [f"{name}[{r}] unreadable: {_first_line(e)}"]
        if not every_row:
            continue
        if name == "waveform":
            if not np.isfinite(row).all():
                problems.append(f"waveform[{r}] has NaN or infinite samples")
            elif np.abs(row).max() > 1.0:
                problems.append(f"waveform[{r}] exceeds [-1, 1] (max {np.abs(row).max():.3f})")
            elif not np.abs(row).sum() > 1e-5:
                problems.append(f"waveform[{r}] is silent")
        elif name == "mag" and not (np.isfinite(row).all() and (row >= 0).all()):
            problems.append(f"mag[{r}] has NaN or negative values")
        elif name == "label" and not (set(np.unique(row)) <= {0, 1} and row.sum() >= 1):
            problems.append(f"label[{r}] is not a non-empty multi-hot vector")
        elif name == "split" and row.decode() not in (*SPLITS, ""):
            problems.append(f"split[{r}] is {row!r}")
        elif name == "kind" and row.decode() not in ("solo", "duet"):
            problems.append(f"kind[{r}] is {row!r}")
    return problems[:10]


def check_shard(path: str | Path, every_row: bool = True) -> list[str]:
    """Integrity problems of one shard (empty when it is sound). ``every_row`` False reads only
    the first and last row of each dataset: it still finds an empty, non-HDF5 or truncated file
    and a wrong layout, at the cost of two rows (the stages check their inputs this way)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        return ["empty file (0 bytes)"]
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        return [f"unreadable file: {_first_line(e)}"]
    with f:
        problems = _check_attrs(f)
        if problems:
            return problems
        n, fpc, size = (int(f.attrs[k]) for k in ("n_clips", "frames_per_clip", "frame_size"))
        ids = f.get("video_id")
        id_len = ids.dtype.itemsize if isinstance(ids, h5py.Dataset) and ids.dtype.kind == "S" \
            else shards.ID_LEN  # any width holds whole IDs (older shards: 11)
        for name, (shape, dtype) in shards.schema(n, fpc, size, id_len).items():
            if name not in f:
                problems.append(f"dataset {name} missing")
            elif f[name].shape != shape:
                problems.append(f"{name} has shape {f[name].shape}, expected {shape}")
            elif f[name].dtype != dtype:
                problems.append(f"{name} has dtype {f[name].dtype}, expected {dtype}")
            else:
                problems += _check_rows(name, f[name], every_row)
        return problems


def unchecked(path: str | Path) -> list[str]:
    """Datasets of a shard without a checksum (written before the fletcher32 filter): damage to
    their compressed chunks may decompress to wrong values without an error."""
    with h5py.File(path, "r") as f:
        return [k for k, ds in f.items() if isinstance(ds, h5py.Dataset) and not ds.fletcher32]


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
