"""Separation metrics (paper Sec. 4.1, Table 1): BSS Eval SDR/SIR/SAR as Sound-of-Pixels computes
them, SI-SDR beside them, and their aggregation over a test set with confidence intervals.

Per mixture, each estimate is scored against its own reference (``bss_eval_sources`` without
permutation, distortion filters of 512 taps), and the scores are averaged over the sources. The
mixture baseline SDR scores the mixture itself as every estimate (only SDR: when the mixture is
exactly the sum of the references it has no artifacts, so its SAR is infinite and meaningless).
Values are clipped to +-100 dB so that a perfect estimate (infinite ratios; fast_bss_eval gives
inf, mir_eval a huge finite number) keeps means finite and JSON valid.

Nothing is dropped. An estimate that is silent (sum |x| <= 1e-5) cannot be scored by BSS Eval;
it is a **failure** and scores :data:`FAILURE_DB` (0 dB: the SNR 10 log10(|s|^2 / |s - 0|^2) of
an empty estimate) for every metric of that source, counted in the means and reported as a count
with its reason. A silent reference makes the whole mixture unscorable: every source of it is a
failure in the same way (the mixture baseline too).

SI-SDR (Le Roux et al. 2019) is the scale-invariant SDR of the zero-mean signals:
10 log10(|a s|^2 / |a s - s_hat|^2) with a = <s_hat, s> / |s|^2.

Three backends compute the same BSS Eval v3 quantities in float64:

- ``"fast"`` (default): :func:`bss_eval_shared`, this module's implementation, which scores all
  estimate sets of a mixture (the model, its variants, the mixture itself) with the
  reference-only work done once and short FFTs (``tribert bench eval`` measures it);
- ``"fast_bss_eval"``: ``fast_bss_eval.bss_eval_sources``, one call per estimate set;
- ``"mir_eval"``: ``mir_eval.separation.bss_eval_sources``, the reference implementation (0.8
  marks it deprecated; its warning is silenced only around our call).

On the six real MUSIC21 mixtures of the official repository they agree to about 1e-10 dB.
"""
from __future__ import annotations

import statistics
import warnings
from dataclasses import asdict, dataclass
from typing import Iterable, Literal, Optional, Sequence

import numpy as np

SILENCE = 1e-5  # a signal with sum |x| <= SILENCE is silent (Sound-of-Pixels' test)
FILTER_LENGTH = 512  # BSS Eval v3 distortion filter length (mir_eval's fixed value)
BACKENDS = ("fast", "fast_bss_eval", "mir_eval")
CLAMP_DB = 100.0  # |metric| above this is clipped (never reached by a real separation)
FAILURE_DB = 0.0  # every metric of a failed source (silent estimate or reference), see above
METRICS = ("sdr", "sir", "sar", "si_sdr", "sdr_mix")

Backend = Literal["fast", "fast_bss_eval", "mir_eval"]


@dataclass(frozen=True)
class Scores:
    """Per-source metrics of one mixture in dB; index k is the k-th estimate vs reference.

    ``sdr_mix`` is the baseline: the SDR of the mixture scored as the estimate of every source.
    ``failed``: per source, "" or why it scored :data:`FAILURE_DB` (e.g. "estimate 2 is
    silent").
    """

    sdr: tuple[float, ...]
    sir: tuple[float, ...]
    sar: tuple[float, ...]
    si_sdr: tuple[float, ...]
    sdr_mix: tuple[float, ...]
    failed: tuple[str, ...] = ()

    @property
    def n_sources(self) -> int:
        return len(self.sdr)

    @property
    def failures(self) -> int:
        """Failed sources of this mixture."""
        return sum(bool(f) for f in self.failed)

    def mean(self) -> dict[str, float]:
        """Each metric averaged over the sources (Sound-of-Pixels' per-mixture figure)."""
        return {m: float(np.mean(getattr(self, m))) for m in METRICS}

    def source(self, k: int) -> "Scores":
        """The scores of source ``k`` alone (a one-source Scores)."""
        return Scores(*((getattr(self, m)[k],) for m in METRICS),
                      failed=(self.failed[k],) if self.failed else ())

    def to_dict(self) -> dict:
        """JSON-able: the source means plus the per-source lists."""
        return {**self.mean(), "failures": self.failures,
                "sources": {m: list(v) for m, v in asdict(self).items()}}


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


