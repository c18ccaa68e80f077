"""Bad input to the stages and commands is refused before any work with one line naming the
file (issue 12, item 7): damaged shards in train/evaluate/embed, an unreadable training state,
random/text/empty ``.pt`` files wherever a model is loaded, an ``--out`` under an existing file,
a missing manifest, keypoints that belong to another video. Each runs the real command
(click's runner) and checks the exit code, the message and that no exception escaped."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from model import checkpoint
from pipeline.atomic import write_torch

from support import merge_params

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"model": {"preset": "tiny", "image_size": 32, "unet_depth": 3, "layers": 1},
         "train": {"epochs": 1, "batch_size": 2, "steps_per_epoch": 1, "val_mixtures": 2}}


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    path.write_text(yaml.safe_dump(merge_params(base, SMALL), sort_keys=False))
    return path


def refused(command, args, *names) -> str:
    """Run ``command``; it must exit 1 with one ``Error:`` line naming every one of ``names``
    and no exception other than click's exit."""
    res = CliRunner().invoke(command, [str(a) for a in args])
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    assert "Traceback" not in res.output
    for name in names:
        assert str(name) in errors[0], errors[0]
    return errors[0]


def damage(path: Path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "not_hdf5":
        path.write_text("this is not an HDF5 file\n")
    else:   # truncated: the first 60% of its bytes, as a copy cut short leaves it
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * 0.6)])


@pytest.fixture()
def bad_clips(clip_dir, tmp_path, request):
    d = tmp_path / "clips"
    shutil.copytree(clip_dir, d)
    shard = sorted(d.glob("shard-*.h5"))[-1]
    damage(shard, request.param)
    return d, shard


HOWS = ["empty", "not_hdf5", "truncated"]


@pytest.mark.parametrize("bad_clips", HOWS, indirect=True)
def test_train_names_a_damaged_clip_shard(bad_clips, pose_dir, params, tmp_path):
    from stages.train import main

    clips, shard = bad_clips
    msg = refused(main, ["--params", params, "--clips", clips, "--pose", pose_dir,
                         "--out", tmp_path / "m.pt", "--checkpoint", tmp_path / "last.pt",
                         "--live", tmp_path / "live", "--plots", tmp_path / "plots"], shard)
    assert "damaged clip shard" in msg
    assert not (tmp_path / "live").exists()     # refused before any work


@pytest.mark.parametrize("bad_clips", HOWS, indirect=True)
def test_evaluate_and_embed_name_a_damaged_clip_shard(bad_clips, pose_dir, params, tmp_path):
    from stages.embed import main as embed
    from stages.evaluate import main as evaluate

    clips, shard = bad_clips
    from model.build import build_model
    from pipeline.schema import ModelParams

    package = tmp_path / "tribert.pt"
    write_torch(package, checkpoint.package(build_model(ModelParams(**SMALL["model"]))))
    refused(evaluate, ["--params", params, "--model", package, "--clips", clips, "--pose",
                       pose_dir, "--out", tmp_path / "ev", "--no-progress"], shard)
    refused(embed, ["--params", params, "--model", package, "--clips", clips, "--pose",
                    pose_dir, "--out", tmp_path / "emb", "--no-progress"], shard)


def test_train_names_a_damaged_pose_shard(clip_dir, pose_dir, params, tmp_path):
    from stages.train import main

    pose = tmp_path / "pose"
    shutil.copytree(pose_dir, pose)
    shard = sorted(pose.glob("shard-*.h5"))[0]
    damage(shard, "truncated")
    msg = refused(main, ["--params", params, "--clips", clip_dir, "--pose", pose,
                         "--out", tmp_path / "m.pt", "--checkpoint", tmp_path / "last.pt",
                         "--live", tmp_path / "live", "--plots", tmp_path / "plots"], shard)
    assert "damaged pose shard" in msg


def test_pose_shards_without_trajectories_are_named_by_every_stage_that_reads_them(
        clip_dir, pose_dir, params, tmp_path):
    """Pose shards from before ``model.motion`` (no ``trajectory``): train, finetune, evaluate
    and embed each refuse in one line naming the shard, before any work."""
    import h5py

    from model.build import build_model
    from pipeline.schema import ModelParams
    from stages.embed import main as embed
    from stages.evaluate import main as evaluate
    from stages.finetune import main as finetune
    from stages.train import main as train

    pose = tmp_path / "pose"
    shutil.copytree(pose_dir, pose)
    for shard in pose.glob("shard-*.h5"):
        with h5py.File(shard, "r+") as f:
            del f["trajectory"]
    first = sorted(pose.glob("shard-*.h5"))[0]
    model = yaml.safe_load(params.read_text())["model"]
    assert model["motion"] > 0        # the default reads trajectories
    package = tmp_path / "tribert.pt"
    write_torch(package, checkpoint.package(build_model(ModelParams(**model))))
    outs = ["--checkpoint", tmp_path / "last.pt", "--live", tmp_path / "live",
            "--plots", tmp_path / "plots"]
    for command, args in [
            (train, ["--out", tmp_path / "m.pt", *outs]),
            (finetune, ["--pretrained", package, "--out", tmp_path / "m11.pt", *outs]),
            (evaluate, ["--model", package, "--out", tmp_path / "ev", "--no-progress"]),
            (embed, ["--model", package, "--out", tmp_path / "emb", "--no-progress"])]:
        msg = refused(command, ["--params", params, "--clips", clip_dir, "--pose", pose, *args],
                      first)
        assert "trajectory" in msg
    assert not any((tmp_path / d).exists() for d in ("live", "ev", "emb"))


