"""Every stage of dvc.yaml lists, as deps, every project module its command can import, so that
`dvc repro` re-runs a stage after a change to any code it runs (issue 12 item 10).

The closure is computed statically: the AST of the stage's module (``python -m stages.X``) and,
transitively, of every project module it imports (at module level or inside a function), plus
the packages' ``__init__.py`` files. A directory dep covers the files under it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from support import ROOT, import_statements

PACKAGES = ("pipeline", "model", "stages")


def module_file(name: str) -> Path | None:
    """The file of project module ``name`` (a package's __init__.py), or None if not ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported_names(path: Path, name: str) -> set[str]:
    """Project module names that ``path`` (module ``name``) imports, anywhere in its body."""
    out: set[str] = set()
    for _, mod, names in import_statements(path, name):
        out.update(_with_parents(mod))
        for a in names:   # `from pipeline import shards`: a submodule
            out.add(f"{mod}.{a}")
    return {m for m in out if module_file(m) is not None}


def closure(module: str) -> set[Path]:
    seen: set[str] = set()
    todo = _with_parents(module)
    while todo:
        m = todo.pop()
        if m in seen or module_file(m) is None:
            continue
        seen.add(m)
        todo.extend(imported_names(module_file(m), m) - seen)
    return {module_file(m).relative_to(ROOT) for m in seen}


def stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def covered(path: Path, deps) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in deps)


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_deps_cover_the_code_it_imports(name):
    stage = stages()[name]
    found = re.search(r"-m\s+(stages\.\w+)", stage["cmd"])
    assert found, f"{name}: cmd {stage['cmd']!r} does not run a stages module"
    missing = sorted(str(p) for p in closure(found.group(1)) if not covered(p, stage["deps"]))
    assert not missing, f"dvc.yaml stage {name} lacks deps: {', '.join(missing)}"


def test_the_scan_sees_function_level_and_relative_imports():
    """The scan itself can fail: it finds imports made inside functions (decode's shards) and
    through other project modules (pipeline.params' schema), and covers only what a dep names."""
    got = closure("stages.decode")
    assert Path("pipeline/data/shards.py") in got            # imported inside decode.assemble
    assert Path("pipeline/schema.py") in got            # imported by pipeline.params
    assert Path("pipeline/__init__.py") in got
    assert not covered(Path("pipeline/data/shards.py"), ["pipeline/shard", "stages"])
    assert covered(Path("pipeline/pose/halpe.py"), ["pipeline/pose"])