def _silent_rows(signals: np.ndarray, name: str) -> list[str]:
    """Per row: "" or the reason it is silent."""
    energy = np.abs(signals).sum(axis=1)
    return [f"{name} {k + 1} is silent (sum |x| = {e:.3g})" if e <= SILENCE else ""
            for k, e in enumerate(energy)]


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


def _lag_matrix(n: int) -> np.ndarray:
    """(n, n) lags t - s of a Toeplitz matrix (negative lags index from the end)."""
    t = np.arange(n)
    return t[:, None] - t[None, :]


def _solve_gram(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """G^-1 rhs for a Gram matrix of delayed references: Cholesky (half the work of LU), or LU
    where rounding makes a nearly singular G fail Cholesky (e.g. pure tones, whose delays span
    few dimensions; mir_eval solves with LU). An exactly singular G (linearly dependent
    references) is a ValueError."""
    import scipy.linalg

    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram, check_finite=False), rhs,
                                      check_finite=False)
    except np.linalg.LinAlgError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)   # an exactly zero pivot
        try:
            lu = scipy.linalg.lu_factor(gram, check_finite=False)
        except scipy.linalg.LinAlgWarning as e:
            raise ValueError(f"refs: linearly dependent references cannot be scored ({e})") \
                from None
    return scipy.linalg.lu_solve(lu, rhs, check_finite=False)


def bss_eval_shared(refs: np.ndarray, ests: np.ndarray,
                    filter_length: int = FILTER_LENGTH) -> tuple[np.ndarray, ...]:
    """BSS Eval v3 SDR/SIR/SAR (no permutation) of several estimate sets of the same
    references: ``refs`` (N, L), ``ests`` (E, N, L) -> three (E, N) arrays.

    The same quantities as ``mir_eval``'s ``bss_eval_sources``: estimate j is projected on the
    ``filter_length`` delays of reference j (the target) and of all references (target plus
    interference; the rest is artifacts); with unit-norm signals the squared norms of the two
    projections are ``b_j^T G_j^-1 b_j`` and ``b^T G^-1 b`` with G the (block-)Toeplitz Gram
    matrix of the delayed references and b the estimate's correlation with them. What depends
    only on the references (their spectra, the Gram matrices and their factorisations) is
    computed once for all E sets (Cholesky factorisations where they succeed), and the
    correlations come from FFTs of length ``L + filter_length`` rounded to a fast size (no
    circular wrap for lags below ``filter_length``) instead of the 2L of fast_bss_eval: ``tribert bench eval`` measures the
    speed and the difference to mir_eval."""
    import scipy.fft
    from threadpoolctl import threadpool_limits

    refs = np.asarray(refs, np.float64)
    ests = np.asarray(ests, np.float64)
    (N, L), E = refs.shape, ests.shape[0]
    K = filter_length
    refs = refs / np.linalg.norm(refs, axis=-1, keepdims=True)
    ests = ests / np.linalg.norm(ests, axis=-1, keepdims=True)
    n_fft = scipy.fft.next_fast_len(L + K, real=True)
    R = scipy.fft.rfft(refs, n_fft, axis=-1)                                  # (N, F)
    Y = scipy.fft.rfft(ests, n_fft, axis=-1)                                  # (E, N, F)
    acf = scipy.fft.irfft(R.conj()[:, None] * R[None], n_fft, axis=-1)       # (N, N, n_fft)
    # b[e, j, c, t] = sum_n ref_c[n] est_ej[n + t], t < K
    xcorr = scipy.fft.irfft(R.conj()[None, None] * Y[:, :, None], n_fft, axis=-1)[..., :K]
    lags = _lag_matrix(K)
    # the Gram matrix of all delayed references: block (c, d) holds <ref_c(. - t), ref_d(. - s)>
    gram = np.block([[acf[c, d][lags] for d in range(N)] for c in range(N)])   # (NK, NK)
    with np.errstate(divide="ignore", invalid="ignore"), threadpool_limits(1):
        # one BLAS thread: these 512-1024 matrices gain nothing from more, and extra threads
        # fighting the model's for the cores made the factorisations 2.4x slower here
        rhs = xcorr.reshape(E * N, N * K).T                                   # (NK, E*N)
        coh_sar = np.einsum("ik,ik->k", rhs, _solve_gram(gram, rhs))
        coh_sdr = np.empty((E, N))
        for j in range(N):
            b = xcorr[:, j, j].T                                              # (K, E)
            own = gram[j * K:(j + 1) * K, j * K:(j + 1) * K]
            coh_sdr[:, j] = np.einsum("ik,ik->k", b, _solve_gram(own, b))
        coh_sar = coh_sar.reshape(E, N)
        coh_sir = coh_sdr / coh_sar
        # an estimate inside the span of the delayed references has coherence 1 (up to
        # rounding): an infinite ratio, clipped by the callers
        ratio = lambda c: 10 * np.log10(np.clip(c, 0, 1) / (1 - np.clip(c, 0, 1)))  # noqa
        return ratio(coh_sdr), ratio(coh_sir), ratio(coh_sar)


