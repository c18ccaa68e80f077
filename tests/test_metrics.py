"""pipeline.separation.metrics: the official model's figures on real MUSIC21 mixtures, backend agreement,
silent signals scored as counted failures (never dropped), SI-SDR, aggregation with bootstrap
intervals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.separation.metrics import (BACKENDS, FAILURE_DB, Record, Scores, aggregate,
                                        mean_ci, mean_ci_units, separation_metrics,
                                        separation_metrics_many, si_sdr)

# shared/data/music21_samples/README.md: official SDR / SIR / SAR and mixture SDR (dB)
OFFICIAL = {
    "0pXFhOg1o2c+bGfyLBoZPM4": (11.68, 20.59, 12.44, 1.75),
    "2XY77lk_LCQ+1K-0VC9hWIA": (13.54, 23.76, 14.75, 0.57),
    "EVp6jkgYuUc+8YELO9yxs_c": (13.23, 22.76, 13.76, 1.73),
    "GV2bbRPFhvk+NdzCe7COROw": (17.64, 30.34, 17.89, 0.68),
    "P_dHPMofcwM+EXMQITpeeaM": (13.78, 24.57, 14.56, 0.68),
    "Vk9YR-NLkmQ+nUZ9jX1J78c": (17.84, 26.00, 18.64, 0.55),
}
# measured: the three backends differ by < 1e-10 dB on these mixtures
AGREEMENT_DB = 1e-6


def _load(folder):
    sf = pytest.importorskip("soundfile")
    read = lambda name: sf.read(folder / name, dtype="float64")[0]  # noqa: E731
    refs = np.stack([read("gt1.wav"), read("gt2.wav")])
    ests = np.stack([read("pred1.wav"), read("pred2.wav")])
    return refs, ests, read("mix.wav")


@pytest.fixture(scope="module")
def real_mixtures(music21_samples):
    missing = [p for p in OFFICIAL if not (music21_samples / p).is_dir()]
    assert not missing, f"{music21_samples}: missing {missing}"
    return {p: _load(music21_samples / p) for p in OFFICIAL}


@pytest.fixture(scope="module")
def real_scores(real_mixtures):
    return {(p, b): separation_metrics(*real_mixtures[p], backend=b)
            for p in OFFICIAL for b in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pair", sorted(OFFICIAL))
def test_reproduces_official_figures(real_scores, pair, backend):
    s = real_scores[(pair, backend)]
    m = s.mean()
    got = (m["sdr"], m["sir"], m["sar"], m["sdr_mix"])
    # the README rounds to 0.01 dB: the rounded figures must be identical
    assert np.allclose(got, OFFICIAL[pair], rtol=0, atol=0.005 + 1e-9), (got, OFFICIAL[pair])


@pytest.mark.parametrize("pair", sorted(OFFICIAL))
def test_backends_agree(real_scores, pair):
    mir = real_scores[(pair, "mir_eval")]
    for backend in ("fast", "fast_bss_eval"):
        for metric in ("sdr", "sir", "sar", "sdr_mix"):
            assert np.allclose(getattr(real_scores[(pair, backend)], metric),
                               getattr(mir, metric), rtol=0, atol=AGREEMENT_DB), (backend, metric)


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_sets_of_one_mixture_score_as_one_call_each(real_mixtures, backend):
    """separation_metrics_many (the model, its variants and the mixture in one shared call for
    the fast backend) gives each set the figures of its own call, silent rows included."""
    refs, ests, mix = real_mixtures["2XY77lk_LCQ+1K-0VC9hWIA"]
    half_silent = ests.copy()
    half_silent[1] = 0.0
    sets = {"model": ests, "swap": ests[::-1].copy(), "noisy": ests + 0.1 * refs[::-1],
            "silent": half_silent}
    many = separation_metrics_many(refs, sets, mix, backend)
    assert list(many) == list(sets)
    for name, e in sets.items():
        one = separation_metrics(refs, e, mix, backend)
        assert one.failed == many[name].failed
        for metric in ("sdr", "sir", "sar", "si_sdr", "sdr_mix"):
            assert np.allclose(getattr(one, metric), getattr(many[name], metric), rtol=0,
                               atol=AGREEMENT_DB), (name, metric)
    assert many["silent"].failures == 1 and many["silent"].sdr[1] == FAILURE_DB
    assert many["swap"].mean()["sdr"] < 0 < many["model"].mean()["sdr"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_permutation(backend):
    """Swapped estimates are scored against the wrong references, not re-matched."""
    refs, ests = _tones()
    swapped = separation_metrics(refs, ests[::-1], backend=backend)
    assert swapped.mean()["sdr"] < 0


def test_mir_eval_warning_stays_local(real_mixtures):
    import warnings

    refs, ests, mix = real_mixtures["0pXFhOg1o2c+bGfyLBoZPM4"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        separation_metrics(refs, ests, mix, backend="mir_eval")
        warnings.warn("still visible", FutureWarning)
    assert [str(w.message) for w in caught] == ["still visible"]


def _tones(n=4096, seed=0):
    r = np.random.default_rng(seed)
    t = np.arange(n) / 11025
    refs = 0.5 * np.stack([np.sin(2 * np.pi * 440 * t), np.sign(np.sin(2 * np.pi * 97 * t))])
    return refs, refs + 0.05 * r.standard_normal(refs.shape)


def test_mix_defaults_to_sum_of_refs():
    refs, ests = _tones()
    assert separation_metrics(refs, ests) == separation_metrics(refs, ests, refs.sum(0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_silent_estimate_is_a_counted_failure_and_the_other_source_is_unchanged(backend):
    refs, ests = _tones()
    whole = separation_metrics(refs, ests, backend=backend)
    ests[1] = 1e-10  # sum |x| = 4e-7 <= 1e-5
    r = separation_metrics(refs, ests, backend=backend)
    assert r.failures == 1 and "estimate 2 is silent" in r.failed[1] and not r.failed[0]
    assert (r.sdr[1], r.sir[1], r.sar[1], r.si_sdr[1]) == (FAILURE_DB,) * 4
    assert r.sdr[0] == pytest.approx(whole.sdr[0], abs=1e-6)   # rows are scored on their own
    assert r.sdr_mix == pytest.approx(whole.sdr_mix)


def test_silent_reference_fails_every_source():
    refs, ests = _tones()
    refs[1] = 1e-10
    r = separation_metrics(refs, ests, backend="mir_eval")
    assert r.failures == 2 and all("reference 2 is silent" in f for f in r.failed)
    assert r.mean()["sdr"] == FAILURE_DB


def test_si_sdr_is_scale_invariant_and_matches_its_definition():
    refs, ests = _tones()
    v = si_sdr(refs, ests)
    np.testing.assert_allclose(si_sdr(refs, 3.0 * ests), v, atol=1e-9)
    s, e = refs[0] - refs[0].mean(), ests[0] - ests[0].mean()
    target = (e @ s) / (s @ s) * s
    assert v[0] == pytest.approx(10 * np.log10((target @ target) / ((e - target) @ (e - target))))
    assert separation_metrics(refs, ests).si_sdr == pytest.approx(tuple(v))


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_values():
    rng = np.random.default_rng(0)
    small, large = mean_ci(rng.normal(5, 3, 30)), mean_ci(rng.normal(5, 3, 600))
    for c in (small, large):
        assert c["lo"] < c["mean"] < c["hi"]
    assert (large["hi"] - large["lo"]) < 0.5 * (small["hi"] - small["lo"])
    assert 4.3 < large["lo"] and large["hi"] < 5.7
    assert mean_ci([]) == {"mean": None, "lo": None, "hi": None}


def test_video_interval_widens_when_mixtures_share_videos_and_not_otherwise():
    rng = np.random.default_rng(0)
    # 300 mixtures of 2 of 12 videos; each video carries its own offset, as a hard scene would
    effect = dict(zip(map(str, range(12)), rng.normal(0, 3, 12)))
    pairs = [tuple(map(str, rng.choice(12, 2, replace=False))) for _ in range(300)]
    values = np.array([effect[a] + effect[b] + rng.normal(0, 1) for a, b in pairs])
    shared, plain = mean_ci_units(values, pairs), mean_ci(values)
    assert shared["mean"] == pytest.approx(values.mean()) and shared["units"] == 12
    assert shared["lo"] < shared["mean"] < shared["hi"]
    assert (shared["hi"] - shared["lo"]) > 3 * (plain["hi"] - plain["lo"])
    width = plain["hi"] - plain["lo"]
    # one unit per value, each its own: resampling the units is resampling the values
    single = mean_ci_units(values, [(str(i),) for i in range(300)])
    assert single["hi"] - single["lo"] == pytest.approx(width, rel=0.1)
    # every mixture of its own two videos: no shared videos to count, only the product weights'
    # known overstatement, Var(c1 c2) = 3 Var(c) for two independent draws: sqrt(3) times wider
    own = [(f"{i}a", f"{i}b") for i in range(300)]
    alone = mean_ci_units(values, own)
    assert alone["units"] == 600
    assert alone["hi"] - alone["lo"] == pytest.approx(np.sqrt(3) * width, rel=0.15)
    assert mean_ci_units([], [])["lo"] is None
    with pytest.raises(ValueError, match="3 values but 2 unit lists"):
        mean_ci_units([1.0, 2.0, 3.0], [("a",), ("b",)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_perfect_estimate_is_clipped_and_finite(backend):
    refs, _ = _tones()
    m = separation_metrics(refs, refs.copy(), backend=backend).mean()
    assert all(np.isfinite(v) for v in m.values()) and m["sdr"] == m["sir"] == 100.0


def test_quiet_but_not_silent_is_scored():
    refs, ests = _tones()
    ests[1] *= 1e-6  # sum |x| ~ 2e-3 > 1e-5
    assert separation_metrics(refs, ests).failures == 0


@pytest.mark.parametrize("bad, match", [
    (dict(ests=np.zeros((2, 10))), "ests: 10 samples"),
    (dict(ests=np.zeros((3, 4096))), "3 estimates for 2"),
    (dict(mix=np.zeros(10)), "mix: expected shape"),
    (dict(ests=np.full((2, 4096), np.nan)), "NaN"),
    (dict(backend="museval"), "backend"),
    (dict(refs=np.ones((2, 4096))), "linearly dependent"),
])
def test_bad_input_is_named(bad, match):
    refs, ests = _tones()
    args = {"refs": refs, "ests": ests, **bad}
    with pytest.raises(ValueError, match=match):
        separation_metrics(**args)


def _scores(sdr, sdr_mix, failed=()):
    return Scores(sdr=sdr, sir=tuple(x + 10 for x in sdr), sar=tuple(x + 1 for x in sdr),
                  si_sdr=tuple(x - 1 for x in sdr), sdr_mix=sdr_mix, failed=failed)


@pytest.fixture
def summary():
    failed = _scores((FAILURE_DB, FAILURE_DB), (3.0, 3.0), ("reference 1 is silent",) * 2)
    return aggregate([
        Record("a", ("violin", "flute"), _scores((10.0, 4.0), (1.0, -1.0))),
        Record("b", ("violin", "violin"), _scores((2.0, 6.0), (0.0, 0.0))),
        Record("c", ("flute", "tuba"), _scores((1.0, 3.0), (2.0, 2.0))),
        Record("d", ("tuba", "cello"), {"model": failed, "ibm": _scores((9.0, 9.0), (3.0, 3.0))}),
    ])


def test_aggregate_counts_failures_and_drops_nothing(summary):
    assert summary["n_mixtures"] == 4 and summary["failures"] == {"model": 2, "ibm": 0}
    assert summary["per_class"]["cello"]["n_sources"] == 1
    assert summary["per_class"]["cello"]["failures"] == 1
    assert summary["per_class"]["cello"]["sdr"]["mean"] == FAILURE_DB


def test_aggregate_overall(summary):
    # per-mixture source means: sdr 7, 4, 2, 0 (failure); sdr_mix 0, 0, 2, 3
    sdr = summary["overall"]["model"]["sdr"]
    assert (sdr["mean"], sdr["median"]) == (pytest.approx(13 / 4), 3.0)
    assert sdr["lo"] <= sdr["mean"] <= sdr["hi"]
    assert summary["overall"]["model"]["sir"]["median"] == 13.0
    assert summary["overall"]["model"]["sdr_mix"]["mean"] == pytest.approx(5 / 4)
    assert summary["improvement"]["mean"] == pytest.approx(13 / 4 - 5 / 4)
    assert summary["overall"]["ibm"]["sdr"]["mean"] == 9.0


def test_aggregate_per_class(summary):
    violin = summary["per_class"]["violin"]  # sources 10, 2, 6
    assert violin["n_sources"] == 3 and violin["sdr"] == {"mean": 6.0, "median": 6.0}
    flute = summary["per_class"]["flute"]  # sources 4, 1
    assert flute["sdr"] == {"mean": 2.5, "median": 2.5}
    tuba = summary["per_class"]["tuba"]    # sources 3 and a failure
    assert (tuba["n_sources"], tuba["failures"], tuba["sdr"]["mean"]) == (2, 1, 1.5)
    assert tuba["ibm_sdr"]["mean"] == 9.0


def test_aggregate_is_json(summary):
    assert json.loads(json.dumps(summary)) == summary


def test_record_checks_class_count():
    with pytest.raises(ValueError, match="1 classes for 2 sources"):
        Record("x", ("violin",), _scores((1.0, 2.0), (0.0, 0.0)))


def test_results_to_dict_are_json():
    refs, ests = _tones()
    d = separation_metrics(refs, ests).to_dict()
    assert json.loads(json.dumps(d)) == d and len(d["sources"]["sdr"]) == 2
    assert d["sdr"] == pytest.approx(np.mean(d["sources"]["sdr"])) and d["failures"] == 0


def test_bench_eval_reports_every_backend():
    from click.testing import CliRunner

    from pipeline.tools.bench_eval import bench_eval

    out = CliRunner().invoke(bench_eval, ["--generated", "--mixtures", "1", "--repeats", "1",
                                          "--json", "--no-separation"])
    assert out.exit_code == 0, out.output
    figures = json.loads(out.output)
    assert figures["data"] == "generated" and figures["failures"] == 0
    for backend in BACKENDS:
        assert figures[f"eval_{backend}_s_per_mixture"] > 0
    assert figures["estimate_sets_per_mixture"] == 4
    assert figures["backends_max_diff_db"] < AGREEMENT_DB


def test_benches_find_the_shared_samples_beside_or_inside_the_checkout(tmp_path, monkeypatch):
    """The benches that read real MUSIC21 mixtures look where the tests do (``../shared``) and
    where the GPU machine's copy puts it (``shared/``); a wrong default made `tribert bench eval`
    fall back to generated mixtures without a word."""
    from pipeline import benchmark

    monkeypatch.delenv("TRIBERT_SHARED", raising=False)
    repo = tmp_path / "checkout"
    repo.mkdir()
    monkeypatch.setattr(benchmark, "REPO", repo)
    beside, inside = tmp_path / "shared", repo / "shared"
    assert benchmark.music21_samples() == beside / "data" / "music21_samples"   # neither exists
    inside.mkdir()
    assert benchmark.music21_samples() == inside / "data" / "music21_samples"
    beside.mkdir()
    assert benchmark.music21_samples() == beside / "data" / "music21_samples"
    monkeypatch.setenv("TRIBERT_SHARED", str(tmp_path / "elsewhere"))
    assert benchmark.music21_samples() == tmp_path / "elsewhere" / "data" / "music21_samples"


def test_bench_eval_reads_the_real_mixtures_by_default(music21_samples):
    from pipeline.tools.bench_eval import DEFAULT_SAMPLES

    assert DEFAULT_SAMPLES.resolve() == music21_samples.resolve()
