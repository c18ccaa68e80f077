"""DDP with 2 CPU processes (gloo on 127.0.0.1): ranks stay identical, and the global batch
split over 2 ranks trains the same weights as one process with the whole batch."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from pipeline.train import distrib
from pipeline.train.solver import Paths, Solver
from toy import ToyData, ToyTask, settings, toy_model

SETTINGS = dict(batch_size=8, epochs=2, steps_per_epoch=3, checkpoint_every=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(rank: int, world_size: int, port: int, out: str, env: dict | None = None) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), **(env or {}))
    world = distrib.init("cpu")
    torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
    data = ToyData(gain=False)
    solver = Solver(ToyTask(data), toy_model(dropout=0.0), data, settings(**SETTINGS),
                    Paths(*(Path(out, n) for n in ("last.pt", "best.pt", "live", "plots"))),
                    world, log=lambda m: None)
    solver.run()
    torch.save(solver.model.state_dict(), os.path.join(out, f"weights{rank}.pt"))
    torch.save({"backend": distrib.backend(world),
                "ddp": isinstance(solver.ddp, torch.nn.parallel.DistributedDataParallel)},
               os.path.join(out, f"world{rank}.pt"))
    distrib.close()


def _single(out: Path) -> Solver:
    """The same toy run in one plain process (no group), the reference of the DDP runs."""
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TRIBERT_DDP"):
        os.environ.pop(k, None)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = ToyData(gain=False)
    single = Solver(ToyTask(data), toy_model(dropout=0.0), data, settings(**SETTINGS),
                    Paths(*(out / n for n in ("last.pt", "best.pt", "live", "plots"))),
                    distrib.World(0, 1, torch.device("cpu")), log=lambda m: None)
    single.run()
    return single


def test_two_ranks_match_each_other_and_a_single_process(tmp_path):
    mp.spawn(_train, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    single = _single(tmp_path / "s")
    r0 = torch.load(tmp_path / "ddp" / "weights0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "ddp" / "weights1.pt", weights_only=True)
    ref = single.model.state_dict()
    for k in ref:
        assert torch.equal(r0[k], r1[k]), k
        torch.testing.assert_close(r0[k], ref[k], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(ref["0.weight"], toy_model(dropout=0.0).state_dict()["0.weight"])


def _train_tribert(rank: int, world_size: int, port: int, clips: str, out: str,
                   backbone_lr: float = 1.0) -> None:
    """The tiny TriBERT with its randomness on (masking, dropout, BatchNorm, random gains,
    frame augmentation):
    an uninterrupted 2-rank run, and one stopped after 3 steps then resumed."""
    from model.build import build_model
    from pipeline.schema import ModelParams
    from pipeline.train.task import SeparationTask
    from pipeline.data.dataset import MixDataset, collate

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    world = distrib.init("cpu")
    config = ModelParams(preset="tiny", image_size=32, unet_depth=3, layers=1, dropout=0.1,
                         mask_rate=0.3)
    weights = {"mask": 1.0, "visual": 1.0, "pose": 1.0, "audio": 1.0}
    train, val = MixDataset(Path(clips), "train", seed=1), MixDataset(Path(clips), "val", seed=1)

    def solver(name):
        torch.manual_seed(rank)   # rank 1's initial weights differ: DDP must broadcast rank 0's
        task = SeparationTask(weights, val, val_mixtures=2, batch_size=2, collate=collate,
                              augment=True)   # frame augmentation draws too
        return Solver(task, build_model(config), train,
                      settings(batch_size=4, epochs=2, steps_per_epoch=2, lr=3e-3, seed=1,
                               backbone_lr=backbone_lr),
                      Paths(*(Path(out, name, n) for n in ("last.pt", "best.pt", "live", "p"))),
                      world, collate=collate, log=lambda m: None)

    full = solver("full")
    full.run()
    solver("cut").run(max_steps=3)
    resumed = solver("cut")
    resumed.run()
    torch.save({"full": full.model.state_dict(), "resumed": resumed.model.state_dict(),
                "params": [k for k, _ in full.model.named_parameters()],
                "losses": (full.state.step_losses, resumed.state.step_losses)},
               os.path.join(out, f"tribert{rank}.pt"))
    distrib.close()


# backbone_lr=0: the frozen backbone must be left out before DDP registers the parameters it
# reduces, or the second step fails waiting for their gradients
@pytest.mark.parametrize("backbone_lr", [1.0, 0.0])
def test_tiny_tribert_ranks_agree_and_resume_exactly_with_randomness_on(clip_dir, tmp_path,
                                                                        backbone_lr):
    mp.spawn(_train_tribert, args=(2, _free_port(), str(clip_dir), str(tmp_path), backbone_lr),
             nprocs=2, join=True)
    os.environ.pop("RANK", None)
    r0 = torch.load(tmp_path / "tribert0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "tribert1.pt", weights_only=True)
    for k in r0["params"]:   # the ranks' weights stay identical (BatchNorm buffers are
        # rank 0's at each forward, DDP's broadcast; rank 0 alone saves them)
        assert torch.equal(r0["full"][k], r1["full"][k]), k
    assert any("running_mean" in k for k in r0["full"])
    for k, v in r0["full"].items():
        assert torch.equal(v, r0["resumed"][k]), k              # resume is exact under DDP
    assert r0["losses"][0] == r0["losses"][1] and len(r0["losses"][0]) == 4


def test_one_rank_can_take_the_whole_distributed_path(tmp_path):
    """TRIBERT_DDP=1: one process joins a group and trains through DDP and the collectives
    (how the NCCL path is checked on a machine with one GPU), to the weights of a plain run."""
    mp.spawn(_train, args=(1, _free_port(), str(tmp_path / "g"), {"TRIBERT_DDP": "1"}),
             nprocs=1, join=True)
    world = torch.load(tmp_path / "g" / "world0.pt", weights_only=True)
    assert world["backend"] == "gloo" and world["ddp"]
    got = torch.load(tmp_path / "g" / "weights0.pt", weights_only=True)
    single = _single(tmp_path / "s")
    assert single.ddp is single.model
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6)
