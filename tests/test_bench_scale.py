"""`tribert bench scale`: the per-video stages at 1x and 2x the embedded videos, through their
own CLIs, with each stage's seconds and peak memory (here only the first two stages, on a few
short videos: the figures' meaning is for the README's run, not for a test)."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import main
from support import merge_params, require_tools

SMALL = {"data": {"synthetic": {"classes": ["violin", "tuba"], "videos_per_class": 8,
                                "duets": 4, "duration": 6.0}}}


@pytest.fixture
def small_params(root, tmp_path):
    params = yaml.safe_load((root / "params.yaml").read_text())
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(merge_params(params, SMALL), sort_keys=False))
    return path


def test_bench_scale_renders_twice_the_videos_and_times_each_stage(small_params, tmp_path):
    require_tools("ffmpeg", "ffprobe")
    work = tmp_path / "work"
    res = CliRunner().invoke(main, ["bench", "scale", "--params", str(small_params),
                                    "--videos-per-class", "1", "--stages", "acquire,decode",
                                    "--keep", str(work), "--json"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.output.strip().splitlines()[-1])
    # 1 and 2 solos per class (2 classes), duets at the params' 4 per 8 videos: 1 and 1
    assert (figures["videos_1x"], figures["videos_2x"]) == (3, 5)
    assert figures["clips_2x"] > figures["clips_1x"] > 0
    for stage in ("acquire", "decode"):
        assert figures[f"{stage}.s_2x"] > 0 and figures[f"{stage}.peak_mb_1x"] > 10
        assert figures[f"{stage}.time_ratio"] == pytest.approx(
            figures[f"{stage}.s_2x"] / figures[f"{stage}.s_1x"])
    assert "train.s_1x" not in figures
    # each scale in its own folder, with the params it ran on
    p2 = yaml.safe_load((work / "2x" / "params.yaml").read_text())
    assert p2["data"]["synthetic"]["videos_per_class"] == 2
    assert (work / "1x" / "clips").is_dir() and (work / "2x" / "raw" / "manifest.csv").is_file()


def test_bench_scale_names_a_failing_stage(small_params, tmp_path):
    """A stage that fails stops the bench with its name and the folder it ran in."""
    res = CliRunner().invoke(main, ["bench", "scale", "--params", str(small_params),
                                    "--stages", "decode", "--keep", str(tmp_path / "w")])
    assert res.exit_code != 0 and "stage decode failed" in res.output


def test_bench_scale_rejects_an_unknown_stage(small_params):
    res = CliRunner().invoke(main, ["bench", "scale", "--params", str(small_params),
                                    "--stages", "acquire,render"])
    assert res.exit_code != 0 and "render" in res.output
