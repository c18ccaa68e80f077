"""The training loop on a small real task: exact resume, NaN guard, best-on-val selection."""
from __future__ import annotations

import math

import pytest
import torch

from model import distrib
from model.solver import NonFiniteLoss, Paths, Solver
from toy import ToyData, ToyTask, settings, toy_model

torch.set_num_threads(1)
WORLD = distrib.World(0, 1, torch.device("cpu"))


def paths(tmp_path):
    return Paths(tmp_path / "checkpoints" / "last.pt", tmp_path / "models" / "best.pt",
                 tmp_path / "dvclive", tmp_path / "plots")


def solver(tmp_path, task=None, **kw):
    torch.manual_seed(0)  # the model's initial weights (overwritten when resuming)
    data = ToyData()
    task = task or ToyTask(data)
    return Solver(task, toy_model(), data, settings(**kw), paths(tmp_path), WORLD,
                  fingerprint="toy", log=lambda m: None)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    full = solver(tmp_path / "a", checkpoint_every=2)
    full.run()
    # 48 samples / batch 4 = 12 steps per epoch; stop mid-epoch 1, then in epoch 2
    first = solver(tmp_path / "b", checkpoint_every=2)
    first.run(max_steps=5)
    assert first.state.global_step == 5
    second = solver(tmp_path / "b", checkpoint_every=2)
    second.run(max_steps=10)
    assert second.state.global_step == 15 and second.state.epoch == 1
    third = solver(tmp_path / "b", checkpoint_every=2)
    third.run()
    assert third.state.global_step == full.state.global_step == 24
    a, b = weights(full.model), weights(third.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert third.state.step_losses == full.state.step_losses
    assert (tmp_path / "b" / "dvclive" / "metrics.json").exists()
    assert (tmp_path / "b" / "plots" / "loss.png").stat().st_size > 1000


def test_finished_or_foreign_checkpoint_is_not_resumed(tmp_path):
    solver(tmp_path, epochs=1).run()
    again = solver(tmp_path, epochs=1)
    assert not again.try_resume()          # finished: a rerun starts afresh
    solver(tmp_path, epochs=2).run(max_steps=3)
    other = Solver(ToyTask(ToyData()), toy_model(), ToyData(), settings(epochs=2),
                   paths(tmp_path), WORLD, fingerprint="another", log=lambda m: None)
    assert not other.try_resume()


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    task = ToyTask(ToyData(), nan_at_call=8)
    s = solver(tmp_path, task=task, checkpoint_every=3)
    with pytest.raises(NonFiniteLoss, match="loss is nan"):
        s.run()
    ck = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert ck["global_step"] == 6
    assert all(torch.isfinite(v).all() for v in ck["model"]["state_dict"].values())
    assert all(math.isfinite(x) for x in ck["step_losses"])


def test_best_model_is_the_epoch_with_the_best_val_sdr(tmp_path):
    task = ToyTask(ToyData(), val_sdr=[1.0, 3.0, 2.0])
    s = solver(tmp_path, task=task, epochs=3, steps_per_epoch=2)
    snapshots = []
    original = task.validate

    def validate(model, device):
        snapshots.append(weights(model))
        return original(model, device)

    task.validate = validate
    s.run()
    best = torch.load(tmp_path / "models" / "best.pt", weights_only=True)
    assert s.state.best_epoch == 2 and s.state.best_sdr == 3.0
    assert all(torch.equal(best["state_dict"][k], snapshots[1][k]) for k in snapshots[1])
    assert not all(torch.equal(best["state_dict"][k], snapshots[2][k]) for k in snapshots[2])
    assert [h["val/sdr"] for h in s.state.history] == [1.0, 3.0, 2.0]
