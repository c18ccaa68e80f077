"""params.yaml -> frozen, validated dataclasses.

Each top-level section of params.yaml loads into one frozen dataclass. Validation is driven by
the type hints and by ``rng``/``choice`` metadata on the fields, and happens before any work: an
unknown key, a wrong type or an out-of-range value raises :class:`ParamsError` with the dotted
key (``decode.fps: expected a number >= 1, got 0``).

Sections are registered in :data:`SECTIONS` by dotted import path, so a stage that only needs the
data sections does not import torch to validate the model section.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml


class ParamsError(ValueError):
    """A params.yaml problem; the message names the file and the dotted key."""


# --------------------------------------------------------------------------------------------
# field helpers


def rng(default, lo=None, hi=None, *, lo_open=False, doc: str = ""):
    """A numeric field with an inclusive range [lo, hi] (exclusive at lo when ``lo_open``)."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "lo_open": lo_open, "doc": doc})


def opt(lo=None, hi=None, doc: str = ""):
    """An optional numeric override: ``None`` (the default) means "take the preset's value";
    a given value is checked against [lo, hi] like :func:`rng`."""
    return rng(None, lo, hi, doc=doc)


def sub(cls):
    """A nested section with its own defaults."""
    return field(default_factory=cls)


# --------------------------------------------------------------------------------------------
# validation


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, key: str, meta: dict):
    """Check ``value`` against type hint ``tp``; return the (possibly converted) value."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, meta)
            except ParamsError as e:
                errors.append(str(e))
        raise ParamsError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of "
                          f"{[_type_name(a) for a in args]}")
    if origin is Literal:
        if value not in args:
            raise ParamsError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]", {}) for i, v in enumerate(value))
        if origin is tuple and args:
            if len(value) != len(args):
                raise ParamsError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]", {}) for i, (v, a) in enumerate(zip(value, args)))
        return tuple(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        return build(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        _check_range(value, key, meta)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        value = float(value)
        if not math.isfinite(value):  # .nan compares false with every bound: refuse it here
            raise ParamsError(f"{key}: expected a finite number, got {value!r}")
        _check_range(value, key, meta)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"{key}: unsupported type hint {tp!r}")


def _check_range(value, key, meta):
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
        op = ">" if meta.get("lo_open") else ">="
        raise ParamsError(f"{key}: expected a value {op} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ParamsError(f"{key}: expected a value <= {hi}, got {value!r}")


def build(cls, raw: dict | None, prefix: str):
    """Build dataclass ``cls`` from a mapping, validating every key under ``prefix``."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ParamsError(f"{prefix}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"{prefix}.{unknown[0]}: unknown key (known keys: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in raw:
            kwargs[name] = _coerce(raw[name], hints[name], f"{prefix}.{name}", dict(f.metadata))
    try:
        obj = cls(**kwargs)
    except ParamsError as e:  # raised by __post_init__ as "field: problem"
        raise ParamsError(f"{prefix}.{e}") from None
    # defaults are validated too, so a bad default cannot hide
    for name, f in fields.items():
        if name not in raw and f.metadata and getattr(obj, name) is not None:
            _check_range(getattr(obj, name), f"{prefix}.{name}", dict(f.metadata))
    return obj


