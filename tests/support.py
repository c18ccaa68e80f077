"""Helpers shared by test modules. (Imported as ``support``: a module named ``conftest`` is
ambiguous once sub-folders have their own conftest.py.)"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRIBERT_SHARED", ROOT.parent / "shared"))


def import_statements(path: Path, name: str) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import in ``path`` (module ``name``), anywhere in
    its body (inside functions too), relative imports resolved. Used by the scans of
    tests/test_dvc_deps.py and tests/test_layers.py."""
    import ast

    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.append((node.lineno, mod, [a.name for a in node.names]))
    return out


def require_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH (scripts/setup.sh installs them)")


def split_violations(manifest_path, clip_dir) -> list[str]:
    """Ways the clip shards break "a video lies whole in one split": an ID whose rows carry two
    splits, a split other than the manifest's, or an ID the manifest lacks."""
    from collections import defaultdict

    from pipeline.data import manifest, shards

    listed = {r.video_id: r.split for r in manifest.read(manifest_path)}
    seen = defaultdict(set)
    for path in shards.list_shards(clip_dir):
        idx = shards.read_index(path, ("video_id", "split"))
        for vid, split in zip(idx["video_id"], idx["split"]):
            seen[vid].add(split)
    out = []
    for vid, splits in sorted(seen.items()):
        if len(splits) > 1:
            out.append(f"{vid} is in splits {sorted(splits)}")
        elif vid not in listed:
            out.append(f"{vid} is not in the manifest")
        elif splits != {listed[vid]}:
            out.append(f"{vid} is in {sorted(splits)[0]}, the manifest says {listed[vid]}")
    return out


def merge_params(base: dict, over: dict) -> dict:
    """``base`` (a params.yaml dict) with the nested keys of ``over`` replacing its own."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_params(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def save_model(path, model) -> None:
    """Write ``model``'s package as the training stages do (atomically, through a buffer)."""
    from model.checkpoint import package
    from pipeline.atomic import write_torch

    write_torch(path, package(model))


def shard_contents(path) -> dict:
    """Everything a shard holds, decompressed: ``{"/name": array, "@attr": value}``. Two shards
    with equal contents can still differ in bytes when their frames are lzf-compressed (see
    :mod:`pipeline.data.shards`, "Contents are reproducible")."""
    import h5py
    import numpy as np

    with h5py.File(path, "r") as f:
        out = {f"/{k}": np.asarray(f[k][()]) for k in f}
        out.update({f"@{k}": np.asarray(v) for k, v in f.attrs.items()})
    return out


def assert_same_shards(a: Path, b: Path) -> None:
    """The shard files of folders ``a`` and ``b`` have the same names and the same contents
    (every dataset's values, dtype and shape, every attribute)."""
    import numpy as np

    names = sorted(p.name for p in Path(a).glob("shard-*.h5"))
    assert names == sorted(p.name for p in Path(b).glob("shard-*.h5"))
    for name in names:
        x, y = shard_contents(Path(a) / name), shard_contents(Path(b) / name)
        assert sorted(x) == sorted(y), name
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, f"{name}: {k}"
            assert np.array_equal(x[k], y[k]), f"{name}: {k} differs"


def write_mixtures(path: Path, rows: list[dict]) -> Path:
    """An evaluate folder ``path`` whose mixtures.csv holds ``rows`` (each a dict of some of its
    columns; the others read 0)."""
    import csv

    from pipeline.evaluate.separation import csv_columns
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "mixtures.csv", "w", newline="") as f:
        w = csv.DictWriter(f, csv_columns(), lineterminator="\n")
        w.writeheader()
        w.writerows({**{c: "0.000000" for c in csv_columns()}, **r} for r in rows)
    return path
