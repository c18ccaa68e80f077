"""The training loop: one process or many (DDP), exact resume, validation, logging.

What one step computes (the loss) and what validation scores are given by a task
(:class:`Task`; :mod:`pipeline.train.task` has the mix-and-separate one), so the loop itself is generic
and testable with small modules.

Launching (``stages/train.py`` is the entry point; each process runs the same loop)::

    # CPU or 1 GPU
    python -m stages.train
    # N GPUs on one machine (global batch train.batch_size is split over the N ranks)
    torchrun --standalone --nproc_per_node=4 -m stages.train
    # 2 machines with 4 GPUs each: run on both, with the first machine's address
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 \
        --master_addr=10.0.0.1 --master_port=29500 -m stages.train   # on 10.0.0.1
    torchrun --nnodes=2 --node_rank=1 --nproc_per_node=4 \
        --master_addr=10.0.0.1 --master_port=29500 -m stages.train   # on the other machine

Guarantees:

- Checkpoints (``last.pt``) are written atomically by rank 0 at the end of every epoch and every
  ``checkpoint_every`` steps, with the full state: the model package (constructor arguments and
  weights), optimiser, scheduler, every rank's RNG states (python, numpy, torch, CUDA), and the
  data order (seed, epoch, steps done in the epoch). A run that finds an unfinished ``last.pt``
  of the same configuration resumes from it and ends with the same weights as an uninterrupted
  run (items are drawn per (seed, epoch, index), so loader workers do not change them;
  tests/train/test_resume_stage.py runs with params.yaml's ``workers: 1``).
- The best model is chosen on the validation SDR (never on test). Its package travels inside
  every ``last.pt`` (an interruption cannot lose it, though DVC deletes the model file before
  re-running the stage) and is written as the model file when the run finishes.
- A finished run of the same configuration is a no-op: ``last.pt`` and the outputs that exist
  stay untouched; the model file, dvclive files and plots are rebuilt from ``last.pt`` when
  missing.
- ``TRIBERT_KILL_AT_STEP=N`` (tests) SIGKILLs the process once step N and its checkpoint, if
  any, are done (:mod:`pipeline.faults`).
- A NaN or infinite loss on any rank stops all ranks with :class:`NonFiniteLoss`; nothing is
  saved after it, so ``last.pt`` stays the last good state.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from model import layout
from model.build import frames_backbone
from pipeline.train import distrib, memory_format
from pipeline.train.ema import WeightAverage
from pipeline.train.distrib import World
from pipeline import atomic
from pipeline.faults import kill_point

STATE_FORMAT = "tribert-train-state/1"


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss (or weights); the run stops."""


class Task(Protocol):
    """What the loop trains and how it is scored."""

    def loss(self, model: torch.nn.Module, batch, device: torch.device
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss of one batch (mean over its samples) and figures to log."""

    def validate(self, model: torch.nn.Module, device: torch.device) -> dict[str, float]:
        """Validation figures; must include ``"sdr"`` (the model-selection criterion)."""

    def package(self, model: torch.nn.Module) -> dict:
        """The model as a checkpoint package (constructor arguments and weights)."""

    def load_package(self, model: torch.nn.Module, package: dict) -> None:
        """Load a package's weights into ``model``."""


@dataclass(frozen=True)
class Paths:
    last: Path            # checkpoints/last.pt (resume state)
    best: Path            # models/<name>.pt (best on val SDR, a model package)
    live: Path            # dvclive directory
    plots: Path           # PNG plots (results/train)


@dataclass
class State:
    """The loop's position and record (saved in every checkpoint)."""

    epoch: int = 0                 # current epoch (0-based)
    step_in_epoch: int = 0         # optimisation steps done in ``epoch``
    global_step: int = 0
    best_sdr: float = -math.inf
    best_epoch: int = -1
    history: list = field(default_factory=list)     # one dict per finished epoch
    step_losses: list = field(default_factory=list)  # training loss per step (for plots)


# --------------------------------------------------------------------------------------------
# RNG state (every rank's), as plain Python data: weights_only-loadable and gatherable


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *(np_state[2:])),
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()]
        if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def seed_everything(seed: int, rank: int) -> None:
    """Per-rank seeds: ranks draw different dropout/masking/gains; reruns repeat exactly."""
    s = seed * 1000 + rank
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def _save(obj, path: Path) -> None:
    atomic.write_torch(path, obj)


def _accelerator(device: torch.device) -> list[str]:
    """The GPU model and CUDA version when training on one (part of the layout cache key: the
    fastest layout differs per GPU as per CPU)."""
    if device.type != "cuda":
        return []
    return [torch.cuda.get_device_name(device), str(torch.version.cuda)]


