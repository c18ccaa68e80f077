"""Helpers shared by test modules. (Imported as ``support``: a module named ``conftest`` is
ambiguous once sub-folders have their own conftest.py.)"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRIBERT_SHARED", ROOT.parent / "shared"))


def require_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH (scripts/setup.sh installs them)")
