"""Stage ``embed``: token embeddings of every train, val and test clip from the pre-trained
TriBERT (``data/embeddings/{train,val,test}.h5``; format in :mod:`pipeline.evaluate.embeddings`), for
retrieval (paper 4.2) and the classification probe (supplement Table 4)."""
from __future__ import annotations

import time

import click

from pipeline.data import checks
from pipeline.evaluate import embeddings
from pipeline.params import load_stage_params


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--clips", default="data/clips", show_default=True, type=click.Path())
@click.option("--pose", default="data/pose", show_default=True, type=click.Path(),
              help='Row-aligned pose shards ("" = none: every person absent).')
@click.option("--model", "model_path", default="models/tribert.pt", show_default=True,
              type=click.Path())
@click.option("--out", default="data/embeddings", show_default=True, type=click.Path())
@click.option("--progress/--no-progress", default=True, show_default=True)
def main(params_path, clips, pose, model_path, out, progress):
    """Dump the final, pre-transformer and erased-context tokens of every clip."""
    p = load_stage_params(params_path)
    checks.input_file(model_path, "model package", "run the train stage")
    checks.output_path(out, folder=True)
    checks.clip_shards(clips)
    checks.pose_shards(pose or None)
    start = time.perf_counter()
    try:
        counts = embeddings.run(clips, pose or None, model_path, out, p.embed,
                                progress=progress, log=click.echo)
    except (embeddings.EmbedError, ValueError, FileNotFoundError, KeyError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"embed: {sum(counts.values())} clips in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