def _detached(obj):
    """A copy of a package whose tensors no longer share memory with the live model."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _detached(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detached(v) for v in obj)
    return obj


def _gather(obj, world: World) -> list:
    if not world.grouped:
        return [obj]
    out = [None] * world.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


# --------------------------------------------------------------------------------------------
# the loop


def param_groups(model: torch.nn.Module, lr: float, backbone_scale: float) -> list[dict]:
    """The optimiser's parameter groups: everything at ``lr`` (the first group, which the logs
    report), the frames backbone (:func:`model.build.frames_backbone`) at ``lr *
    backbone_scale`` when the scale is not 1 (Sound-of-Pixels trains its frames network 10x
    slower than the rest); a scale of 0 freezes it."""
    backbone = frames_backbone(model) if backbone_scale != 1.0 else None
    if backbone is None:
        return [{"params": list(model.parameters())}]
    inner = {id(p) for p in backbone.parameters()}
    rest = [p for p in model.parameters() if id(p) not in inner]
    if backbone_scale == 0.0:
        backbone.requires_grad_(False)
        return [{"params": rest}]
    return [{"params": rest}, {"params": list(backbone.parameters()), "lr": lr * backbone_scale}]


def make_scheduler(optimizer, schedule: str, warmup: int, total: int):
    """Linear warm-up over ``warmup`` steps, then constant or cosine decay to 0 at ``total``."""
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "cosine":
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1 + math.cos(math.pi * t))
        return 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Solver:
    """Trains ``model`` on ``train_set`` with ``task``'s loss; see the module docstring.

    settings: the resolved ``train`` section (lr, batch_size, epochs, steps_per_epoch, betas,
    weight_decay, schedule, warmup_steps, grad_clip, workers, amp, checkpoint_every, seed).
    fingerprint: identifies the configuration; a ``last.pt`` with another one is not resumed.
    collate: the DataLoader's collate function (None: torch's default).
    """

    def __init__(self, task: Task, model: torch.nn.Module, train_set: Dataset, settings: dict,
                 paths: Paths, world: World, fingerprint: str = "",
                 collate: Optional[Callable] = None, log: Callable[[str], None] = tqdm.write):
        self.task, self.settings, self.paths, self.world = task, settings, paths, world
        self.fingerprint, self.log = fingerprint, log
        b = settings["batch_size"]
        if b % world.world_size:
            raise ValueError(f"train.batch_size: {b} is not divisible by the {world.world_size} "
                             f"ranks")
        self.rank_batch = b // world.world_size
        seed_everything(settings["seed"], world.rank)
        self.model = model.to(world.device)
        self.train_set, self.collate = train_set, collate
        # bf16 autocast: ``auto`` on CUDA only; ``bf16`` on any device (on a CPU with AMX or
        # AVX512-BF16 oneDNN runs the convolutions and matmuls in bf16: docs/experiments.md)
        self.amp = (settings["amp"] == "bf16"
                    or (settings["amp"] == "auto" and world.device.type == "cuda"))
        self.memory_format = self._set_memory_format(settings.get("memory_format", "keep"))
        # before DDP wraps the model: a frozen backbone must be frozen when DDP registers
        # the parameters it reduces
        groups = param_groups(self.model, settings["lr"], settings.get("backbone_lr", 1.0))
        # the weight average (train.ema) validates and is kept; it never feeds back into training
        self.ema = (WeightAverage(self.model, settings["ema"]) if settings.get("ema", 0.0)
                    else None)
        self.ddp = distrib.wrap(self.model, world)
        self.optimizer = torch.optim.Adam(groups, lr=settings["lr"],
                                          betas=tuple(settings["betas"]),
                                          weight_decay=settings["weight_decay"])
        self.sampler = distrib.ResumableSampler(train_set, world, seed=settings["seed"])
        full = len(self.sampler) // self.rank_batch
        if full == 0:
            raise ValueError(f"train: {len(train_set)} training mixtures give no batch of "
                             f"{b} over {world.world_size} rank(s)")
        cap = settings["steps_per_epoch"]
        self.steps_per_epoch = min(cap, full) if cap else full
        self.total_steps = self.steps_per_epoch * settings["epochs"]
        self.scheduler = make_scheduler(self.optimizer, settings["schedule"],
                                        settings["warmup_steps"], self.total_steps)
        self.state = State()
        self.best: Optional[dict] = None   # the best epoch's model package (kept in last.pt)
        self.finished = False              # try_resume found a finished run of this config
        self.timing = {"data": 0.0, "step": 0.0, "steps": 0}

    def _set_memory_format(self, setting: str) -> dict[str, str]:
        """Put the model's convolutional networks in the layout of ``train.memory_format``
        (:mod:`model.layout`): ``auto`` times one forward and backward of a real training batch
        in each layout, once per machine and configuration (cached), on rank 0, and every rank
        uses rank 0's choice; ``keep`` (settings without the key) leaves the model as built."""
        if setting == "keep":
            return layout.current(self.model)
        if setting != "auto":
            choice = layout.uniform(self.model, setting)
        else:
            choice = None
            if self.world.is_master and (choice := self._resumed_memory_format()) is not None:
                self.log(f"train: memory format of the run being resumed {json.dumps(choice)}")
            elif self.world.is_master:
                choice, cached = memory_format.remember(
                    memory_format.cache_key(self.model, self.rank_batch,
                                            [str(self.world.device), f"amp={self.amp}",
                                             *_accelerator(self.world.device)]),
                    self._measure_memory_format)
                self.log(f"train: memory format {'(cached) ' if cached else ''}"
                         f"{json.dumps(choice)}")
            choice = distrib.broadcast_object(choice, self.world)
        layout.apply(self.model, choice)
        return choice

    def _resumed_memory_format(self) -> Optional[dict[str, str]]:
        """The layout an unfinished run of this configuration in ``last.pt`` trained in: a
        resumed run keeps it, so it ends with the same weights as an uninterrupted one (a new
        measurement on a busy machine may choose otherwise, and the kernels round differently)."""
        try:
            ck = torch.load(self.paths.last, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError, EOFError):
            return None   # no state, or an unreadable one (the stage sets those aside first)
        if (not isinstance(ck, dict) or ck.get("format") != STATE_FORMAT
                or ck.get("fingerprint") != self.fingerprint):
            return None
        choice = ck.get("memory_format")
        return dict(choice) if isinstance(choice, dict) else None

    def _measure_memory_format(self) -> dict[str, str]:
        collate = self.collate or torch.utils.data.default_collate
        batch = collate([self.train_set[i] for i in range(self.rank_batch)])
        device = self.world.device

        def step(model):
            model.train()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.amp):
                loss, _ = self.task.loss(model, batch, device)
            loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        saved = rng_state()                 # the batch's draws are not the run's
        try:
            return memory_format.choose(self.model, step, log=self.log)
        finally:
            set_rng_state(saved)

    # ---- checkpoints -----------------------------------------------------------------------

    def _state_dict(self) -> dict:
        rngs = _gather(rng_state(), self.world)
        s = self.state
        return {
            "format": STATE_FORMAT, "fingerprint": self.fingerprint,
            "model": self.task.package(self.model),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": rngs, "world_size": self.world.world_size,
            "memory_format": self.memory_format,
            "ema": None if self.ema is None else self.ema.state_dict(),
            "data_order": {"seed": self.settings["seed"], "epoch": s.epoch,
                           "step_in_epoch": s.step_in_epoch},
            "epoch": s.epoch, "step_in_epoch": s.step_in_epoch, "global_step": s.global_step,
            "best_sdr": s.best_sdr, "best_epoch": s.best_epoch, "best": self.best,
            "history": s.history, "step_losses": s.step_losses,
            "done": s.epoch >= self.settings["epochs"],
        }

    def save(self) -> None:
        """Write ``last.pt`` (all ranks take part in gathering RNG states; rank 0 writes)."""
        for p in self.model.parameters():
            if not torch.isfinite(p).all():
                raise NonFiniteLoss(f"weights became non-finite at step {self.state.global_step};"
                                    f" {self.paths.last} keeps the last good state")
        state = self._state_dict()
        if self.world.is_master:
            _save(state, self.paths.last)

    def try_resume(self) -> bool:
        """Load ``last.pt`` if it is an unfinished run of this configuration."""
        path = self.paths.last
        if not path.exists():
            return False
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if ck.get("format") != STATE_FORMAT or ck.get("fingerprint") != self.fingerprint:
            self.log(f"train: {path} is from another configuration; starting afresh")
            return False
        self.best = ck.get("best")
        if self.best is None and ck["best_epoch"] > 0 and self.paths.best.exists():
            # a last.pt from before the best package travelled in it
            self.best = torch.load(self.paths.best, map_location="cpu", weights_only=True)
        self.task.load_package(self.model, ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(ck["ema"])
        if ck["world_size"] == self.world.world_size:
            set_rng_state(ck["rng"][self.world.rank])
        else:
            self.log(f"train: {path} was made by {ck['world_size']} rank(s), this run has "
                     f"{self.world.world_size}: RNG streams restart (data order is kept)")
        self.state = State(ck["epoch"], ck["step_in_epoch"], ck["global_step"], ck["best_sdr"],
                           ck["best_epoch"], list(ck["history"]), list(ck["step_losses"]))
        if ck["done"]:
            self.finished = True
            self.log(f"train: {path} holds a finished run of this configuration; nothing to "
                     f"train (outputs that are missing are rebuilt from it)")
            return True
        self.log(f"train: resumed from {path} at epoch {self.state.epoch + 1}, "
                 f"step {self.state.global_step}")
        return True

    # ---- one epoch -------------------------------------------------------------------------

    def _loader(self, epoch: int, skip_steps: int) -> DataLoader:
        self.sampler.start(epoch, skip_steps * self.rank_batch)
        if hasattr(self.train_set, "set_epoch"):  # pairs and gains drawn per (seed, epoch, index)
            self.train_set.set_epoch(epoch)
        g = torch.Generator().manual_seed(self.settings["seed"] * 100003 + epoch * 101
                                          + self.world.rank)
        return DataLoader(self.train_set, batch_size=self.rank_batch, sampler=self.sampler,
                          num_workers=self.settings["workers"], collate_fn=self.collate,
                          drop_last=True, generator=g,
                          pin_memory=self.world.device.type == "cuda")

    def _step(self, batch) -> tuple[float, dict]:
        self.ddp.train()
        with torch.autocast(self.world.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss, figures = self.task.loss(self.ddp, batch, self.world.device)
        if not distrib.all_finite(loss, self.world):
            raise NonFiniteLoss(
                f"the loss is {loss.item()} at epoch {self.state.epoch + 1}, step "
                f"{self.state.global_step + 1}: training stopped; {self.paths.last} keeps the "
                f"last good state (lower train.lr, or set train.grad_clip)")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings["grad_clip"])
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return float(loss.item()), figures

    def _train_epoch(self, budget: Optional[int], timed_from: int = 0) -> tuple[dict, bool]:
        """Run the rest of the current epoch (at most ``budget`` steps; the first
        ``timed_from`` of them are left out of ``self.timing``). Returns the epoch's mean
        figures and whether the epoch finished."""
        s = self.state
        todo = self.steps_per_epoch - s.step_in_epoch
        if budget is not None:
            todo = min(todo, budget)
        sums: dict[str, float] = {}
        n = 0
        every = self.settings["checkpoint_every"]
        bar = tqdm(total=self.steps_per_epoch, initial=s.step_in_epoch, leave=False,
                   desc=f"epoch {s.epoch + 1}", disable=not self.world.is_master)
        it = iter(self._loader(s.epoch, s.step_in_epoch))
        for i in range(todo):
            t0 = time.perf_counter()
            batch = next(it)
            t1 = time.perf_counter()
            loss, figures = self._step(batch)
            t2 = time.perf_counter()
            if i >= timed_from:
                self.timing["data"] += t1 - t0
                self.timing["step"] += t2 - t0
                self.timing["steps"] += 1
            for k, v in {"loss": loss, **figures}.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
            s.step_in_epoch += 1
            s.global_step += 1
            s.step_losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            if s.step_in_epoch < self.steps_per_epoch:
                if every and s.global_step % every == 0:
                    self.save()
                kill_point("STEP", s.global_step)   # the epoch's last step: after its save
        bar.close()
        means = distrib.average({k: v / max(n, 1) for k, v in sums.items()}, self.world)
        return means, s.step_in_epoch >= self.steps_per_epoch

    def measure(self, steps: int, warmup: int = 1) -> dict:
        """Time ``steps`` training steps after ``warmup`` ones (no validation, no checkpoint):
        samples/s over all ranks and the share of step time spent waiting for data."""
        assert warmup + steps <= self.steps_per_epoch, (warmup, steps, self.steps_per_epoch)
        self.timing = {"data": 0.0, "step": 0.0, "steps": 0}
        # one loader for the warm-up and the timed steps: its workers start once, untimed
        self._train_epoch(warmup + steps, timed_from=warmup)
        t = self.timing
        return {"samples_per_s": t["steps"] * self.settings["batch_size"] / t["step"],
                "step_s": t["step"] / t["steps"], "data_wait_share": t["data"] / t["step"]}

    # ---- the run ---------------------------------------------------------------------------

    def run(self, max_steps: Optional[int] = None) -> State:
        """Train to ``settings["epochs"]`` (resuming if possible); stop early after
        ``max_steps`` optimisation steps of this call (time-boxed runs and tests). Only rank 0
        validates, logs and saves."""
        resumed = self.try_resume()
        if self.finished:
            self._restore_outputs()
            return self.state
        live = self._open_live(resumed)
        s = self.state
        while s.epoch < self.settings["epochs"]:
            budget = None if max_steps is None else max_steps - self.timing["steps"]
            if budget is not None and budget <= 0:
                break
            started = time.perf_counter()
            train, finished = self._train_epoch(budget)
            if not finished:
                self.save()
                break
            record = {"epoch": s.epoch + 1, "step": s.global_step,
                      "lr": self.optimizer.param_groups[0]["lr"],
                      **{f"train/{k}": v for k, v in train.items()}}
            if self.world.is_master:
                kept = self.kept_model()
                kept.eval()
                with torch.no_grad():
                    val = self.task.validate(kept, self.world.device)
                record.update({f"val/{k}": v for k, v in val.items()})
                if val["sdr"] > s.best_sdr:
                    s.best_sdr, s.best_epoch = float(val["sdr"]), s.epoch + 1
                    self.best = _detached(self.task.package(kept))
            record["seconds"] = time.perf_counter() - started
            s.history.append(record)
            s.epoch += 1
            s.step_in_epoch = 0
            distrib.barrier(self.world)
            self.save()
            if self.world.is_master:
                self._log_epoch(live, record)
            kill_point("STEP", s.global_step)
        if live is not None:
            live.end()
        if s.epoch >= self.settings["epochs"]:
            self._write_model()
        return s

    def _write_model(self) -> None:
        """The model file of a finished run: the best epoch's package (rank 0)."""
        if not self.world.is_master:
            return
        pkg = self.best
        if pkg is None:
            self.log("train: no finite val SDR; the model file holds the last weights")
            pkg = self.task.package(self.kept_model())
        _save(pkg, self.paths.best)

    def kept_model(self) -> torch.nn.Module:
        """What validation scores and the model file holds: the weight average (train.ema)
        when there is one, else the trained weights."""
        return self.model if self.ema is None else self.ema.model

    def _restore_outputs(self) -> None:
        """A finished run: rebuild from last.pt whatever output is missing (DVC removes the
        stage's non-persistent outputs before running it); touch nothing that exists."""
        if not self.world.is_master:
            return
        if not self.paths.best.exists():
            self._write_model()
        if not (self.paths.live / "metrics.json").exists():
            live = self._open_live(True)
            if live is not None:
                live.end()
        if not any(self.paths.plots.glob("*.png")):
            from pipeline.train import plots as train_plots

            train_plots.write_all(self.paths.plots, self.state.history, self.state.step_losses)

    # ---- logging ---------------------------------------------------------------------------

    def _open_live(self, resumed: bool):
        """dvclive on rank 0, rebuilt from the checkpoint's history so its files always match
        the state being continued (an interrupted run may have logged past its last save)."""
        if not self.world.is_master:
            return None
        import shutil

        try:
            from dvclive import Live
        except ImportError:   # e.g. a GPU cluster's image without DVC: training goes on
            self.log(f"train: dvclive is not installed, {self.paths.live}/ is not written; "
                     "the metrics are in last.pt and the plots")
            return None
        shutil.rmtree(self.paths.live, ignore_errors=True)
        live = Live(str(self.paths.live), save_dvc_exp=False, dvcyaml=False)
        for record in self.state.history if resumed else []:
            self._log_live(live, record)
        return live

    @staticmethod
    def _log_live(live, record: dict) -> None:
        for k, v in record.items():
            if k not in ("epoch", "seconds") and isinstance(v, (int, float)):
                live.log_metric(k, float(v))
        live.next_step()

    def _log_epoch(self, live, record: dict) -> None:
        if live is not None:
            self._log_live(live, record)
        from pipeline.train import plots as train_plots

        train_plots.write_all(self.paths.plots, self.state.history, self.state.step_losses)
        parts = [f"epoch {record['epoch']}/{self.settings['epochs']}",
                 f"loss {record.get('train/loss', float('nan')):.4f}"]
        for k in ("sdr", "sdr_mix", "sir", "sar"):
            if f"val/{k}" in record:
                parts.append(f"val {k.upper().replace('_MIX', ' mix')} {record[f'val/{k}']:.2f}")
        parts.append(f"best SDR {self.state.best_sdr:.2f} (epoch {self.state.best_epoch})")
        parts.append(f"{record['seconds']:.0f} s")
        self.log(" | ".join(parts))
