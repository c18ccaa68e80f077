"""`tribert bench train --json` prints one JSON object with the throughput figures."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main


def one_step_bench(clip_dir, variants: str) -> dict:
    """`tribert bench train --json`: one tiny step at batch 2 without pose per variant."""
    res = CliRunner().invoke(main, ["bench", "train", "--clips", str(clip_dir), "--pose", "",
                                    "--presets", "tiny", "--steps", "1", "--batch", "2",
                                    "--memory-formats", variants, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output.strip().splitlines()[-1])


def test_bench_train_json_on_real_shards(clip_dir):
    figures = one_step_bench(clip_dir, "keep")
    assert figures["tiny.samples_per_s"] > 0
    assert 0 <= figures["tiny.data_wait_share"] < 1
    assert figures["pose"] is False
    assert figures["bench"] == "train"


def test_bench_train_times_the_built_and_the_measured_layouts_in_one_run(clip_dir):
    """`keep` (the layouts as built) and `auto` (model.layout's measured choice, what train
    uses) one after the other, with their ratio and the layout each ran in."""
    from model import layout

    figures = one_step_bench(clip_dir, "keep,auto")
    auto = json.loads(figures["tiny.auto.memory_format"])
    keep = json.loads(figures["tiny.keep.memory_format"])
    assert set(auto) == set(keep) == {"visual", "audio_embedding.vggish", "unet"}
    assert set(auto.values()) <= set(layout.FORMATS)
    assert keep["unet"] == "contiguous" and keep["visual"] == "channels_last"
    assert figures["tiny.keep_over_auto"] == pytest.approx(
        figures["tiny.keep.step_s"] / figures["tiny.auto.step_s"])
    assert figures["tiny.step_s"] == figures["tiny.auto.step_s"]
    assert figures["tiny.model"] == "params.yaml"


def test_bench_train_times_bf16_autocast_as_a_variant(clip_dir):
    figures = one_step_bench(clip_dir, "keep,keep+bf16")
    assert figures["tiny.keep_over_keep+bf16"] == pytest.approx(
        figures["tiny.keep.step_s"] / figures["tiny.keep+bf16.step_s"])


@pytest.mark.parametrize("variant", ["keep,nhwc", "auto+fp8"])
def test_bench_train_rejects_an_unknown_variant(clip_dir, variant):
    res = CliRunner().invoke(main, ["bench", "train", "--clips", str(clip_dir),
                                    "--memory-formats", variant])
    assert res.exit_code != 0 and variant.split(",")[-1] in res.output


def test_bench_train_without_shards_says_what_to_run(tmp_path):
    res = CliRunner().invoke(main, ["bench", "train", "--clips", str(tmp_path)])
    assert res.exit_code != 0 and "dvc repro decode" in res.output


def test_every_bench_reports_the_cpu_model_and_instruction_set(clip_dir, capsys):
    """Figures are only comparable on the same machine: the CPU model and its SIMD flags are
    carried in the JSON and printed beside the figures by pipeline.benchmark.report, which every
    ``tribert bench`` command prints through (issue 12, item 12)."""
    from pipeline.benchmark import report
    from pipeline.provenance import cpu_info

    info = cpu_info()
    figures = one_step_bench(clip_dir, "keep")
    assert figures["cpu"] == info["model"] and figures["cpu"] != "unknown"
    assert figures["cpu_isa"] == (" ".join(info["isa"]) or "none")
    assert figures["cpu_count"] == info["cores"] and figures["tiny.samples_per_s"] > 0
    report("x", {"speed": 1.5}, as_json=False, title="bench x")
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines[:2] == ["bench x", "speed 1.5"]
    assert f"cpu {info['model']}" in lines and f"cpu_isa {figures['cpu_isa']}" in lines


def test_every_bench_prints_through_the_one_report():
    """Every bench of the one ``tribert bench`` group prints its figures with
    :func:`pipeline.benchmark.report` under its own name, so every ``--json`` has one shape:
    ``{"bench": name, <figures>..., "cpu", "cpu_isa", "cpu_torch_kernels", "cpu_count"}``."""
    import ast
    import importlib

    from pipeline.tools.bench import BENCHES

    for name, path in BENCHES.items():
        module, _, attr = path.partition(":")
        mod = importlib.import_module(module)
        assert getattr(mod, attr).name == name
        fn = next(n for n in ast.walk(ast.parse(open(mod.__file__).read()))
                  if isinstance(n, ast.FunctionDef) and n.name == attr)
        calls = [c for c in ast.walk(fn) if isinstance(c, ast.Call)
                 and getattr(c.func, "id", None) == "report"]
        assert [c.args[0].value for c in calls] == [name], (name, module)
        assert mod.report.__module__ == "pipeline.benchmark", module


def test_report_json_shape(capsys):
    from pipeline.benchmark import report

    report("x", {"speed": 1.5}, as_json=True)
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) == {"bench", "speed", "cpu", "cpu_isa", "cpu_torch_kernels", "cpu_count"}
    assert figures["bench"] == "x" and figures["speed"] == 1.5


def _in_git_checkout() -> bool:
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                          capture_output=True).returncode == 0


needs_git = pytest.mark.skipif(not _in_git_checkout(), reason="not a git checkout with a commit")


@needs_git
def test_bench_train_against_a_commit_times_both_codes_in_one_run(clip_dir):
    """--against-commit: the other commit's own bench in a temporary worktree and this code's,
    alternately; the ratio is of the two medians, and the worktree is gone afterwards."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    before = subprocess.run(["git", "-C", str(root), "worktree", "list"], capture_output=True,
                            text=True).stdout
    res = CliRunner().invoke(main, ["bench", "train", "--clips", str(clip_dir), "--pose", "",
                                    "--steps", "1", "--batch", "2", "--against-commit", "HEAD",
                                    "--rounds", "2", "--json"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.output.strip().splitlines()[-1])
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert figures["against.commit"] == head and figures["rounds"] == 2
    against, this = (json.loads(figures[k]) for k in ("against.tiny.step_s_all", "tiny.step_s_all"))
    assert len(against) == len(this) == 2 and min(against + this) > 0
    assert figures["against_over_this"] == pytest.approx(
        figures["against.tiny.step_s"] / figures["tiny.step_s"], rel=1e-6)
    assert figures["tiny.step_s"] == pytest.approx(sum(this) / 2, rel=1e-3)
    after = subprocess.run(["git", "-C", str(root), "worktree", "list"], capture_output=True,
                           text=True).stdout
    assert after == before


@needs_git
def test_bench_train_against_an_unknown_commit_names_it(clip_dir):
    res = CliRunner().invoke(main, ["bench", "train", "--clips", str(clip_dir),
                                    "--against-commit", "no-such-rev-123"])
    assert res.exit_code != 0 and "no-such-rev-123" in res.output
