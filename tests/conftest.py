"""Shared fixtures. ``../shared`` (the steering folder) is optional: tests that read it skip,
with a reason, in a user's clone where it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest

from support import ROOT, SHARED


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    """model.layout caches its measured memory formats under XDG_CACHE_HOME: the tests use their
    own, so they neither read a choice measured outside them nor leave one behind (subprocesses
    such as `dvc repro` inherit it)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


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
