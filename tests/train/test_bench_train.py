"""`tribert bench train --json` prints one JSON object with the throughput figures."""
from __future__ import annotations

import json

from click.testing import CliRunner

from pipeline.cli import main


def test_bench_train_json_on_real_shards(clip_dir):
    res = CliRunner().invoke(main, ["bench", "train", "--clips", str(clip_dir), "--pose", "",
                                    "--presets", "tiny", "--steps", "1", "--batch", "2",
                                    "--json"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.output.strip().splitlines()[-1])
    assert figures["tiny.samples_per_s"] > 0
    assert 0 <= figures["tiny.data_wait_share"] < 1
    assert figures["pose"] is False


def test_bench_train_without_shards_says_what_to_run(tmp_path):
    res = CliRunner().invoke(main, ["bench", "train", "--clips", str(tmp_path)])
    assert res.exit_code != 0 and "dvc repro decode" in res.output
