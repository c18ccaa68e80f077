"""The model package: class name, constructor arguments and weights, so evaluation and
separation rebuild the model with no config (demucs' states.py pattern).

A package holds only plain data (str, int, float, bool, lists, tuples, dicts) and tensors, so
it loads with ``torch.load(weights_only=True)``: a checkpoint file cannot run code.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import nn

from model.readfile import read, unreadable_reason  # noqa: F401

FORMAT = 1
TRAIN_STATE_PREFIX = "tribert-train-state/"  # pipeline/train/solver.py's STATE_FORMAT


def model_classes() -> dict[str, type[nn.Module]]:
    from model.sop import SoundOfPixels
    from model.tribert import TriBERT
    return {"TriBERT": TriBERT, "SoundOfPixels": SoundOfPixels}


def package(model: nn.Module) -> dict:
    """{"format", "class", "kwargs", "state_dict"} of a model built by this package."""
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    name = type(model).__name__
    if name not in model_classes():
        raise TypeError(f"cannot package a {name}: not one of {sorted(model_classes())}")
    # NCHW whatever layout the model ran in (model.layout): the package is the same bytes
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {"format": FORMAT, "class": name, "kwargs": dict(model.init_kwargs),
            "state_dict": state}


def from_package(pkg: dict) -> nn.Module:
    """Rebuild the model of a package and load its weights."""
    if not isinstance(pkg, dict) or pkg.get("format") != FORMAT:
        raise ValueError(f"not a model package (format {FORMAT}): keys {sorted(pkg)[:6] if isinstance(pkg, dict) else type(pkg).__name__}")
    classes = model_classes()
    if pkg["class"] not in classes:
        raise ValueError(f"unknown model class {pkg['class']!r} (known: {sorted(classes)})")
    kwargs = constructor_arguments(classes[pkg["class"]], pkg["kwargs"])
    model = classes[pkg["class"]](**kwargs)
    load_weights(model, {**pkg, "kwargs": kwargs})
    return model


def constructor_arguments(cls: type[nn.Module], saved: dict) -> dict:
    """A package's constructor arguments for this code's ``cls``: an argument added since the
    package was written takes its default (the behaviour the older code had, e.g. TriBERT's
    ``erase``); an argument this code does not know means another version of the model code."""
    params = {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}
    unknown = sorted(set(saved) - set(params))
    missing = sorted(k for k, p in params.items()
                     if k not in saved and p.default is inspect.Parameter.empty)
    if unknown or missing:
        raise ValueError(f"written by another version of the model code: {cls.__name__} "
                         f"arguments unknown here: {', '.join(unknown) or 'none'}; required but "
                         f"missing: {', '.join(missing) or 'none'}")
    return {**{k: p.default for k, p in params.items() if k not in saved}, **saved}


def load_weights(model: nn.Module, pkg: dict) -> None:
    """Load a package's weights into ``model`` (same class and constructor arguments)."""
    model = getattr(model, "module", model)
    if pkg["class"] != type(model).__name__ or pkg["kwargs"] != model.init_kwargs:
        raise ValueError(f"package holds a {pkg['class']}({pkg['kwargs']}), not this "
                         f"{type(model).__name__}({model.init_kwargs})")
    model.load_state_dict(pkg["state_dict"], strict=True)


def is_training_state(obj) -> bool:
    """Whether ``obj`` is a training state (``checkpoints/last.pt``, pipeline/train/solver.py's
    ``tribert-train-state/N`` format), which holds the model package under ``"model"``."""
    return (isinstance(obj, dict) and isinstance(obj.get("model"), dict)
            and str(obj.get("format", "")).startswith(TRAIN_STATE_PREFIX))


def load(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved at ``path`` (``weights_only=True``)."""
    path = Path(path)
    pkg = read(path, "model package", map_location)
    if is_training_state(pkg):
        pkg = pkg["model"]  # a training checkpoint (pipeline/train/solver.py) holds the package here
    try:
        return from_package(pkg)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
