"""``tribert bench model`` and ``tribert bench train``: what a training step costs on this CPU.

``model``: speed and memory of one training step of each preset on this CPU.

A step is what the trainer does per batch: forward of ``--batch`` mixtures of ``--sources``
sources, the four losses, backward and an Adam step. Each preset runs in a fresh process so its
peak resident memory is its own. The forward is broken down by block (profiler labels in
:class:`model.tribert.TriBERT`), the backward by kind of operation. Other processes sharing the
CPU inflate every figure: the load average is reported with them.

Against the official code in the same run: ``--against-official REPO`` (a clone of
github.com/ubc-vision/TriBERT) first times the official model's step with ``official_step.py``
(``--official-script``; the steering folder's ``bench/official_step.py`` by default, which builds
the official model unchanged and checks its parameter count) in a subprocess with the same
batch, sources, steps and threads, then this project's presets, and reports
``official_over_paper`` = official step / paper-preset step (and so for each preset): a ratio of two figures taken under
the same load, on the same CPU, with the same allocator (the README quotes only such ratios).

``train``: training throughput on this machine, per model preset. With ``--against-commit REV``
it instead times the default tiny training step of another commit of this project (checked out
in a temporary git worktree, run with that commit's own code and defaults) and of this code
(``params.yaml``'s model, ``train.memory_format: auto`` as training uses), alternately, each in a
fresh process on the same shards, and reports the ratio of the medians: how much faster the
default training step has become since REV, in one run.

For each preset, a few real training steps (the solver's own loop: data from the clip shards
through the DataLoader, mixture features, forward, loss, backward, Adam) after a warm-up step;
printed: samples per second, seconds per step, and the share of step time spent waiting for the
next batch. The ``paper`` preset runs a couple of steps at a small batch (it is a GPU model).
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from pipeline.benchmark import peak_rss_mb, report
from pipeline.malloc import child_env, keep_freed_memory

BLOCKS = ("visual", "pose", "audio", "encoder", "heads", "unet")
OP_KINDS = {"conv": ("convolution",), "matmul": ("addmm", "mm", "bmm", "linear"),
            "batch_norm": ("batch_norm",), "attention": ("attention",)}


def make_inputs(batch: int, sources: int, params) -> tuple[dict, dict, "torch.Tensor"]:
    """Random model inputs, loss targets and labels in the data pipeline's contract."""
    import torch

    r = params.resolved()
    B, N, T, P = batch, sources, r["frames"], r["persons"]
    inputs = {"frames": torch.randint(0, 256, (B, N, T, 224, 224, 3), dtype=torch.uint8),
              "pose": torch.randn(B, N, T, P, r["pose_channels"], r["pose_joints"]),
              "boxes": torch.rand(B, N, T, P, 5),
              "absent": torch.rand(B, N, T, P) < 0.2,
              "log_mag_mix": torch.randn(B, 1, 256, 256)}
    feats = {"masks": (torch.rand(B, N, 256, 256) > 0.5).float(),
             "weight": torch.rand(B, 1, 256, 256)}
    labels = (torch.rand(B, N, r["num_classes"]) > 0.9).float()
    return inputs, feats, labels


def _op_kind(name: str) -> str:
    for kind, keys in OP_KINDS.items():
        if any(k in name for k in keys):
            return kind
    return "other"