@pytest.mark.parametrize("how", ["empty", "text", "random", "truncated"])
def test_an_unreadable_training_state_is_set_aside_and_training_starts_afresh(
        clip_dir, pose_dir, params, tmp_path, how):
    """checkpoints/last.pt is a persisted DVC output: refusing would fail every later `dvc
    repro`, so it is moved to last.pt.unreadable with a warning and training runs."""
    from stages.train import main

    last = tmp_path / "checkpoints" / "last.pt"
    last.parent.mkdir()
    bad = {"empty": b"", "text": b"epoch 3 of 4\n", "random": os.urandom(4096)}.get(how)
    if bad is None:
        torch.save({"format": "tribert-train-state/1", "model": {"w": torch.zeros(1000)}}, last)
        bad = last.read_bytes()[:-300]
    last.write_bytes(bad)
    res = CliRunner().invoke(main, [str(a) for a in [
        "--params", params, "--clips", clip_dir, "--pose", pose_dir, "--out", tmp_path / "m.pt",
        "--checkpoint", last, "--live", tmp_path / "live", "--plots", tmp_path / "plots"]])
    assert res.exit_code == 0, (res.output, res.stderr, res.exception)
    warning = [line for line in res.stderr.splitlines() if "moved to" in line]
    assert len(warning) == 1 and str(last) in warning[0] and "starts afresh" in warning[0]
    assert (tmp_path / "checkpoints" / "last.pt.unreadable").read_bytes() == bad
    assert checkpoint.is_training_state(checkpoint.read(last, "state"))   # a new, sound state
    assert type(checkpoint.load(tmp_path / "m.pt")).__name__ == "TriBERT"


@pytest.mark.parametrize("how", ["empty", "text", "random", "pickle_with_code"])
def test_a_bad_model_file_is_one_line_naming_it_everywhere_a_model_is_loaded(
        clip_dir, pose_dir, params, tmp_path, how):
    bad = tmp_path / f"{how}.pt"
    if how == "pickle_with_code":
        torch.save({"fn": print}, bad)     # a pickle that would import and call something
    else:
        bad.write_bytes({"empty": b"", "text": b"hello\n", "random": os.urandom(4096)}[how])
    for loader in (checkpoint.load, lambda p: checkpoint.read(p, "backbone weights")):
        with pytest.raises(ValueError) as e:
            loader(bad)
        line = str(e.value)
        assert line.startswith(f"{bad}: cannot read") and "\n" not in line
        assert "weights_only" not in line
    from pipeline.pose.stgcn import load_checkpoint
    with pytest.raises(ValueError) as e:
        load_checkpoint(bad)
    assert str(e.value).startswith(f"{bad}: ") and "\n" not in str(e.value)
    assert "weights_only" not in str(e.value)
    from stages.embed import main as embed
    from stages.evaluate import main as evaluate
    from stages.finetune import main as finetune
    from stages.train import main as train
    weights = tmp_path / "params.yaml"
    edited = yaml.safe_load(params.read_text())
    edited["model"]["backbone_weights"] = str(bad)
    weights.write_text(yaml.safe_dump(edited, sort_keys=False))
    refused(train, ["--params", weights, "--clips", clip_dir, "--pose", pose_dir,
                    "--out", tmp_path / "m.pt", "--checkpoint", tmp_path / "last.pt",
                    "--live", tmp_path / "live", "--plots", tmp_path / "plots"], bad)
    msg = refused(evaluate, ["--params", params, "--model", bad, "--clips", clip_dir,
                             "--pose", pose_dir, "--out", tmp_path / "ev", "--no-progress"], bad)
    assert "weights_only" not in msg
    refused(finetune, ["--params", params, "--pretrained", bad, "--clips", clip_dir,
                       "--pose", pose_dir, "--out", tmp_path / "ft.pt", "--checkpoint",
                       tmp_path / "ft_last.pt", "--live", tmp_path / "l", "--plots",
                       tmp_path / "p"], bad)


def test_out_under_an_existing_file_is_refused_before_any_work(clip_dir, pose_dir, params,
                                                              tmp_path):
    from stages.probe import main as probe
    from stages.train import main as train

    blocker = tmp_path / "results"
    blocker.write_text("a file where a folder should be\n")
    msg = refused(train, ["--params", params, "--clips", clip_dir, "--pose", pose_dir,
                          "--out", blocker / "m.pt", "--checkpoint", tmp_path / "last.pt",
                          "--live", tmp_path / "live", "--plots", tmp_path / "plots"],
                  blocker / "m.pt")
    assert f"{blocker} is a file" in msg
    refused(probe, ["--params", params, "--embeddings", tmp_path, "--out", blocker / "probe"],
            blocker)
    assert not (tmp_path / "live").exists()


def test_a_missing_manifest_is_named_by_every_stage_that_reads_it(params, tmp_path):
    from stages.decode import main as decode
    from stages.keypoints import main as keypoints
    from stages.stgcn_train import main as stgcn_train

    missing = tmp_path / "raw" / "manifest.csv"
    for stage, extra in ((decode, ["--out", tmp_path / "clips"]),
                         (keypoints, ["--out", tmp_path / "kp"]),
                         (stgcn_train, ["--keypoints", tmp_path / "kp", "--model",
                                        tmp_path / "st.pt", "--metrics", tmp_path / "m.json"])):
        msg = refused(stage, ["--params", params, "--manifest", missing, *extra], missing)
        assert "no such manifest" in msg
    assert not (tmp_path / "clips").exists()
