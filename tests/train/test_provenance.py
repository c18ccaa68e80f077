"""What made a result (issue 12, item 12): the train stage stores a provenance record in the
model package and beside its metrics; ``tribert inspect MODEL.pt`` prints a model card from it
with the val figures and, when they exist, the test figures and whether they were measured on
this very model file; dvc.yaml declares a provenance.json beside every metrics file."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from model import checkpoint
from pipeline import provenance
from pipeline.cli import main as tribert

from support import merge_params

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"model": {"preset": "tiny", "image_size": 32, "unet_depth": 3, "layers": 1},
         "train": {"epochs": 1, "batch_size": 2, "steps_per_epoch": 1, "val_mixtures": 2,
                   "seed": 3}}


@pytest.fixture(scope="module")
def trained(clip_dir, pose_dir, tmp_path_factory):
    """One real run of the train stage (one step) on the small shards."""
    from stages.train import main

    tmp = tmp_path_factory.mktemp("prov")
    params = tmp / "params.yaml"
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.write_text(yaml.safe_dump(merge_params(base, SMALL), sort_keys=False))
    res = CliRunner().invoke(main, [str(a) for a in [
        "--params", params, "--clips", clip_dir, "--pose", pose_dir, "--out", tmp / "m.pt",
        "--checkpoint", tmp / "last.pt", "--live", tmp / "live", "--plots", tmp / "plots"]])
    assert res.exit_code == 0, (res.output, res.exception)
    return tmp


def test_the_model_package_says_what_made_it(trained, clip_dir, pose_dir):
    pkg = torch.load(trained / "m.pt", weights_only=True)
    rec = pkg["provenance"]
    assert rec["stage"] == "train" and rec["seed"] == 3 and rec["wall_s"] > 0
    assert re.fullmatch(r"[0-9a-f]{40}", rec["git"]["commit"])
    assert isinstance(rec["git"]["dirty"], bool)
    # resolved params of the stage and of every stage upstream of it in dvc.yaml
    assert rec["params"]["train"]["lr"] == 1e-3 and rec["params"]["train"]["batch_size"] == 2
    assert {"model", "decode", "keypoints", "stgcn", "pose_features", "data"} <= set(rec["params"])
    inputs = rec["data"]["inputs"]
    assert inputs[Path(clip_dir).as_posix()]["files"] == 2
    assert inputs[Path(pose_dir).as_posix()]["sha256"] == provenance.fingerprint(
        [pose_dir])["inputs"][Path(pose_dir).as_posix()]["sha256"]
    assert all(rec["libraries"][k] for k in ("torch", "numpy", "h5py", "librosa", "dvc"))
    m = rec["machine"]
    assert m["device"] == "cpu" and m["cpu"]["model"] and isinstance(m["cpu"]["isa"], list)
    assert m["threads"]["torch"] == torch.get_num_threads()
    assert rec["val"]["epoch"] == 1 and "sdr" in rec["val"]
    # the same record beside the dvclive metrics; the weights load as before
    assert json.loads((trained / "live" / "provenance.json").read_text()) == rec
    assert type(checkpoint.load(trained / "m.pt")).__name__ == "TriBERT"


def test_the_data_fingerprint_changes_with_one_byte_of_the_data(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "shard-0000.h5").write_bytes(b"abc")
    before = provenance.fingerprint([tmp_path / "d"])["sha256"]
    (tmp_path / "d" / "shard-0000.h5").write_bytes(b"abd")
    assert provenance.fingerprint([tmp_path / "d"])["sha256"] != before


def test_inspect_prints_a_model_card(trained, tmp_path):
    model = checkpoint.load(trained / "m.pt")
    count = sum(p.numel() for p in model.parameters())
    rec = torch.load(trained / "m.pt", weights_only=True)["provenance"]
    metrics = tmp_path / "evaluate" / "metrics.json"
    res = CliRunner().invoke(tribert, ["inspect", str(trained / "m.pt"), "--metrics",
                                       str(metrics)])
    assert res.exit_code == 0, res.output
    card = res.output
    assert f"parameters   {count:,}" in card
    assert f"git {rec['git']['commit'][:12]}" in card
    assert "stage train" in card and f"sdr {rec['val']['sdr']:.4g}" in card
    assert provenance.cpu_info()["model"] in card and "seed         3" in card
    assert "test         no figures" in card
    # test figures measured on this file, then on another one
    metrics.parent.mkdir()
    metrics.write_text(json.dumps({"single": {"mixtures": 4, "skipped": 0, "sdr": 1.25}}))
    provenance.write(metrics.parent, provenance.collect("evaluate", inputs=[trained / "m.pt"]))
    card = CliRunner().invoke(tribert, ["inspect", str(trained / "m.pt"), "--metrics",
                                        str(metrics)]).output
    assert "(measured on this model file)" in card and "single     mixtures 4, skipped 0, sdr 1.25" in card
    other = tmp_path / "other.pt"
    other.write_bytes(b"another model")
    provenance.write(metrics.parent, provenance.collect("evaluate", inputs=[other]))
    card = CliRunner().invoke(tribert, ["inspect", str(trained / "m.pt"), "--metrics",
                                        str(metrics)]).output
    assert "WARNING: measured on another model file" in card


def test_inspect_of_a_training_state_and_of_a_bad_file(trained, tmp_path):
    card = CliRunner().invoke(tribert, ["inspect", str(trained / "last.pt")]).output
    assert "training state holding a TriBERT model package" in card
    assert "val          epoch 1" in card
    bad = tmp_path / "bad.pt"
    bad.write_text("not a model\n")
    res = CliRunner().invoke(tribert, ["inspect", str(bad)])
    assert res.exit_code == 1 and res.output.strip() == (
        f"Error: {bad}: cannot read model package: not a PyTorch file")


def test_dvc_yaml_declares_a_provenance_record_beside_every_metrics_file():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    names = lambda items: [next(iter(i)) if isinstance(i, dict) else i for i in items or []]  # noqa: E731
    for name, stage in stages.items():
        outs = names(stage.get("outs"))
        for metrics in names(stage.get("metrics")):
            want = (Path(metrics).parent / "provenance.json").as_posix()
            assert want in outs, f"stage {name}: {want} not declared"


def test_an_stgcn_checkpoint_with_its_record_gets_a_card(tmp_path):
    """models/stgcn.pt (its stage attaches the record the same way): the card shows its val
    accuracy."""
    from pipeline.pose.stgcn import STGCN, save_checkpoint

    save_checkpoint(STGCN(width=0.0625).eval(), tmp_path / "stgcn.pt",
                    {"classes": ["a"], "window": 16, "metrics": {"val_accuracy": 0.5}})
    provenance.attach(tmp_path / "stgcn.pt", provenance.collect("stgcn_train", seed=7))
    card = CliRunner().invoke(tribert, ["inspect", str(tmp_path / "stgcn.pt")]).output
    assert "STGCN model package" in card and "stage stgcn_train" in card
    assert "val          val_accuracy 0.5" in card and "seed         7" in card


def test_dirty_means_code_or_config_changed_not_the_pipeline_outputs(tmp_path):
    """A running `dvc repro` rewrites dvc.lock and git-tracked results; a later stage's record
    must not call the tree dirty for that, but must for an edited source or params file."""
    import subprocess

    from support import require_tools

    require_tools("git")
    for name in ("code.py", "params.yaml", "dvc.lock", "results/m/metrics.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a],  # noqa: E731
                                    cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "x")
    outputs = ["dvc.lock", "results/m/metrics.json"]
    for name in outputs:
        (tmp_path / name).write_text("2\n")
    state = provenance.git_state(tmp_path, ignore=outputs)
    assert re.fullmatch(r"[0-9a-f]{40}", state["commit"]) and state["dirty"] is False
    (tmp_path / "params.yaml").write_text("2\n")
    state = provenance.git_state(tmp_path, ignore=outputs)
    assert state["dirty"] is True and state["changed"] == ["params.yaml"]
    assert provenance.git_state(tmp_path / "results") is not None     # inside the checkout
    assert provenance.git_state(Path("/")) is None                     # outside any checkout
