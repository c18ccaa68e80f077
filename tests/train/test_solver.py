"""The training loop on a small real task: exact resume, NaN guard, best-on-val selection."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from pipeline.train import distrib
from pipeline.train.solver import NonFiniteLoss, Paths, Solver
from toy import ToyData, ToyTask, record_validated, settings, toy_model

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


def test_foreign_checkpoint_is_not_resumed(tmp_path):
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
    snapshots = record_validated(task)
    s.run()
    best = torch.load(tmp_path / "models" / "best.pt", weights_only=True)
    assert s.state.best_epoch == 2 and s.state.best_sdr == 3.0
    assert all(torch.equal(best["state_dict"][k], snapshots[1][k]) for k in snapshots[1])
    assert not all(torch.equal(best["state_dict"][k], snapshots[2][k]) for k in snapshots[2])
    assert [h["val/sdr"] for h in s.state.history] == [1.0, 3.0, 2.0]


def _files(*dirs):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for d in dirs
            for p in sorted(d.rglob("*")) if p.is_file()}


def test_a_finished_run_run_again_is_a_no_op(tmp_path):
    """Issue 12 item 2: a second run of a finished configuration started afresh and overwrote
    the model, last.pt, dvclive/ and the plots from epoch 1."""
    solver(tmp_path, epochs=2, steps_per_epoch=3).run()
    outputs = [tmp_path / n for n in ("checkpoints", "models", "dvclive", "plots")]
    before = _files(*outputs)
    again = solver(tmp_path, epochs=2, steps_per_epoch=3)
    state = again.run()
    assert again.finished and state.global_step == 6 and again.timing["steps"] == 0
    assert _files(*outputs) == before                      # not one byte or mtime changed
    # DVC removes non-persistent outputs before it re-runs a stage: they come back, equal
    model = tmp_path / "models" / "best.pt"
    model_bytes = model.read_bytes()
    metrics = (tmp_path / "dvclive" / "metrics.json").read_text()
    for p in (model, tmp_path / "dvclive", tmp_path / "plots"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    solver(tmp_path, epochs=2, steps_per_epoch=3).run()
    assert model.read_bytes() == model_bytes
    assert (tmp_path / "dvclive" / "metrics.json").read_text() == metrics
    assert (tmp_path / "plots" / "loss.png").exists()
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == \
        before[tmp_path / "checkpoints" / "last.pt"][0]


def test_the_best_model_survives_an_interruption_and_its_file_removed(tmp_path):
    """Issue 12 item 1: the best epoch (1 of 4) was only in models/, which DVC deletes before a
    re-run; the resumed run shipped the last weights. The best package travels in last.pt."""
    sdr = [3.0, 1.0, 2.0, 0.5]      # epoch 1 is the best; no later epoch beats it

    def run(path, max_steps=None, scripted=sdr):
        s = solver(path, task=ToyTask(ToyData(), val_sdr=scripted), epochs=4,
                   steps_per_epoch=2)
        s.run(max_steps)
        return s

    full = run(tmp_path / "full")
    first = run(tmp_path / "cut", max_steps=6)               # stopped after epoch 3
    assert first.state.epoch == 3 and first.state.best_epoch == 1
    assert not (tmp_path / "cut" / "models" / "best.pt").exists()
    second = run(tmp_path / "cut", scripted=sdr[3:])
    assert second.state.best_epoch == 1
    a = torch.load(tmp_path / "full" / "models" / "best.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "models" / "best.pt", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    last = weights(second.model)
    assert not all(torch.equal(b["state_dict"][k], last[k]) for k in last)


class ConvToy(torch.nn.Module):
    """The toy regression through a convolution, with a memory format (model.layout)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 1)
        self.head = torch.nn.Linear(24, 2)
        self.memory_format = torch.contiguous_format

    def forward(self, x):
        return self.head(self.conv(x.reshape(-1, 1, 2, 3)).flatten(1))


