"""Separation metrics (paper Sec. 4.1, Table 1): BSS Eval SDR/SIR/SAR as Sound-of-Pixels computes
them, and their aggregation over a test set.

Per mixture, each estimate is scored against its own reference (``bss_eval_sources`` without
permutation, distortion filters of 512 taps), and the scores are averaged over the sources. The
mixture baseline SDR scores the mixture itself as every estimate (only SDR: when the mixture is
exactly the sum of the references it has no artifacts, so its SAR is infinite and meaningless).
Values are clipped to +-100 dB so that a perfect estimate (infinite ratios; fast_bss_eval gives
inf, mir_eval a huge finite number) keeps means finite and JSON valid. A mixture whose references
or estimates include a silent one (sum |x| <= 1e-5) cannot be scored: it is returned as
:class:`Skipped` and counted, never turned into NaN.

Two backends compute the same BSS Eval v3 quantities in float64:

- ``"fast"`` (default): ``fast_bss_eval.bss_eval_sources``, 2.5-3x faster on 65280-sample
  two-source mixtures here (``tribert bench eval``);
- ``"mir_eval"``: ``mir_eval.separation.bss_eval_sources``, the reference implementation (0.8
  marks it deprecated; its warning is silenced only around our call).

On the six real MUSIC21 mixtures of the official repository the two agree to about 1e-10 dB.
"""
from __future__ import annotations

import statistics
import warnings
from dataclasses import asdict, dataclass
from typing import Iterable, Literal, Optional, Sequence, Union

import numpy as np

SILENCE = 1e-5  # a signal with sum |x| <= SILENCE is silent (Sound-of-Pixels' test)
FILTER_LENGTH = 512  # BSS Eval v3 distortion filter length (mir_eval's fixed value)
BACKENDS = ("fast", "mir_eval")
CLAMP_DB = 100.0  # |metric| above this is clipped (never reached by a real separation)
METRICS = ("sdr", "sir", "sar", "sdr_mix")

Backend = Literal["fast", "mir_eval"]


@dataclass(frozen=True)
class Scores:
    """Per-source metrics of one mixture in dB; index k is the k-th estimate vs reference.

    ``sdr_mix`` is the baseline: the SDR of the mixture scored as the estimate of every source.
    """

    sdr: tuple[float, ...]
    sir: tuple[float, ...]
    sar: tuple[float, ...]
    sdr_mix: tuple[float, ...]

    skipped = False

    @property
    def n_sources(self) -> int:
        return len(self.sdr)

    def mean(self) -> dict[str, float]:
        """Each metric averaged over the sources (Sound-of-Pixels' per-mixture figure)."""
        return {m: float(np.mean(getattr(self, m))) for m in METRICS}

    def to_dict(self) -> dict:
        """JSON-able: the source means plus the per-source lists."""
        return {"skipped": False, **self.mean(),
                "sources": {m: list(v) for m, v in asdict(self).items()}}


@dataclass(frozen=True)
class Skipped:
    """A mixture that was not scored, and why (e.g. ``"reference 2 is silent"``)."""

    reason: str

    skipped = True

    def to_dict(self) -> dict:
        return {"skipped": True, "reason": self.reason}


Result = Union[Scores, Skipped]


# --------------------------------------------------------------------------------------------
# one mixture


