"""Reading ``.pt`` files safely (``weights_only=True``) with one-line errors. Kept apart from
:mod:`model.checkpoint`, which builds the networks, so that code reading any checkpoint (the
ST-GCN's too) does not depend on the TriBERT code (``dvc.yaml`` deps follow imports)."""
from __future__ import annotations

from pathlib import Path

import torch


def read(path: str | Path, what: str, map_location: str | torch.device = "cpu"):
    """``torch.load(path, weights_only=True)``; an unreadable file raises ValueError with one
    line naming the file, ``what`` it should have held and why it cannot be read (never torch's
    advice to load it with ``weights_only=False``, which would let the file run code)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged or foreign file
        raise ValueError(f"{path}: cannot read {what}: {unreadable_reason(path, e)}") from None


def unreadable_reason(path: str | Path, e: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed on ``path``, in a few words."""
    import zipfile

    path = Path(path)
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a folder"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    text = str(e)
    if isinstance(e, OSError):
        return (text.strip().splitlines() or [type(e).__name__])[0][:200]
    if not zipfile.is_zipfile(path):
        if "central directory" in text or "PytorchStreamReader" in text:
            return "truncated or damaged PyTorch file"
        return "not a PyTorch file"
    if "Weights only load failed" in text:
        return ("it holds Python objects besides tensors and plain data, so it is not a model "
                "file of this project (not loaded: loading it could run code)")
    return "damaged or not a PyTorch file (a zip archive torch cannot read)"
