"""Shared fixtures. ``../shared`` (the steering folder) is optional: tests that read it skip,
with a reason, in a user's clone where it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest

from support import ROOT, SHARED


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