def to_dict(obj) -> dict:
    """A section as plain data (for hashing, logging and checkpoints)."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=list))


def params_hash(*sections) -> str:
    """A short stable hash of sections (dataclasses or plain JSON-able data): stored in outputs
    to tie them to the params that made them."""
    plain = [to_dict(s) if dataclasses.is_dataclass(s) else s for s in sections]
    blob = json.dumps(plain, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# sections owned by the data stages


@dataclass(frozen=True)
class ExecutorParams:
    """How per-video work is mapped: a local process pool or a Ray cluster."""

    backend: Literal["local", "ray"] = "local"
    jobs: int = rng(2, 1, 1024, doc="worker processes (local) or concurrent tasks (ray)")
    ray_address: Optional[str] = None  # None starts a local Ray instance; "auto" joins a cluster


@dataclass(frozen=True)
class SynthParams:
    """The embedded performer dataset (``data.source: synthetic``)."""

    videos_per_class: int = rng(3, 1, 10000)   # solo videos per class
    duets: int = rng(16, 0, 100000)            # duet videos (pairs of classes, some the same class)
    same_class_duets: float = rng(0.25, 0.0, 1.0)  # share of duets whose two performers share a class
    duration: float = rng(12.0, 6.0, 600.0)    # seconds per video (a clip window is ~5.94 s)
    fps: int = rng(8, 8, 60)
    size: int = rng(256, 224, 1080)            # square frame side in pixels
    sample_rate: int = rng(22050, 11025, 48000)
    unplayed_instrument: float = rng(0.3, 0.0, 1.0)  # share of scenes with an idle instrument
    keypoint_jitter: float = rng(1.5, 0.0, 50.0)     # pixels of detector-like noise
    keypoint_dropout: float = rng(0.03, 0.0, 0.9)    # share of joints reported with score 0
    soundfont: str = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
    classes: tuple[str, ...] = ()  # a subset of the 21 classes (empty: all), for tiny runs

    def __post_init__(self):
        from pipeline.classes import CLASS_INDEX

        bad = [c for c in self.classes if c not in CLASS_INDEX]
        if bad:
            raise ParamsError(f"classes: unknown class {bad[0]!r}")


@dataclass(frozen=True)
class DownloadParams:
    """The YouTube source (``data.source: music21`` or ``music``)."""

    lists: str = "https://raw.githubusercontent.com/roudimit/MUSIC_dataset/master"  # dir or URL
    duets: bool = True            # also fetch MUSIC_duet_videos.json
    limit_per_class: int = rng(0, 0, 100000)  # 0 = all IDs; otherwise the first N per class
    retries: int = rng(3, 0, 20)
    backoff: float = rng(2.0, 0.0, 600.0)     # seconds, doubled after each failed attempt
    max_height: int = rng(360, 144, 2160)     # yt-dlp format cap (frames are resized to 224 anyway)
    timeout: float = rng(60.0, 1.0, 3600.0)   # socket timeout per request
    cookies: str = ""  # Netscape cookies file for yt-dlp, for when YouTube asks to sign in


@dataclass(frozen=True)
class SplitParams:
    """Train/val/test split by video ID, decided once in ``acquire``."""

    mode: Literal["random", "official"] = "random"
    val: float = rng(0.1, 0.0, 0.5)
    test: float = rng(0.2, 0.0, 0.5)
    seed: int = rng(0, 0)
    official_train: str = ""   # with mode: official, the tribert_music21_{train,val}.csv lists
    official_test: str = ""

    def __post_init__(self):
        if self.val + self.test >= 1.0:
            raise ParamsError(f"test: val + test must be < 1, got {self.val} + {self.test}")
        if self.mode == "official" and not (self.official_train and self.official_test):
            raise ParamsError("official_train: mode 'official' needs official_train and "
                              "official_test list paths")


@dataclass(frozen=True)
class DataParams:
    source: Literal["synthetic", "music21", "music"] = "synthetic"
    seed: int = rng(0, 0)
    synthetic: SynthParams = sub(SynthParams)
    download: DownloadParams = sub(DownloadParams)
    split: SplitParams = sub(SplitParams)


# --------------------------------------------------------------------------------------------
# the registry of sections and the loader

SECTIONS: dict[str, str] = {
    "executor": "pipeline.params:ExecutorParams",
    "data": "pipeline.params:DataParams",
    "decode": "pipeline.decode:DecodeParams",
    "keypoints": "pipeline.pose.params:KeypointsParams",
    "stgcn": "pipeline.pose.params:StgcnParams",
    "pose_features": "pipeline.pose.params:PoseFeaturesParams",
    "model": "model.config:ModelParams",
    "train": "model.train_params:TrainParams",
    "finetune": "model.train_params:FinetuneParams",
    "evaluate": "pipeline.evaluate_params:EvaluateParams",
    "embed": "pipeline.analysis_params:EmbedParams",
    "probe": "pipeline.analysis_params:ProbeParams",
    "attention": "pipeline.analysis_params:AttentionParams",
    "retrieval": "pipeline.retrieval_params:RetrievalParams",
}


def _resolve(path: str):
    mod, _, attr = path.partition(":")
    return getattr(importlib.import_module(mod), attr)


def _available_sections() -> dict[str, type]:
    """Sections whose module exists in this checkout (later stages add theirs)."""
    out = {}
    for name, path in SECTIONS.items():
        try:
            out[name] = _resolve(path)
        except ModuleNotFoundError as e:
            if e.name and path.split(":")[0].startswith(e.name):
                continue  # the module of a stage not written yet
            raise
    return out


@dataclass(frozen=True)
class Params:
    """All validated sections of one params.yaml, by section name."""

    path: str
    sections: dict

    def __getattr__(self, name):
        try:
            return self.sections[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name):
        return self.sections[name]


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _refuse_duplicates(node, prefix: str) -> None:
    """A key given twice in one mapping (YAML keeps the last silently) is an error naming the
    dotted key and both lines."""
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            dotted = f"{prefix}.{key}" if prefix else key
            if key in seen:
                raise ParamsError(f"{dotted}: duplicate key (lines {seen[key] + 1} and "
                                  f"{key_node.start_mark.line + 1}); YAML would keep the last")
            seen[key] = key_node.start_mark.line
            _refuse_duplicates(value_node, dotted)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicates(item, f"{prefix}[{i}]")


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> Params:
    """Load and validate every section of ``path``.

    ``overrides`` maps dotted keys to values (``{"data.synthetic.duets": 2}``) and is applied
    before validation, the way ``dvc exp run -S`` edits the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ParamsError(f"{path}: cannot read params file: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ParamsError(f"{path}: not UTF-8 text (line {line}, byte {e.start} is "
                          f"{data[e.start]:#04x})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _refuse_duplicates(node, "")
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {_one_line(e)}") from None
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
    if raw is None:
        raise ParamsError(f"{path}: empty params file (no sections); every stage needs one")
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    for key, value in (overrides or {}).items():
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    known = _available_sections()
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ParamsError(f"{path}: {unknown[0]}: unknown section (known: {', '.join(known)})")
    sections = {}
    for name, cls in known.items():
        try:
            sections[name] = build(cls, raw.get(name), name)
        except ParamsError as e:
            raise ParamsError(f"{path}: {e}") from None
    return Params(str(path), sections)
