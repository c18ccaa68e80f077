"""Shared fixtures. ``../shared`` (the steering folder) is optional: tests that read it skip,
with a reason, in a user's clone where it is absent."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRIBERT_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (it exists only beside the development checkout)")
    return SHARED


@pytest.fixture(scope="session")
def music21_samples(shared_dir) -> Path:
    d = shared_dir / "data" / "music21_samples"
    if not d.is_dir():
        pytest.skip(f"{d} is absent")
    return d


@pytest.fixture(scope="session")
def music_lists(shared_dir) -> Path:
    d = shared_dir / "data" / "music_lists"
    if not d.is_dir():
        pytest.skip(f"{d} is absent")
    return d


def require_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH (scripts/setup.sh installs them)")
