import pytest
from click.testing import CliRunner

from pipeline.train.bench import make_inputs
from pipeline.schema import ModelParams
from pipeline.cli import main


def test_bench_model_is_a_tribert_bench_command():
    result = CliRunner().invoke(main, ["bench", "model", "--help"])
    assert result.exit_code == 0, result.output
    assert "--preset" in result.output and "--json" in result.output


def test_bench_inputs_follow_the_model_contract():
    inputs, feats, labels = make_inputs(1, 2, ModelParams())
    assert inputs["frames"].shape == (1, 2, 3, 224, 224, 3)
    assert inputs["pose"].shape == (1, 2, 3, 2, 256, 68) and inputs["absent"].dtype.is_floating_point is False
    assert feats["masks"].shape == (1, 2, 256, 256) and labels.shape == (1, 2, 21)


STAND_IN = '''import argparse, json, os, sys
ap = argparse.ArgumentParser()
for a in ("--repo", "--batch", "--sources", "--steps", "--threads"):
    ap.add_argument(a)
ap.add_argument("--json", action="store_true")
a = ap.parse_args()
if a.repo.endswith("broken"):
    print("Traceback ...", file=sys.stderr)
    print("ModuleNotFoundError: No module named 'tribert'", file=sys.stderr)
    sys.exit(1)
print("official chatter", file=sys.stderr)
open(__file__ + ".argv.json", "w").write(json.dumps(vars(a)))
open(__file__ + ".malloc", "w").write(os.environ.get("GLIBC_TUNABLES", ""))
print(json.dumps({"params": 274522654, "params_match": True, "step_forward_s": 1.0,
                  "step_backward_s": 2.0, "step_optimizer_s": 0.5, "step_total_s": 3.5,
                  "step_cpu_s": 7.0, "peak_rss_mb": 10.0}))
'''


def test_against_official_times_it_in_the_same_run_and_prints_the_ratio(tmp_path):
    """The official step runs through its script (here a local stand-in for official_step.py
    and the clone, which CI does not have) with this run's settings; the ratio is its step
    over the preset's."""
    import json

    script = tmp_path / "official_step.py"
    script.write_text(STAND_IN)
    repo = tmp_path / "TriBERT"
    repo.mkdir()
    args = ["bench", "model", "--preset", "tiny", "--batch", "1", "--steps", "1",
            "--threads", "1", "--json", "--against-official", str(repo),
            "--official-script", str(script)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["official.step_total_s"] == 3.5 and figures["official.params_match"] is True
    assert figures["official_over_tiny"] == 3.5 / figures["tiny.step_total_s"]
    ran = json.loads((tmp_path / "official_step.py.argv.json").read_text())
    assert ran == {"repo": str(repo.resolve()), "batch": "1", "sources": "2", "steps": "1",
                   "threads": "1", "json": True}
    # the same allocator as this project's processes (pipeline/malloc.py), said in the figures
    from pipeline import malloc
    assert figures["malloc"] == malloc.keep_freed_memory()
    tunables = (tmp_path / "official_step.py.malloc").read_text()
    assert (malloc.TUNABLES in tunables) == (figures["malloc"] == "keep-freed")

    # rounds: each side measured again in the other order; the ratio is of the medians
    result = CliRunner().invoke(main, args + ["--rounds", "2"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    tiny = json.loads(figures["tiny.step_total_s_all"])
    assert json.loads(figures["official.step_total_s_all"]) == [3.5, 3.5] and len(tiny) == 2
    assert figures["tiny.step_total_s"] == pytest.approx(sum(tiny) / 2, abs=1e-3)
    assert figures["official_over_tiny"] == pytest.approx(3.5 / figures["tiny.step_total_s"])
    assert json.loads(figures["official_over_tiny_all"]) == pytest.approx(
        [3.5 / t for t in tiny], rel=1e-2)

    broken = tmp_path / "broken"
    broken.mkdir()
    args[args.index(str(repo))] = str(broken)
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "the official step failed: ModuleNotFoundError" in result.output


def test_bench_model_runs_each_preset_in_the_memory_format_asked():
    """--memory-format: keep (as built), one layout for every network, or auto (measured per
    network); the figures say which layouts the step ran in."""
    import json

    from model import layout

    for fmt in ("channels_last", "auto"):
        result = CliRunner().invoke(main, ["bench", "model", "--preset", "tiny", "--batch", "1",
                                           "--steps", "1", "--threads", "1", "--json",
                                           "--memory-format", fmt])
        assert result.exit_code == 0, result.output
        figures = json.loads(result.output)
        ran = json.loads(figures["tiny.memory_format"])
        assert set(ran) == {"visual", "audio_embedding.vggish", "unet"}
        assert set(ran.values()) <= set(layout.FORMATS)
        if fmt != "auto":
            assert set(ran.values()) == {fmt}


def test_the_official_script_is_looked_for_beside_the_checkout(monkeypatch):
    """Default --official-script: ../shared/bench/official_step.py of the repository root
    (TRIBERT_SHARED overrides the shared folder)."""
    import importlib
    import os

    from support import ROOT

    import pipeline.train.bench as bench

    if "TRIBERT_SHARED" in os.environ:
        monkeypatch.delenv("TRIBERT_SHARED")
    assert importlib.reload(bench).DEFAULT_OFFICIAL_SCRIPT == (
        ROOT.parent / "shared" / "bench" / "official_step.py")
    monkeypatch.setenv("TRIBERT_SHARED", "/elsewhere")
    assert str(importlib.reload(bench).DEFAULT_OFFICIAL_SCRIPT) == "/elsewhere/bench/official_step.py"
    monkeypatch.delenv("TRIBERT_SHARED")
    importlib.reload(bench)
