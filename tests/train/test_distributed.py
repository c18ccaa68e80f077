"""DDP with 2 CPU processes (gloo on 127.0.0.1): ranks stay identical, and the global batch
split over 2 ranks trains the same weights as one process with the whole batch."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from model import distrib
from model.solver import Paths, Solver
from toy import ToyData, ToyTask, settings, toy_model

SETTINGS = dict(batch_size=8, epochs=2, steps_per_epoch=3, checkpoint_every=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(rank: int, world_size: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    world = distrib.init("cpu")
    torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
    data = ToyData(gain=False)
    solver = Solver(ToyTask(data), toy_model(dropout=0.0), data, settings(**SETTINGS),
                    Paths(*(Path(out, n) for n in ("last.pt", "best.pt", "live", "plots"))),
                    world, log=lambda m: None)
    solver.run()
    torch.save(solver.model.state_dict(), os.path.join(out, f"weights{rank}.pt"))
    distrib.close()


def test_two_ranks_match_each_other_and_a_single_process(tmp_path):
    mp.spawn(_train, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    os.environ.pop("RANK", None)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = ToyData(gain=False)
    single = Solver(ToyTask(data), toy_model(dropout=0.0), data, settings(**SETTINGS),
                    Paths(tmp_path / "s" / "last.pt", tmp_path / "s" / "best.pt",
                          tmp_path / "s" / "live", tmp_path / "s" / "plots"),
                    distrib.World(0, 1, torch.device("cpu")), log=lambda m: None)
    single.run()
    r0 = torch.load(tmp_path / "ddp" / "weights0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "ddp" / "weights1.pt", weights_only=True)
    ref = single.model.state_dict()
    for k in ref:
        assert torch.equal(r0[k], r1[k]), k
        torch.testing.assert_close(r0[k], ref[k], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(ref["0.weight"], toy_model(dropout=0.0).state_dict()["0.weight"])
