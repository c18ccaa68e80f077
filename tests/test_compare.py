"""`tribert compare`: the paired difference of two evaluations of the same mixtures."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from support import write_mixtures


def write_run(path, sdr_single, sdr_multi, videos=None):
    rows = []
    for s, values in (("single", sdr_single), ("multi", sdr_multi)):
        for i, v in enumerate(values):
            v1, v2 = (videos or {}).get((s, i), (f"{s}{i}a", f"{s}{i}b"))
            rows.append(dict(set=s, index=i, video_1=v1, video_2=v2, kind_1="solo",
                             kind_2="solo", classes_1="tuba", classes_2="flute",
                             sdr=f"{v:.6f}", sdr_mix="0.100000", failed=""))
    return write_mixtures(path, rows)


def run(*args):
    return CliRunner().invoke(main, ["compare", *map(str, args)])


def test_paired_difference_and_its_interval(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(5, 4, 300)           # mixtures differ a lot in difficulty ...
    better = base + 1 + rng.normal(0, 0.3, 300)   # ... the variant is 1 dB better on each
    a = write_run(tmp_path / "a", better, better[:50])
    b = write_run(tmp_path / "b", base, base[:50])
    res = run(a, b, "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)["sets"]
    d = better - base
    assert got["single"]["mixtures"] == 300 and got["multi"]["mixtures"] == 50
    assert got["single"]["difference"] == pytest.approx(d.mean())
    assert got["single"]["a"] == pytest.approx(better.mean())
    assert got["single"]["lo"] < d.mean() < got["single"]["hi"]
    # paired: the interval is set by the 0.3 dB noise, not the 4 dB spread of difficulty
    assert got["single"]["hi"] - got["single"]["lo"] < 0.15
    assert got["single"]["a_higher"] == pytest.approx(np.mean(d > 0))
    # each mixture its own two videos here: the video interval is wider only by the product
    # weights' overstatement (sqrt(3), pipeline.separation.metrics.mean_ci_units)
    assert got["single"]["videos"] == 600
    width = got["single"]["hi"] - got["single"]["lo"]
    assert got["single"]["videos_hi"] - got["single"]["videos_lo"] == pytest.approx(
        np.sqrt(3) * width, rel=0.15)
    text = run(b, a).output
    assert "single" in text and f"{-d.mean():+.2f}" in text


def test_the_video_interval_counts_videos_that_many_mixtures_share(tmp_path):
    rng = np.random.default_rng(1)
    gain = rng.normal(1, 1.5, 6)           # the variant helps on some videos, hurts on others
    pairs = [tuple(rng.choice(6, 2, replace=False)) for _ in range(200)]
    base = rng.normal(5, 4, 200)
    better = base + np.array([gain[i] + gain[j] for i, j in pairs]) / 2 + rng.normal(0, 0.3, 200)
    videos = {("single", k): (f"v{i}", f"v{j}") for k, (i, j) in enumerate(pairs)}
    a = write_run(tmp_path / "a", better, better[:5], videos)
    b = write_run(tmp_path / "b", base, base[:5], videos)
    got = json.loads(run(a, b, "--json").output)["sets"]["single"]
    assert got["videos"] == 6
    assert got["videos_lo"] < got["difference"] < got["videos_hi"]
    assert got["videos_hi"] - got["videos_lo"] > 3 * (got["hi"] - got["lo"])
    assert "95% CI, videos" in run(a, b).output


def test_different_mixtures_are_refused_naming_the_mixture(tmp_path):
    a = write_run(tmp_path / "a", [1.0, 2.0], [1.0])
    b = write_run(tmp_path / "b", [1.0, 2.0], [1.0], videos={("single", 1): ("x", "y")})
    res = run(a / "mixtures.csv", b)
    assert res.exit_code != 0
    assert "set single, mixture 1" in res.output and "not the same test mixtures" in res.output
    c = write_run(tmp_path / "c", [1.0], [1.0])
    assert "has 2 mixtures" in run(a, c).output


def test_missing_or_foreign_files_get_one_line_errors(tmp_path):
    a = write_run(tmp_path / "a", [1.0], [1.0])
    res = run(a, tmp_path / "nowhere")
    assert res.exit_code != 0 and "nowhere" in res.output and "no such file" in res.output
    (tmp_path / "other.csv").write_text("x,y\n1,2\n")
    res = run(a, tmp_path / "other.csv")
    assert res.exit_code != 0 and "not an evaluate mixtures.csv" in res.output