def measure(preset: str, arch: str, batch: int, sources: int, steps: int, threads: int,
            bf16: bool, memory_format: str = "keep") -> dict:
    """Time ``steps`` training steps (after one warm-up) of one preset, its networks in
    ``memory_format`` (model.layout: keep = as built, auto = measured here, or one layout for
    all); figures as a dict."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    from model import layout
    from model.build import build_model
    from pipeline.schema import ModelParams
    from pipeline.train import losses
    from pipeline.train.memory_format import choose

    keep_freed_memory()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    params = ModelParams(arch=arch, preset=preset)
    model = build_model(params).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, fused=True)
    inputs, feats, labels = make_inputs(batch, sources, params)
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if bf16
                else contextlib.nullcontext())

    def forward_backward(m):
        with autocast:
            loss = losses.total_loss(losses.tribert_loss(m(inputs), feats, labels))
        loss.backward()

    if memory_format == "auto":
        choice, _ = choose(model, forward_backward, repeats=2)
    elif memory_format == "keep":
        choice = layout.current(model)
    else:
        choice = layout.uniform(model, memory_format)
    layout.apply(model, choice)

    def step():
        c0 = time.process_time()
        t0 = time.perf_counter()
        with autocast:
            out = model(inputs)
            loss = losses.total_loss(losses.tribert_loss(out, feats, labels))
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, time.process_time() - c0

    step()  # warm-up: oneDNN primitive creation, allocator growth, optimizer state
    times = [step() for _ in range(steps)]
    fwd, bwd, optim, cpu = (statistics.median(t[i] for t in times) for i in range(4))
    with torch.no_grad():
        t0 = time.perf_counter()
        model.eval()(inputs)
        infer = time.perf_counter() - t0
        with FlopCounterMode(display=False) as flops:  # load-independent measure of the work
            model(inputs)
        model.train()
    figures = {
        "memory_format": json.dumps(choice),
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "step_forward_s": fwd, "step_backward_s": bwd, "step_optimizer_s": optim,
        "step_total_s": fwd + bwd + optim,
        # CPU seconds of all threads: less sensitive than wall time to other processes' load
        "step_cpu_s": cpu,
        "forward_s_per_sample": fwd / batch,
        "forward_backward_s_per_sample": (fwd + bwd) / batch,
        "inference_s_per_sample": infer / batch,
        "forward_gflop_per_step": flops.get_total_flops() / 1e9,
        "peak_rss_mb": peak_rss_mb(),
    }
    if arch == "tribert":
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            with autocast:
                out = model(inputs)
                loss = losses.total_loss(losses.tribert_loss(out, feats, labels))
        events = {e.key: e.cpu_time_total / 1e6 for e in prof.key_averages()}
        for b in BLOCKS:
            figures[f"forward_block_s.{b}"] = events.get(f"tribert.{b}", 0.0)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            loss.backward()
        opt.zero_grad(set_to_none=True)
        kinds = dict.fromkeys(list(OP_KINDS) + ["other"], 0.0)
        for e in prof.key_averages():
            if e.key.startswith("aten::"):
                kinds[_op_kind(e.key)] += e.self_cpu_time_total / 1e6
        for k, v in kinds.items():
            figures[f"backward_op_s.{k}"] = v
    return figures


def _child(queue, *args):
    try:
        queue.put(("ok", measure(*args)))
    except BaseException as e:  # report any failure to the parent
        queue.put(("error", f"{type(e).__name__}: {e}"))


def run_isolated(*args) -> dict:
    """:func:`measure` in a fresh process (its own peak memory)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, *args))
    proc.start()
    status, value = queue.get()
    proc.join()
    if status != "ok":
        raise click.ClickException(f"benchmark of {args[:2]} failed: {value}")
    return value


