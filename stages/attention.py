"""Stage ``attention``: pictures of the visual attention maps over test frames (supplement
Fig. 2) from the pre-trained TriBERT, in ``results/attention/``
(:mod:`pipeline.evaluate.attention_figures`)."""
from __future__ import annotations

import click
import torch

from pipeline.evaluate import attention_figures
from pipeline.data import checks
from pipeline.atomic import atomic_dir
from pipeline.evaluate.embeddings import EmbedError, load_tribert
from pipeline.params import load_stage_params


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--clips", default="data/clips", show_default=True, type=click.Path())
@click.option("--model", "model_path", default="models/tribert.pt", show_default=True,
              type=click.Path())
@click.option("--out", default="results/attention", show_default=True, type=click.Path())
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["train", "val", "test"]))
def main(params_path, clips, model_path, out, split):
    """Draw the class-attention maps of a few clips, one png per clip plus a grid."""
    p = load_stage_params(params_path)
    checks.output_path(out, folder=True)
    checks.clip_shards(clips)
    torch.set_num_threads(1)
    try:
        model = load_tribert(model_path)
        with atomic_dir(out) as tmp:
            records = attention_figures.run(model, clips, tmp, p.attention, split)
    except (EmbedError, ValueError, FileNotFoundError, KeyError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"attention: {len(records)} clips of {split} -> {out}")


if __name__ == "__main__":
    main()
