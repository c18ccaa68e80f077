"""End to end: `dvc repro` of the real dvc.yaml on a tiny configuration, in a copy of the
project, with real DVC, ffmpeg, fluidsynth and HDF5. Then a second `dvc repro` must do nothing,
and a param edit must re-run only the stages that read it (a train key: no preprocessing
stage)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support import ROOT, merge_params, require_tools

pytestmark = pytest.mark.slow

# A configuration small enough for CI; every stage of dvc.yaml runs on it. All four classes
# are in the 11-class MUSIC set, so the finetune stage has val videos too.
TINY = {
    "executor": {"jobs": 2},
    "data": {"synthetic": {"classes": ["violin", "tuba", "flute", "xylophone"],
                           "videos_per_class": 2, "duets": 2, "duration": 8.0},
             "split": {"val": 0.2, "test": 0.2}},
    "stgcn": {"epochs": 1, "window": 16},
    "pose_features": {"context": 16},
    "train": {"epochs": 2, "batch_size": 4},
    "finetune": {"epochs": 1},
    "probe": {"repeats": 1, "epochs": 30},
    "evaluate": {"mixtures": 0, "multi_mixtures": 0},   # each test clip once (default: 300/120)
}

_ANYWHERE = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", "*.egg-info")
# run outputs: ignored at the top only (pipeline/data is code)
_TOP = {"data", "models", "results", "checkpoints", "dvclive", "tmp"}


# DVC's own state in the developer's checkout (its cache, and its queue of experiments, which
# names commits of that checkout's git) is not part of the project: the copy starts without it
_DVC_STATE = {"cache", "tmp"}


def IGNORE(directory, names):
    here = Path(directory).resolve()
    top = _TOP if here == ROOT.resolve() else set()
    state = _DVC_STATE if here == (ROOT / ".dvc").resolve() else set()
    return set(_ANYWHERE(directory, names)) | {n for n in names if n in top | state}


def _dvc(args, cwd: Path, env) -> subprocess.CompletedProcess:
    dvc = Path(sys.executable).with_name("dvc")
    return subprocess.run([str(dvc), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1800)


@pytest.fixture(scope="module")
def project(root, tmp_path_factory):
    require_tools("ffmpeg", "ffprobe", "git")
    work = tmp_path_factory.mktemp("e2e") / "tribert"
    shutil.copytree(root, work, ignore=IGNORE)
    params = yaml.safe_load((work / "params.yaml").read_text())
    (work / "params.yaml").write_text(yaml.safe_dump(merge_params(params, TINY), sort_keys=False))
    env = dict(os.environ, DVC_NO_ANALYTICS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=work, check=True, env=env)
    run = _dvc(["repro"], work, env)
    assert run.returncode == 0, f"dvc repro failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return work, env


def test_repro_makes_every_declared_output(project):
    work, env = project
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            assert (work / path).exists(), f"stage {name} did not make {path}"
    rows = (work / "data/raw/manifest.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 * 2 + 2


def test_every_video_lies_whole_in_one_split(project):
    """The shards' split column against the manifest: no video ID in two splits (duets
    included), none in a split the manifest did not give it."""
    from pipeline.data import manifest, shards
    from support import split_violations

    work, _ = project
    assert split_violations(work / "data/raw/manifest.csv", work / "data/clips") == []
    kinds = {r.video_id: r.kind for r in manifest.read(work / "data/raw/manifest.csv")}
    ids = {v for p in shards.list_shards(work / "data/clips")
           for v in shards.read_index(p, ("video_id",))["video_id"]}
    assert any(kinds[v] == "duet" for v in ids), "no duet reached the shards"


def test_second_repro_is_a_no_op(project):
    work, env = project
    status = _dvc(["status"], work, env)
    assert status.returncode == 0
    assert "changed" not in status.stdout, status.stdout


def test_the_evaluation_stages_write_their_tables(project):
    import json
    import math

    work, _ = project
    table = json.loads((work / "results/evaluate/metrics.json").read_text())
    assert set(table) == {"single", "multi"}
    scored = [s for s in table.values() if s["mixtures"] > 0]
    assert scored and all(math.isfinite(s["sdr"]) and math.isfinite(s["sdr_mix"]) for s in scored)
    for s in scored:
        # bounds a broken pipeline fails: a two-source mixture scored against one source is
        # near 0 dB (an unscaled or mismatched reference, a silent or swapped source is not);
        # the model's estimates are neither silent (very negative) nor the references (huge)
        assert -10.0 < s["sdr_mix"] < 10.0, s
        assert -20.0 < s["sdr"] < 40.0, s
        # the masks are not constant: the ratio masks' estimates are not the mixture (the
        # default normalised masks of a model trained 2 epochs are about 1/2 and 1/2, half the
        # mixture, whose SDR is the mixture's)
        assert s["ratio"]["sdr"] != pytest.approx(s["sdr_mix"], abs=1e-3), \
            "estimates equal the mixture"
    assert (work / "results/evaluate/examples/index.html").is_file()
    retrieval = json.loads((work / "results/retrieval/metrics.json").read_text())
    assert set(retrieval["audio->vision"]) == {"transformer", "erased", "input"}
    probe = json.loads((work / "results/probe/metrics.json").read_text())
    assert probe, "the probe wrote no figures"


def test_a_param_edit_marks_only_the_stages_that_read_it(project):
    work, env = project
    params = yaml.safe_load((work / "params.yaml").read_text())
    edited = merge_params(params, {"train": {"grad_clip": params["train"]["grad_clip"] + 0.5}})
    original = (work / "params.yaml").read_text()
    (work / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    try:
        status = _dvc(["status"], work, env)
    finally:
        (work / "params.yaml").write_text(original)
    changed = [line.rstrip(":") for line in status.stdout.splitlines()
               if line and not line.startswith((" ", "\t"))]
    # train and finetune read the train section; no stage before them may re-run
    assert sorted(changed) == ["finetune", "train"], status.stdout
    assert not {"acquire", "decode", "keypoints", "stgcn_train", "pose_features"} & set(changed)


def test_a_comparison_runs_as_a_dvc_experiment(project):
    """scripts/experiments.sh itself, for one variant: the baseline experiment, then the pose
    stream erased, re-trained and evaluated from DVC's queue in a temporary copy that reuses
    the baseline's data (no stage before train runs again) and is waited for before the table is
    printed; the workspace and git's index are left as they were."""
    import csv
    import io
    import json
    import math

    work, env = project
    run = subprocess.run(["bash", "scripts/experiments.sh"], cwd=work, capture_output=True,
                         text=True, timeout=1800,
                         env=dict(env, ONLY="erase-pose", SUFFIX="-t", POLL="1"))
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    shown = _dvc(["exp", "show", "--csv"], work, env)
    rows = {r["Experiment"]: r for r in csv.DictReader(io.StringIO(shown.stdout))}
    assert {"tribert-t", "erase-pose-t"} <= set(rows), shown.stdout
    assert rows["erase-pose-t"]["model.erase"] == "pose"
    # the script returned after the queued run had finished: its metrics are in the table
    key = next(k for k in rows["erase-pose-t"] if k.endswith("metrics.json:single.sdr"))
    assert math.isfinite(float(rows["erase-pose-t"][key])), rows["erase-pose-t"]
    # the same fixed test mixtures: the mixture baseline is the workspace's, the model's is new
    baseline = json.loads((work / "results/evaluate/metrics.json").read_text())["single"]
    key = next(k for k in rows["erase-pose-t"] if k.endswith("metrics.json:single.sdr_mix"))
    assert float(rows["erase-pose-t"][key]) == pytest.approx(baseline["sdr_mix"], abs=1e-3)
    # the queued copy took the baseline's data instead of making it again
    logs = _dvc(["queue", "logs", "erase-pose-t"], work, env).stdout
    assert "Running stage 'train'" in logs, logs[-3000:]
    for stage in ("acquire", "decode", "keypoints", "stgcn_train", "pose_features"):
        assert f"Running stage '{stage}'" not in logs, logs[-3000:]
    assert "changed" not in _dvc(["status"], work, env).stdout   # the workspace is untouched
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=work,
                            capture_output=True, text=True, check=True).stdout
    assert staged == "", staged
