"""`tribert styles`: an evaluation's mixtures grouped by the composer style of their parts."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.tools.styles import style_table
from support import write_mixtures

# (classes_1, classes_2, part 1 and part 2 over the mixture, swapped-videos SDR); the mixture's
# SDR is 0 for each part, so a part's gain is its SDR
ROWS = [("violin", "saxophone", 2.0, 4.0, -1.0),        # melody / melody
        ("erhu", "cello", 8.0, 6.0, -3.0),              # melody / melody
        ("tuba", "flute", 20.0, 16.0, -20.0),           # bass / melody
        ("violin", "violin", 1.0, 0.0, 0.0)]            # one class: melody / melody


def write(path, rows=ROWS, swap=True):
    return write_mixtures(path, [
        dict(set="single", index=i, video_1=f"a{i}", video_2=f"b{i}", kind_1="solo",
             kind_2="solo", classes_1=c1, classes_2=c2, sdr_1=g1, sdr_2=g2, sdr=(g1 + g2) / 2,
             swap_sdr=swapped if swap else "", failed="")
        for i, (c1, c2, g1, g2, swapped) in enumerate(rows)])


def test_groups_by_style_pair_and_by_class_relation(tmp_path):
    from pipeline.tools.compare import read_mixtures
    table, summary = style_table(read_mixtures(write(tmp_path))["single"])
    by = {t["group"]: t for t in table}
    assert list(by) == ["melody / melody", "bass / melody"]          # worst first
    mm = by["melody / melody"]
    assert mm["mixtures"] == 3
    assert mm["improvement"] == pytest.approx((2 + 4 + 8 + 6 + 1 + 0) / 6)
    assert mm["parts_separated"] == pytest.approx(2 / 6)              # 8 and 6 are >= +6 dB
    assert mm["swap_drop"] == pytest.approx(((3 + 1) + (7 + 3) + (0.5 - 0)) / 3)
    s = {t["group"]: t for t in summary}
    assert [t["group"] for t in summary] == ["different styles", "same style, different classes",
                                             "same class"]
    assert s["different styles"]["parts_separated"] == 1.0
    assert s["same style, different classes"]["mixtures"] == 2
    assert s["same class"]["improvement"] == pytest.approx(0.5)


def test_the_command_prints_both_tables_and_refuses_classes_without_a_style(tmp_path):
    result = CliRunner().invoke(main, ["styles", str(write(tmp_path / "a", swap=False))])
    assert result.exit_code == 0, result.output
    assert "| bass / melody | 1 | +18.00 | 1.00 | - |" in result.output
    assert "| same style, different classes | 2 |" in result.output
    music = write(tmp_path / "b", rows=[("violin", "clarinet2", 1.0, 1.0, 0.0)])
    result = CliRunner().invoke(main, ["styles", str(music)])
    assert result.exit_code != 0
    assert "'clarinet2' has no composer style" in result.output


def test_the_styles_are_those_the_composer_plays():
    from pipeline.data.styles import STYLES
    from pipeline.data.synth.instruments import INSTRUMENTS
    assert STYLES == {name: i.style for name, i in INSTRUMENTS.items()}
