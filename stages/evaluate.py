"""Stages ``evaluate`` and ``evaluate_music11``: separation on the test split (paper Table 1 and
Table 2) with fixed, seeded single-source and multi-source mixtures (:mod:`pipeline.evaluate.separation`).

Writes into ``--out`` (results/evaluate, results/evaluate_music11):

- ``metrics.json`` (DVC metrics): per set, the means (95% bootstrap intervals) and medians of
  SDR/SIR/SAR/SI-SDR, the mixture baseline SDR_mix, the improvement over it, the ratio-mask,
  swapped-video and ideal-binary-mask SDRs of the same mixtures, the mask gap, failures;
- ``per_class.json``: per set and class, mean and median over the sources of that class;
- ``class_pairs.csv``: per set and pair of classes, the improvement over the mixture and the
  shares of parts separated and handed back (worst pairs first);
- ``mixtures.csv``: one row per mixture (videos, classes, per-source scores, skip reason);
- ``examples/`` (wavs, frames, mask and spectrogram pictures, ``index.html``) and
  ``qualitative.png`` (paper Fig. 3), written after the tables so a failing picture never
  loses the metrics (:mod:`pipeline.evaluate.report`).
"""
from __future__ import annotations

import time
from pathlib import Path

import click
import torch

from pipeline import atomic, provenance
from pipeline.data import checks
from pipeline.classes import MUSIC11
from pipeline.params import load_stage_params

SUBSETS = {"all": None, "music11": MUSIC11}


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--model", "model_path", default="models/tribert.pt", show_default=True,
              type=click.Path())
@click.option("--clips", default="data/clips", show_default=True, type=click.Path())
@click.option("--pose", default="data/pose", show_default=True, type=click.Path(),
              help="Row-aligned pose shards (read only for a model with a pose stream).")
@click.option("--out", default="results/evaluate", show_default=True, type=click.Path())
@click.option("--subset", type=click.Choice(sorted(SUBSETS)), default="all", show_default=True,
              help="Test clips whose classes all lie in this set (music11: paper Table 2).")
@click.option("--progress/--no-progress", default=True, show_default=True)
def main(params_path, model_path, clips, pose, out, subset, progress):
    """Separate fixed test mixtures with a model package and score them."""
    params = load_stage_params(params_path)
    p = params.evaluate
    checks.input_file(model_path, "model package", "run the train stage")
    checks.output_path(out, folder=True)
    checks.clip_shards(clips)
    checks.pose_shards(pose or None)
    from pipeline.evaluate import separation as evaluate, report

    torch.set_num_threads(p.threads)
    out = Path(out)
    atomic.clean_temporaries(out)
    start, started = time.monotonic(), time.time()
    try:
        run = evaluate.evaluate(model_path, clips, pose or None, p, SUBSETS[subset],
                                progress=progress)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise click.ClickException(str(e)) from None
    table = evaluate.write_tables(run, out)
    provenance.write(out, provenance.collect(
        "evaluate" if subset == "all" else f"evaluate_{subset}", params,
        inputs=[model_path, clips, pose], seed=p.seed, started=started))
    click.echo(evaluate.summary(table))
    for problem in report.write_report(run, out, p):
        click.echo(f"evaluate: {problem}", err=True)
    click.echo(f"evaluate: {sum(map(len, run.mixtures.values()))} mixtures in "
               f"{time.monotonic() - start:.1f} s ({p.backend}); wrote {out}")


if __name__ == "__main__":
    main()