DEFAULT_OFFICIAL_SCRIPT = Path(os.environ.get(
    "TRIBERT_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "bench" / "official_step.py"


def official_step(script: Path, repo: Path, python: str, batch: int, sources: int, steps: int,
                  threads: int) -> dict:
    """The official model's step figures (``official_step.py --json``) in a subprocess."""
    if not script.is_file():
        raise click.ClickException(f"{script}: no official_step.py (--official-script)")
    cmd = [python, str(script), "--repo", str(repo.resolve()), "--batch", str(batch),
           "--sources", str(sources), "--steps", str(steps), "--threads", str(threads), "--json"]
    # the same allocator settings as this project's processes (pipeline/malloc.py)
    run = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise click.ClickException(f"{script}: the official step failed: {tail}")
    try:
        return json.loads(run.stdout)
    except json.JSONDecodeError:
        raise click.ClickException(f"{script}: printed no JSON object: {run.stdout[:200]!r}") \
            from None


@click.command("model")
@click.option("--preset", "presets", multiple=True, type=click.Choice(["tiny", "paper"]),
              default=("tiny", "paper"), show_default=True)
@click.option("--arch", type=click.Choice(["tribert", "sop"]), default="tribert",
              show_default=True)
@click.option("--batch", default=2, show_default=True, help="mixtures per step")
@click.option("--sources", default=2, show_default=True, help="sources per mixture (N)")
@click.option("--steps", default=3, show_default=True, help="timed steps (median) after a warm-up")
@click.option("--threads", default=2, show_default=True)
@click.option("--bf16", is_flag=True, help="bfloat16 autocast (CPUs with AVX512-BF16/AMX)")
@click.option("--memory-format", type=click.Choice(["keep", "auto", "channels_last",
                                                    "contiguous"]),
              default="auto", show_default=True,
              help="layouts of the networks (model.layout): keep = as built, auto = the faster "
              "per network, measured here as train.memory_format auto does")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--against-official", "official_repo", type=click.Path(exists=True, path_type=Path),
              help="a clone of github.com/ubc-vision/TriBERT: also time its step in this run")
@click.option("--official-script", type=click.Path(path_type=Path),
              default=DEFAULT_OFFICIAL_SCRIPT, show_default=True)
@click.option("--official-python", default=sys.executable, show_default=True,
              help="the Python (with torch, no torchvision) that runs the official step")
@click.option("--rounds", default=1, show_default=True,
              help="measure everything this many times, alternating the order (the official "
              "step first in odd rounds, last in even ones); step times and ratios are medians "
              "over rounds, so a machine that speeds up or slows down mid-run favours neither")
def bench_model(presets, arch, batch, sources, steps, threads, bf16, memory_format, as_json,
                official_repo, official_script, official_python, rounds):
    """Forward, backward and optimizer time per training step, per sample, peak memory and a
    per-block breakdown for each preset; with --against-official, the official model's step in
    the same run and the ratio."""
    figures = {"batch": batch, "sources": sources, "threads": threads, "bf16": bf16,
               "memory_format": memory_format, "rounds": rounds, "malloc": keep_freed_memory(),
               "load_average_start": os.getloadavg()[0]}
    totals: dict[str, list] = {}
    order = (["official"] if official_repo is not None else []) + list(presets)
    for r in range(rounds):
        for who in (order if r % 2 == 0 else order[::-1]):
            if who == "official":
                official = official_step(official_script, official_repo, official_python,
                                         batch, sources, steps, threads)
                got = {f"official.{k}": official[k] for k in (
                    "params", "params_match", "step_forward_s", "step_backward_s",
                    "step_optimizer_s", "step_total_s", "step_cpu_s", "peak_rss_mb")
                    if k in official}
            else:
                got = {f"{who}.{k}": v for k, v in run_isolated(
                    who, arch, batch, sources, steps, threads, bf16, memory_format).items()}
            totals.setdefault(who, []).append(got[f"{who}.step_total_s"])
            if r == 0:                                   # the breakdown: the first round's
                figures.update(got)
    if rounds > 1:
        for who, ts in totals.items():
            figures[f"{who}.step_total_s"] = statistics.median(ts)
            figures[f"{who}.step_total_s_all"] = json.dumps([round(t, 3) for t in ts])
    if official_repo is not None:   # how many times faster than the official step, per preset
        for preset in presets:
            figures[f"official_over_{preset}"] = (figures["official.step_total_s"]
                                                  / figures[f"{preset}.step_total_s"])
            if rounds > 1:
                figures[f"official_over_{preset}_all"] = json.dumps(
                    [round(o / t, 3) for o, t in zip(totals["official"], totals[preset])])
    figures["load_average_end"] = os.getloadavg()[0]
    report("model", figures, as_json, title=f"tribert bench model ({arch}, batch {batch} x {sources} sources)")


def bench_preset(preset: str, clips: Path, pose: Path | None, batch: int, steps: int,
                 workers: int, model_params=None, memory_formats: tuple[str, ...] = ("auto",)
                 ) -> dict:
    """Figures of :meth:`pipeline.train.solver.Solver.measure` for one preset, for each
    variant ``FORMAT[+AMP]`` one after another in this run: FORMAT a memory format
    (model.layout; ``keep``: the layouts the model is built with, before any measured choice),
    AMP a ``train.amp`` value (default ``auto``: float32 on a CPU). The unprefixed figures are
    the last variant's; ``keep_over_<variant>`` is the speed-up over ``keep``."""
    import torch

    from model.build import build_model
    from pipeline.data.dataset import collate
    from pipeline.schema import ModelParams, TrainParams
    from pipeline.train import distrib
    from pipeline.train.runner import datasets
    from pipeline.train.solver import Paths, Solver
    from pipeline.train.task import SeparationTask

    settings = TrainParams().resolved(preset)
    settings.update(batch_size=batch, workers=workers, epochs=1, steps_per_epoch=0)
    train_set, _ = datasets(clips, pose, settings["seed"])
    task = SeparationTask(settings["loss"], None)
    world = distrib.World(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    out: dict = {f"{preset}.batch": batch}
    for variant in memory_formats:
        fmt, _, amp = variant.partition("+")
        torch.manual_seed(0)
        model = build_model(model_params or ModelParams(preset=preset))
        with tempfile.TemporaryDirectory() as tmp:
            paths = Paths(*(Path(tmp, n) for n in ("last.pt", "best.pt", "live", "plots")))
            solver = Solver(task, model, train_set,
                            {**settings, "memory_format": fmt, "amp": amp or settings["amp"]},
                            paths, world, collate=collate, log=lambda m: None)
            figures = solver.measure(steps)
        out[f"{preset}.{variant}.step_s"] = figures["step_s"]
        out[f"{preset}.{variant}.memory_format"] = json.dumps(solver.memory_format)
        out.update({f"{preset}.{k}": v for k, v in figures.items()})
    if "keep" in memory_formats:
        for variant in memory_formats:
            if variant != "keep":
                out[f"{preset}.keep_over_{variant}"] = (out[f"{preset}.keep.step_s"]
                                                        / out[f"{preset}.{variant}.step_s"])
    return out


RUN_CLI = "import sys; sys.path.insert(0, '.'); from pipeline.cli import main; main()"


def _tiny_step(cwd: Path, args: list[str]) -> dict:
    """One ``tribert bench train --presets tiny --json`` of the code in ``cwd``, in a fresh
    process (that code's own package: ``cwd`` first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(cwd), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", RUN_CLI, "bench", "train", "--presets", "tiny",
                           "--json", *args], cwd=cwd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise click.ClickException(f"bench train in {cwd} failed (exit {proc.returncode}): {tail}")
    return json.loads(lines[-1])


def against_commit(rev: str, clips: Path, pose: Path | None, steps: int, batch: int,
                   rounds: int, workers: int = 0, params_path: str = "params.yaml",
                   log=print) -> dict:
    """The default tiny training step of commit ``rev`` against this code's (the model of
    ``params_path``), alternately (``rev`` first in odd rounds), ``rounds`` times each, both
    with ``workers`` loader processes; medians and their ratio."""
    here = Path(__file__).resolve().parents[2]          # this code's checkout
    common = ["--clips", str(clips.resolve()), "--pose", str(pose.resolve()) if pose else "",
              "--steps", str(steps), "--batch", str(batch), "--workers", str(workers)]
    params = str(Path(params_path).resolve()) if params_path else ""
    times: dict[str, list] = {"against": [], "this": []}
    waits: dict[str, list] = {"against": [], "this": []}
    with tempfile.TemporaryDirectory(prefix="tribert-against-") as tmp:
        tree = Path(tmp, "tree")
        add = subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", str(tree),
                              rev], capture_output=True, text=True)
        if add.returncode != 0:
            raise click.ClickException(f"cannot check out {rev!r}: "
                                       f"{(add.stderr.strip().splitlines() or ['?'])[-1]}")
        commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        try:
            for r in range(rounds):
                order = ("against", "this") if r % 2 == 0 else ("this", "against")
                for who in order:
                    figures = (_tiny_step(tree, common) if who == "against" else
                               _tiny_step(here, common + ["--memory-formats", "auto", "--params", params]))
                    times[who].append(figures["tiny.step_s"])
                    waits[who].append(figures["tiny.data_wait_share"])
                    log(f"round {r + 1}: {who} {figures['tiny.step_s']:.3f} s per step")
        finally:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"against.commit": commit, "rounds": rounds, "tiny.batch": batch, "workers": workers,
            "tiny.model": params_path or "preset defaults",
            "against.tiny.step_s": med["against"], "tiny.step_s": med["this"],
            "against.tiny.step_s_all": json.dumps([round(t, 4) for t in times["against"]]),
            "tiny.step_s_all": json.dumps([round(t, 4) for t in times["this"]]),
            "against.tiny.data_wait_share": statistics.median(waits["against"]),
            "tiny.data_wait_share": statistics.median(waits["this"]),
            "against_over_this": med["against"] / med["this"]}


@click.command("train")
@click.option("--clips", default="data/clips", show_default=True, type=click.Path())
@click.option("--pose", default="data/pose", show_default=True,
              help="Pose shards ('' = none: the pose stream is erased).")
@click.option("--steps", default=4, show_default=True, help="Timed steps, tiny preset.")
@click.option("--batch", default=8, show_default=True, help="Batch, tiny preset.")
@click.option("--paper-steps", default=2, show_default=True)
@click.option("--paper-batch", default=2, show_default=True)
@click.option("--workers", default=0, show_default=True, help="DataLoader workers.")
@click.option("--presets", default="tiny,paper", show_default=True)
@click.option("--memory-formats", default="keep,auto", show_default=True,
              help="Variants FORMAT[+AMP] to time in turn. FORMAT (model.layout): keep (as "
              "built), auto (measured per network and cached, as train uses), channels_last, "
              "contiguous; AMP a train.amp value, e.g. auto+bf16.")
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              help="The model section of the preset it names is used (other presets: their "
              "defaults); '' = every preset's defaults.")
@click.option("--against-commit", "against", default=None, metavar="REV",
              help="Time the default tiny training step of commit REV of this project (its own "
              "code and defaults, in a temporary git worktree) and this code's, alternately, "
              "on the same shards; print the ratio. Other presets are not timed.")
@click.option("--rounds", default=3, show_default=True,
              help="With --against-commit: timed runs of each side (medians are compared).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_train(clips, pose, steps, batch, paper_steps, paper_batch, workers, presets,
                memory_formats, params_path, against, rounds, as_json):
    """Training throughput (samples/s) and data-wait share per preset, on real clip shards."""
    clips = Path(clips)
    if not any(clips.glob("shard-*.h5")):
        raise click.ClickException(f"{clips}: no clip shards; run `dvc repro decode` first")
    pose = Path(pose) if pose and any(Path(pose).glob("shard-*.h5")) else None
    if against:
        log = (lambda m: click.echo(m, err=True)) if as_json else click.echo
        figures = against_commit(against, clips, pose, steps, batch, rounds, workers,
                                 params_path, log)
        title = f"tribert bench train --against-commit {against}"
    else:
        figures = _presets(clips, pose, steps, batch, paper_steps, paper_batch, workers,
                           presets, memory_formats, params_path)
        title = "tribert bench train (after one warm-up step)"
    report("train", figures, as_json, title)


def _presets(clips, pose, steps, batch, paper_steps, paper_batch, workers, presets,
             memory_formats, params_path) -> dict:
    import torch

    from model import layout
    from pipeline.params import load_params
    from pipeline.schema import TrainParams

    formats = tuple(f.strip() for f in memory_formats.split(",") if f.strip())
    amps = TrainParams.model_fields["amp"].annotation.__args__
    unknown = {f for f in formats if f.partition("+")[0] not in {"keep", *layout.CHOICES}
               or ("+" in f and f.partition("+")[2] not in amps)}
    if unknown:
        raise click.BadParameter(f"unknown {sorted(unknown)}", param_hint="--memory-formats")
    own = load_params(params_path).model if params_path else None
    figures = {"torch_threads": torch.get_num_threads(), "workers": workers,
               "pose": pose is not None}
    for preset in presets.split(","):
        n, b = (steps, batch) if preset == "tiny" else (paper_steps, paper_batch)
        mp_ = own if own is not None and own.preset == preset else None
        figures[f"{preset}.model"] = params_path if mp_ is not None else "preset defaults"
        figures.update(bench_preset(preset, clips, pose, b, n, workers, mp_, formats))
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures
