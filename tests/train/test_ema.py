"""The weight average of ``train.ema`` (pipeline/train/ema.py): its arithmetic, and that the
training loop validates and keeps it without letting it change what is trained."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.train import distrib
from pipeline.train.ema import WeightAverage
from pipeline.train.solver import Paths, Solver
from toy import ToyData, ToyTask, record_validated, settings, toy_model

torch.set_num_threads(1)
WORLD = distrib.World(0, 1, torch.device("cpu"))


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def solver(path, task=None, **kw):
    torch.manual_seed(0)
    data = ToyData()
    return Solver(task or ToyTask(data), toy_model(), data, settings(**kw),
                  Paths(path / "last.pt", path / "best.pt", path / "dvclive", path / "plots"),
                  WORLD, fingerprint="toy", log=lambda m: None)


def test_the_average_follows_the_ramped_decay_and_the_batchnorm_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    avg = WeightAverage(model, decay=0.99)
    w0 = weights(model)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()
    model(torch.randn(8, 3))                      # moves the running statistics, counts a batch
    w1 = weights(model)
    avg.update(model)                             # step 0: decay min(0.99, 1/10) = 0.1
    got = weights(avg.model)
    for k in ("0.weight", "0.bias", "1.running_mean", "1.running_var"):
        assert torch.allclose(got[k], 0.1 * w0[k] + 0.9 * w1[k]), k
    assert int(got["1.num_batches_tracked"]) == 1  # integers are copied, not averaged
    assert avg.decay_at(10_000) == 0.99 and avg.decay_at(0) == pytest.approx(0.1)
    assert not any(p.requires_grad for p in avg.model.parameters())


def test_a_decay_outside_zero_one_and_a_different_model_are_refused():
    with pytest.raises(ValueError, match="train.ema"):
        WeightAverage(nn.Linear(2, 2), 1.0)
    avg = WeightAverage(nn.Linear(2, 2), 0.9)
    with pytest.raises(ValueError, match="not the model's"):
        avg.update(nn.Linear(2, 3, bias=False))


def test_validation_and_the_model_file_get_the_average_and_training_is_unchanged(tmp_path):
    plain = solver(tmp_path / "plain", epochs=3)
    plain.run()
    task = ToyTask(ToyData())
    seen = record_validated(task)
    averaged = solver(tmp_path / "avg", task=task, epochs=3, ema=0.9)
    averaged.run()
    # the trained weights and every loss are those of the run without the average
    a, b = weights(plain.model), weights(averaged.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert averaged.state.step_losses == plain.state.step_losses
    # what was validated at the end is the average, not the trained weights
    final = weights(averaged.ema.model)
    assert all(torch.equal(seen[-1][k], final[k]) for k in final)
    assert not all(torch.equal(final[k], b[k]) for k in b)
    # the model file holds the validated weights of the best epoch
    best = torch.load(tmp_path / "avg" / "best.pt", weights_only=True)["state_dict"]
    chosen = seen[averaged.state.best_epoch - 1]
    assert all(torch.equal(best[k], chosen[k]) for k in chosen)


def test_an_interrupted_run_resumes_its_average(tmp_path):
    full = solver(tmp_path / "full", epochs=2, checkpoint_every=2, ema=0.9)
    full.run()
    first = solver(tmp_path / "cut", epochs=2, checkpoint_every=2, ema=0.9)
    first.run(max_steps=7)
    second = solver(tmp_path / "cut", epochs=2, checkpoint_every=2, ema=0.9)
    second.run()
    assert second.ema.updates == full.ema.updates == full.state.global_step
    a, b = weights(full.ema.model), weights(second.ema.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
