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
    text = run(b, a).output
    assert "single" in text and f"{-d.mean():+.2f}" in text


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