def test_auto_memory_format_is_measured_once_then_read_from_the_cache(tmp_path, monkeypatch):
    """train.memory_format auto: the first run measures (and logs the step times), a second
    run of the same configuration reads the cached choice; measuring changes no weight and no
    random draw of the run."""
    from pipeline.train import memory_format
    monkeypatch.setattr(memory_format, "STEADY", float("inf"))   # microsecond steps: unsteady
    logs = []

    def make(sub, fmt="auto"):
        torch.manual_seed(0)
        data = ToyData()
        return Solver(ToyTask(data), ConvToy(), data, settings(memory_format=fmt),
                      paths(tmp_path / sub), WORLD, fingerprint="toy", log=logs.append)

    first = make("a")
    assert any(m.startswith("memory format: step seconds") for m in logs)
    assert first.memory_format[""] in ("contiguous", "channels_last")
    untouched = make("b", fmt="keep")
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                  untouched.model.state_dict().values()))
    logs.clear()
    second = make("c")
    assert logs == [f"train: memory format (cached) {json.dumps(first.memory_format)}"]
    assert second.memory_format == first.memory_format
    pinned = make("d", fmt="channels_last")
    assert pinned.memory_format == {"": "channels_last"}
    assert pinned.model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    # the measured run trains exactly as one with the layout pinned to the same choice
    first.run(); again = make("e", fmt=first.memory_format[""]); again.run()
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                  again.model.state_dict().values()))


@pytest.mark.parametrize("amp, dtype", [("bf16", torch.bfloat16), ("auto", torch.float32),
                                        ("off", torch.float32)])
def test_amp_bf16_autocasts_the_training_step_on_cpu_too(tmp_path, amp, dtype):
    """train.amp bf16: the forward of a training step runs under bf16 autocast on the CPU
    (``auto`` keeps it to CUDA); validation stays float32."""
    torch.manual_seed(0)
    data = ToyData()
    model = ConvToy()
    seen = []
    model.conv.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    s = Solver(ToyTask(data), model, data, settings(amp=amp, epochs=1), paths(tmp_path), WORLD,
               fingerprint="toy", log=lambda m: None)
    s.run()
    steps = s.steps_per_epoch
    assert seen[:steps] == [dtype] * steps
    assert set(seen[steps:]) <= {torch.float32}            # validation: -MSE in float32
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_a_resumed_run_keeps_the_memory_format_it_started_in(tmp_path, monkeypatch):
    """The layout is part of the training state: a resumed run uses the one in last.pt, not a
    new measurement or a cache that now says otherwise, so it ends with the uninterrupted
    run's weights."""
    from pipeline.train import memory_format
    monkeypatch.setattr(memory_format, "STEADY", float("inf"))
    logs = []

    def make(fmt="auto"):
        torch.manual_seed(0)
        data = ToyData()
        return Solver(ToyTask(data), ConvToy(), data, settings(memory_format=fmt),
                      paths(tmp_path), WORLD, fingerprint="toy", log=logs.append)

    first = make()
    first.run(max_steps=3)
    started_in = first.memory_format
    flipped = {"": "contiguous" if started_in[""] == "channels_last" else "channels_last"}
    cache = memory_format.cache_path()
    cache.write_text(json.dumps({k: flipped for k in json.loads(cache.read_text())}))
    logs.clear()
    resumed = make()
    assert resumed.memory_format == started_in
    assert logs == [f"train: memory format of the run being resumed {json.dumps(started_in)}"]
    resumed.run()
    assert resumed.state.epoch == 2


def test_training_goes_on_without_dvclive(tmp_path, monkeypatch):
    """An image without DVC (a GPU cluster's, say) can still train: no dvclive/, the rest as
    usual, and the run says so; run again, the finished run is a no-op there too."""
    import sys

    monkeypatch.setitem(sys.modules, "dvclive", None)   # `import dvclive` raises ImportError
    said = []
    torch.manual_seed(0)
    data = ToyData()
    make = lambda: Solver(ToyTask(data), toy_model(), data, settings(epochs=2, steps_per_epoch=3),
                          paths(tmp_path), WORLD, fingerprint="toy", log=said.append)
    state = make().run()
    assert state.epoch == 2 and len(state.history) == 2
    assert (tmp_path / "models" / "best.pt").exists()
    assert (tmp_path / "plots" / "loss.png").exists()
    assert not (tmp_path / "dvclive").exists()
    assert any("dvclive is not installed" in m for m in said)
    again = make()
    again.run()
    assert again.finished and not (tmp_path / "dvclive").exists()


def test_measure_starts_one_loader_so_worker_start_up_is_not_timed(tmp_path, monkeypatch):
    """Solver.measure (tribert bench train) times steps after a warm-up from the same loader:
    a second loader would start its workers inside the first timed step's data wait (on an
    H200 with 12 workers that inflated the reported share)."""
    s = solver(tmp_path)
    made = []
    real = s._loader
    monkeypatch.setattr(s, "_loader", lambda *a: made.append(a) or real(*a))
    figures = s.measure(steps=3, warmup=2)
    assert len(made) == 1 and s.state.global_step == 5 and s.timing["steps"] == 3
    assert figures["step_s"] == pytest.approx(s.timing["step"] / 3)
    assert 0 <= figures["data_wait_share"] <= 1