def _as_signals(x, name: str, n_samples: Optional[int] = None) -> np.ndarray:
    """``x`` as a finite float64 array (n_src, n_samples); raise ValueError naming ``name``."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name}: expected shape (n_sources, n_samples), got {a.shape}")
    if n_samples is not None and a.shape[1] != n_samples:
        raise ValueError(f"{name}: {a.shape[1]} samples, the references have {n_samples}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or infinite samples")
    return a


def _silent(signals: np.ndarray, name: str) -> Optional[str]:
    """The reason to skip if any row of ``signals`` is silent, else None."""
    energy = np.abs(signals).sum(axis=1)
    for k, e in enumerate(energy):
        if e <= SILENCE:
            return f"{name} {k + 1} is silent (sum |x| = {e:.3g})"
    return None


def _bss_eval_fast(refs: np.ndarray, ests: np.ndarray) -> tuple[np.ndarray, ...]:
    import fast_bss_eval

    try:
        with np.errstate(divide="ignore"):  # a perfect estimate gives inf, clipped by the caller
            sdr, sir, sar = fast_bss_eval.bss_eval_sources(
                refs, ests, filter_length=FILTER_LENGTH, compute_permutation=False)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"refs: linearly dependent references cannot be scored ({e})") from e
    return sdr, sir, sar


def _bss_eval_mir(refs: np.ndarray, ests: np.ndarray) -> tuple[np.ndarray, ...]:
    import mir_eval.separation

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning,
                                message=r"mir_eval\.separation\.bss_eval_sources")
        sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(
            refs, ests, compute_permutation=False)
    return sdr, sir, sar


_BSS_EVAL = {"fast": _bss_eval_fast, "mir_eval": _bss_eval_mir}


def separation_metrics(refs, ests, mix=None, backend: Backend = "fast") -> Result:
    """SDR/SIR/SAR of ``ests`` against ``refs`` for one mixture, and the mixture baseline.

    refs, ests: (n_sources, n_samples) waveforms; estimate k is scored against reference k (no
    permutation). In mix-and-separate the references are the 1/N-scaled sources.
    mix: (n_samples,) mixture waveform for the baseline; None uses ``refs.sum(0)``, which is the
    mixture when the references are the scaled sources that were summed.
    Returns :class:`Scores`, or :class:`Skipped` when a reference or an estimate is silent.
    """
    if backend not in _BSS_EVAL:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    refs = _as_signals(refs, "refs")
    n_src, n_samples = refs.shape
    ests = _as_signals(ests, "ests", n_samples)
    if ests.shape[0] != n_src:
        raise ValueError(f"ests: {ests.shape[0]} estimates for {n_src} references")
    mix = refs.sum(axis=0) if mix is None else np.asarray(mix, dtype=np.float64)
    if mix.shape != (n_samples,):
        raise ValueError(f"mix: expected shape ({n_samples},), got {mix.shape}")
    mix = _as_signals(mix[None], "mix")[0]

    reason = _silent(refs, "reference") or _silent(ests, "estimate")
    if reason:
        return Skipped(reason)
    bss_eval = _BSS_EVAL[backend]
    sdr, sir, sar = bss_eval(refs, ests)
    sdr_mix = bss_eval(refs, np.broadcast_to(mix, refs.shape).copy())[0]
    values = [sdr, sir, sar, sdr_mix]
    assert all(np.shape(v) == (n_src,) for v in values), [np.shape(v) for v in values]
    return Scores(*(tuple(float(x) for x in np.clip(v, -CLAMP_DB, CLAMP_DB)) for v in values))


# --------------------------------------------------------------------------------------------
# a test set


@dataclass(frozen=True)
class Record:
    """One evaluated mixture: an identifier, the class of each source, and its result."""

    key: str
    classes: tuple[str, ...]
    result: Result

    def __post_init__(self):
        if isinstance(self.result, Scores) and len(self.classes) != self.result.n_sources:
            raise ValueError(f"{self.key}: {len(self.classes)} classes for "
                             f"{self.result.n_sources} sources")


def _summary(values: Sequence[float]) -> dict[str, Optional[float]]:
    if not values:
        return {"mean": None, "median": None}
    return {"mean": float(statistics.fmean(values)), "median": float(statistics.median(values))}


def aggregate(records: Iterable[Record]) -> dict:
    """Means and medians of every metric, overall and per class; JSON-able.

    Overall: over mixtures, of each mixture's source mean (Sound-of-Pixels' figure). Per class:
    over the sources of that class, of the per-source values. Skipped mixtures are counted
    (overall, and under each class they contain) and contribute no values.
    """
    records = list(records)
    overall = {m: [] for m in METRICS}
    per_class: dict[str, dict] = {}
    n_skipped = 0
    for rec in records:
        for c in rec.classes:
            per_class.setdefault(c, {"n_sources": 0, "n_skipped": 0,
                                     "values": {m: [] for m in METRICS}})
        if rec.result.skipped:
            n_skipped += 1
            for c in set(rec.classes):
                per_class[c]["n_skipped"] += 1
            continue
        for m, v in rec.result.mean().items():
            overall[m].append(v)
        for k, c in enumerate(rec.classes):
            per_class[c]["n_sources"] += 1
            for m in METRICS:
                per_class[c]["values"][m].append(getattr(rec.result, m)[k])
    return {
        "n_mixtures": len(records),
        "n_scored": len(records) - n_skipped,
        "n_skipped": n_skipped,
        "overall": {m: _summary(v) for m, v in overall.items()},
        "per_class": {
            c: {"n_sources": d["n_sources"], "n_skipped": d["n_skipped"],
                **{m: _summary(v) for m, v in d["values"].items()}}
            for c, d in sorted(per_class.items())
        },
    }