def _bss_eval_shared(refs: np.ndarray, ests: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(v[0] for v in bss_eval_shared(refs, ests[None]))


_BSS_EVAL = {"fast": _bss_eval_shared, "fast_bss_eval": _bss_eval_fast,
             "mir_eval": _bss_eval_mir}


def si_sdr(refs, ests) -> np.ndarray:
    """Scale-invariant SDR (dB) of each estimate against its reference, (n_src,), on zero-mean
    signals; clipped to +-100 dB. A silent estimate or reference gives -100 dB here (callers
    score it as a failure instead)."""
    refs = np.asarray(refs, np.float64)
    ests = np.asarray(ests, np.float64)
    refs = refs - refs.mean(axis=-1, keepdims=True)
    ests = ests - ests.mean(axis=-1, keepdims=True)
    dot = (refs * ests).sum(axis=-1)
    energy = (refs ** 2).sum(axis=-1)
    target = (dot / np.maximum(energy, 1e-20))[..., None] * refs
    noise = ests - target
    with np.errstate(divide="ignore", invalid="ignore"):
        v = 10 * np.log10((target ** 2).sum(-1) / (noise ** 2).sum(-1))
    return np.clip(np.nan_to_num(v, nan=-CLAMP_DB), -CLAMP_DB, CLAMP_DB)


def _checked(refs, sets: dict, mix) -> tuple:
    """(refs, [estimate sets], mix) as float64 arrays of matching shapes, or a ValueError
    naming the argument; the fourth item is the all-failed Scores of a mixture whose
    reference is silent (else None)."""
    refs = _as_signals(refs, "refs")
    n_src, n_samples = refs.shape
    arrays = [_as_signals(e, name, n_samples) for name, e in sets.items()]
    for name, e in zip(sets, arrays):
        if e.shape[0] != n_src:
            raise ValueError(f"{name}: {e.shape[0]} estimates for {n_src} references")
    mix = refs.sum(axis=0) if mix is None else np.asarray(mix, dtype=np.float64)
    if mix.shape != (n_samples,):
        raise ValueError(f"mix: expected shape ({n_samples},), got {mix.shape}")
    mix = _as_signals(mix[None], "mix")[0]
    ref_silent = next((r for r in _silent_rows(refs, "reference") if r), "")
    unscorable = (Scores(*((FAILURE_DB,) * n_src,) * len(METRICS), failed=(ref_silent,) * n_src)
                  if ref_silent else None)
    return refs, arrays, mix, unscorable


def separation_metrics(refs, ests, mix=None, backend: Backend = "fast",
                       sdr_mix: Optional[Sequence[float]] = None) -> Scores:
    """SDR/SIR/SAR/SI-SDR of ``ests`` against ``refs`` for one mixture, and the mixture
    baseline.

    refs, ests: (n_sources, n_samples) waveforms; estimate k is scored against reference k (no
    permutation). In mix-and-separate the references are the 1/N-scaled sources.
    mix: (n_samples,) mixture waveform for the baseline; None uses ``refs.sum(0)``, which is the
    mixture when the references are the scaled sources that were summed.
    A silent estimate or reference is a failure (module docstring), never dropped.
    sdr_mix: the mixture baseline when already computed for these references (other variants
    of the same mixture), else it is computed.
    """
    if backend not in _BSS_EVAL:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    refs, (ests,), mix, unscorable = _checked(refs, {"ests": ests}, mix)
    n_src = refs.shape[0]
    fail = np.full(n_src, FAILURE_DB)
    if unscorable:
        return unscorable
    failed = _silent_rows(ests, "estimate")
    ok = np.array([not f for f in failed])
    bss_eval = _BSS_EVAL[backend]
    if ok.any():
        # BSS Eval scores each estimate against the references on its own (no permutation):
        # a silent row is replaced by a scorable one and its values overwritten afterwards
        filled = ests.copy()
        filled[~ok] = ests[ok][0]
        sdr, sir, sar = (np.where(ok, v, FAILURE_DB) for v in bss_eval(refs, filled))
    else:
        sdr = sir = sar = fail
    si = np.where(ok, si_sdr(refs, ests), FAILURE_DB)
    if sdr_mix is None:
        sdr_mix = bss_eval(refs, np.broadcast_to(mix, refs.shape).copy())[0]
    sdr_mix = np.asarray(sdr_mix, np.float64)
    values = [sdr, sir, sar, si, sdr_mix]
    assert all(np.shape(v) == (n_src,) for v in values), [np.shape(v) for v in values]
    return Scores(*(tuple(float(x) for x in np.clip(v, -CLAMP_DB, CLAMP_DB)) for v in values),
                  failed=tuple(failed))


def separation_metrics_many(refs, ests: dict, mix=None, backend: Backend = "fast"
                            ) -> dict[str, Scores]:
    """:func:`separation_metrics` of several estimate sets of one mixture ({name: (N, L)}),
    with the mixture baseline computed once; the ``fast`` backend scores all of them (and the
    mixture) in one :func:`bss_eval_shared` call. Same figures as one call per set."""
    if backend != "fast":
        first = None
        out = {}
        for name, e in ests.items():
            out[name] = separation_metrics(refs, e, mix, backend,
                                           sdr_mix=None if first is None else first.sdr_mix)
            first = first or out[name]
        return out
    names = list(ests)
    refs, sets, mix, unscorable = _checked(refs, {f"ests ({n})": ests[n] for n in names}, mix)
    if unscorable:
        return {n: unscorable for n in names}
    failed = [_silent_rows(e, "estimate") for e in sets]
    ok = [np.array([not f for f in fs]) for fs in failed]
    stack = [np.broadcast_to(mix, refs.shape)]
    for e, k in zip(sets, ok):
        filled = e.copy()
        if k.any():          # a silent row is replaced by a scorable one, overwritten below
            filled[~k] = e[k][0]
        else:
            filled[:] = mix
        stack.append(filled)
    sdr, sir, sar = bss_eval_shared(refs, np.stack(stack))
    out = {}
    for i, (n, e, k) in enumerate(zip(names, sets, ok), start=1):
        values = [np.where(k, v[i], FAILURE_DB) for v in (sdr, sir, sar)]
        values += [np.where(k, si_sdr(refs, e), FAILURE_DB), sdr[0]]
        out[n] = Scores(*(tuple(float(x) for x in np.clip(v, -CLAMP_DB, CLAMP_DB))
                          for v in values), failed=tuple(failed[i - 1]))
    return out


def mean_ci(values: Sequence[float], level: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> dict[str, Optional[float]]:
    """Mean with its percentile-bootstrap confidence interval (resampling the values, e.g. one
    per mixture, ``n_boot`` times with a fixed seed): {"mean", "lo", "hi"}."""
    v = np.asarray(values, np.float64)
    if not len(v):
        return {"mean": None, "lo": None, "hi": None}
    rng = np.random.default_rng(seed)
    boots = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    a = (1 - level) / 2
    return {"mean": float(v.mean()), "lo": float(np.quantile(boots, a)),
            "hi": float(np.quantile(boots, 1 - a))}


def mean_ci_units(values: Sequence[float], units: Sequence[Sequence[str]], level: float = 0.95,
                  n_boot: int = 2000, seed: int = 0) -> dict[str, Optional[float]]:
    """Mean with a percentile-bootstrap interval that resamples the units the values are made
    of (each mixture's videos) instead of the values: every draw gives each unit a multiplicity
    (multinomial over the units, fixed seed) and weighs each value by the product of its units'
    multiplicities (the pigeonhole bootstrap for crossed designs, Owen 2007). Mixtures that
    share videos are not independent, so :func:`mean_ci` says how well the mean of these
    mixtures is known, this one how far it could move on other videos of the same kind. It errs
    wide: with two units per value and no effect of the units at all, the product weights make
    it up to sqrt(3) times as wide as :func:`mean_ci` (Owen's "mildly conservative"):
    {"mean", "lo", "hi", "units"}."""
    v = np.asarray(values, np.float64)
    if not len(v):
        return {"mean": None, "lo": None, "hi": None, "units": 0}
    if len(units) != len(v):
        raise ValueError(f"{len(v)} values but {len(units)} unit lists")
    names = sorted({u for us in units for u in us})
    index = {u: i for i, u in enumerate(names)}
    width = max(len(us) for us in units)
    idx = np.full((len(v), width), len(names))            # padding: a unit drawn exactly once
    for i, us in enumerate(units):
        idx[i, :len(us)] = [index[u] for u in us]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=n_boot)
    counts = np.concatenate([counts, np.ones((n_boot, 1), counts.dtype)], axis=1)
    w = counts[:, idx].prod(axis=2).astype(np.float64)   # (n_boot, values)
    kept = w.sum(axis=1) > 0
    boots = (w[kept] @ v) / w[kept].sum(axis=1)
    a = (1 - level) / 2
    return {"mean": float(v.mean()), "lo": float(np.quantile(boots, a)),
            "hi": float(np.quantile(boots, 1 - a)), "units": len(names)}


# --------------------------------------------------------------------------------------------
# a test set


VARIANTS = ("model", "binary", "ratio", "normalized", "swap", "ibm")   # beside the mixture
# model: the model's output, one of the next three (``mask`` of train/evaluate); binary: its masks
# thresholded (the paper's output); ratio: its mask probabilities used as a soft mask;
# normalized: the ratio masks divided by their sum over the sources (output_masks of
# pipeline.separation.infer); swap: the model's output with the two videos of the mixture
# exchanged (estimate k is conditioned on the other source's video); ibm: the ideal binary mask through the same warp, threshold and iSTFT
# (the ceiling of the recipe); the mixture itself is every Scores' sdr_mix.


@dataclass(frozen=True)
class Record:
    """One evaluated mixture: an identifier, the class of each source, and its scores per
    variant ({"model": Scores, ...}; a plain Scores counts as the model's)."""

    key: str
    classes: tuple[str, ...]
    result: "dict[str, Scores] | Scores"

    def __post_init__(self):
        if isinstance(self.result, Scores):
            object.__setattr__(self, "result", {"model": self.result})
        for name, r in self.result.items():
            if len(self.classes) != r.n_sources:
                raise ValueError(f"{self.key}: {len(self.classes)} classes for "
                                 f"{r.n_sources} sources ({name})")


def _summary(values: Sequence[float], ci: bool = True) -> dict[str, Optional[float]]:
    if not values:
        return {"mean": None, "median": None, **({"lo": None, "hi": None} if ci else {})}
    out = {"mean": float(statistics.fmean(values)), "median": float(statistics.median(values))}
    if ci:
        c = mean_ci(values)
        out.update(lo=c["lo"], hi=c["hi"])
    return out


def aggregate(records: Iterable[Record]) -> dict:
    """Means (with 95% bootstrap intervals) and medians of every metric of every variant,
    overall and per class; JSON-able. Nothing is dropped: failed sources count with
    :data:`FAILURE_DB` and are counted per variant.

    Overall: over mixtures, of each mixture's source mean (Sound-of-Pixels' figure); the
    difference ``model - mixture`` SDR per mixture gives ``improvement``. Per class: over the
    sources of that class, of the per-source values (the model's metrics and the ideal mask's
    SDR).
    """
    records = list(records)
    variants = list(dict.fromkeys(v for rec in records for v in rec.result))
    overall = {v: {m: [] for m in METRICS} for v in variants}
    failures = {v: 0 for v in variants}
    improvement = []
    per_class: dict[str, dict] = {}
    for rec in records:
        for v, r in rec.result.items():
            failures[v] += r.failures
            for m, x in r.mean().items():
                overall[v][m].append(x)
        model = rec.result.get("model")
        if model is not None:
            improvement.append(model.mean()["sdr"] - model.mean()["sdr_mix"])
        for k, c in enumerate(rec.classes):
            d = per_class.setdefault(c, {"n_sources": 0, "failures": 0,
                                         "values": {m: [] for m in METRICS + ("ibm_sdr",)}})
            d["n_sources"] += 1
            if model is not None:
                d["failures"] += bool(model.failed and model.failed[k])
                for m in METRICS:
                    d["values"][m].append(getattr(model, m)[k])
            if "ibm" in rec.result:
                d["values"]["ibm_sdr"].append(rec.result["ibm"].sdr[k])
    return {
        "n_mixtures": len(records),
        "failures": failures,
        "overall": {v: {m: _summary(x) for m, x in ms.items()} for v, ms in overall.items()},
        "improvement": _summary(improvement),
        "per_class": {
            c: {"n_sources": d["n_sources"], "failures": d["failures"],
                **{m: _summary(x, ci=False) for m, x in d["values"].items() if x}}
            for c, d in sorted(per_class.items())
        },
    }


def score_estimates(batch: dict, feats: dict, ests: dict, backend: str = "fast",
                    cached: Optional[list] = None) -> list[dict]:
    """Per mixture of the batch: {variant: Scores} against the 1/N-scaled sources, the mixture
    baseline computed once (:func:`separation_metrics_many`). ``cached``: per
    mixture, {variant: Scores} already known (the val set's fixed ideal-mask scores), reused
    instead of recomputed. The ``model`` entry, the same array as one variant's, reuses that
    variant's scores."""
    L = next(iter(ests.values())).shape[-1]
    refs = batch["audio"][..., :L].double().numpy()
    mix = feats["mix"][..., :L].double().cpu().numpy()
    alias = [n for n, e in ests.items() if n != "model" and e is ests.get("model")]
    out = []
    for b in range(refs.shape[0]):
        known = dict(cached[b]) if cached else {}
        todo = {n: e[b] for n, e in ests.items()
                if n not in known and not (n == "model" and alias)}
        scores = {**known, **separation_metrics_many(refs[b], todo, mix[b], backend)}
        if alias:
            scores["model"] = scores[alias[0]]
        out.append(scores)
    return out
