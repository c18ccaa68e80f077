"""Imports go one way (README, "Development"): ``stages/`` -> ``pipeline/`` -> ``model/``, and
inside ``pipeline/`` up the ladder of :data:`PIPELINE_LAYERS`, never back down.

- ``model/`` (the networks, their presets, the checkpoint format) imports nothing of ours but
  ``model/``.
- ``pipeline/``'s top-level modules (params, schema, atomic writes, executor, provenance, the
  ``tribert`` root, the bench report) are its base: they import only each other and ``model/``.
- A ``pipeline/`` subpackage imports the base, ``model/``, itself and the subpackages listed
  before it in :data:`PIPELINE_LAYERS`.
- No module imports ``stages/`` (each stage is a thin command; shared code lives in
  ``pipeline/``).

The scan reads every module's AST, so imports inside functions count too; it can fail
(:func:`test_the_scan_catches_an_import_that_goes_back_up`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from support import ROOT, import_statements

# pipeline's subpackages, lowest first: each may import those before it, never those after.
PIPELINE_LAYERS = ("data", "pose", "separation", "train", "evaluate", "tools")
PACKAGES = ("model", "pipeline", "stages")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of one of our packages in ``path``, anywhere in it."""
    out = []
    for line, mod, names in import_statements(path, module_name(path)):
        # `from pipeline import data`: the submodule is what is imported
        out += [(line, f"{mod}.{n}") for n in names] if mod in PACKAGES else [(line, mod)]
    return [(line, m) for line, m in out if m.split(".")[0] in PACKAGES]


def rank(module: str) -> tuple[int, int]:
    """(package rank, pipeline layer rank) of a module: lower may not import higher."""
    parts = module.split(".")
    top = {"model": 0, "pipeline": 1, "stages": 2}[parts[0]]
    if top != 1 or len(parts) < 2:
        return top, 0                       # model, stages
    if parts[1] in PIPELINE_LAYERS:
        return top, PIPELINE_LAYERS.index(parts[1]) + 1
    if ROOT.joinpath(*parts[:2]).is_dir():
        return top, 99                      # a subpackage without a layer
    return top, 0                           # pipeline's base modules


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported`` (None when it may)."""
    if imported.split(".")[0] == "stages" and importer.split(".")[0] != "stages":
        return "nothing imports stages/"
    if importer.split(".")[0] == "stages":
        return None if imported.split(".")[0] != "stages" else "a stage imports another stage"
    src, dst = rank(importer), rank(imported)
    if dst[0] > src[0]:
        return f"{importer.split('.')[0]}/ imports {imported.split('.')[0]}/ above it"
    if dst[0] == src[0] == 1 and dst[1] > src[1]:
        layer = lambda r: "pipeline's base" if r == 0 else f"pipeline/{PIPELINE_LAYERS[r - 1]}"
        return f"{layer(src[1])} imports {layer(dst[1])}, a later layer"
    if dst[1] == 99 or src[1] == 99:
        return "a pipeline subpackage missing from PIPELINE_LAYERS"
    return None


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def problems(paths) -> list[str]:
    out = []
    for path in paths:
        for line, imported in imports(path):
            why = violation(module_name(path), imported)
            if why:
                out.append(f"{path.relative_to(ROOT)}:{line}: imports {imported}: {why}")
    return out


def test_imports_go_one_way():
    found = problems(modules())
    assert not found, "imports against the layering:\n" + "\n".join(found)


def test_every_pipeline_subpackage_has_a_layer():
    packages = {p.name for p in (ROOT / "pipeline").iterdir()
                if p.is_dir() and (p / "__init__.py").is_file()}
    assert packages == set(PIPELINE_LAYERS)


@pytest.mark.parametrize("module, line, why", [
    ("model/checkpoint.py", "from pipeline.atomic import atomic_path", "model/ imports pipeline/"),
    ("pipeline/train/task.py", "from stages.train import run", "nothing imports stages/"),
    ("pipeline/data/shards.py", "    from pipeline.train import task", "pipeline/data imports "
     "pipeline/train"),
    ("pipeline/params.py", "from pipeline.data import manifest", "pipeline's base imports"),
    ("pipeline/separation/infer.py", "from pipeline import evaluate", "pipeline/separation "
     "imports pipeline/evaluate"),
])
def test_the_scan_catches_an_import_that_goes_back_up(tmp_path, monkeypatch, module, line, why):
    """Each bad import, added to a copy of a real module (inside a function too), is found."""
    copy = tmp_path / module
    copy.parent.mkdir(parents=True)
    text = (ROOT / module).read_text()
    copy.write_text(text + ("\n\ndef _late():\n" + line + "\n" if line.startswith(" ")
                            else "\n" + line + "\n"))
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    found = problems([copy])
    assert len(found) == 1 and why in found[0], found
