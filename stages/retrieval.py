"""DVC stage ``retrieval``: the 5 cross-modal retrieval variants on the transformer and the
pre-transformer embeddings (paper Sec. 4.2, Table 3); writes ``results/retrieval/metrics.json``
(top-1/5/10 in percent, the random baseline and the pool size) and ``results/retrieval/table.md``.

    python -m stages.retrieval --params params.yaml

Reads the ``retrieval`` section. See pipeline/evaluate/retrieval.py.
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from pipeline.data import checks
from pipeline import provenance
from pipeline.evaluate import retrieval
from pipeline.params import load_stage_params


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--embeddings", "embeddings_dir", default="data/embeddings", show_default=True)
@click.option("--metrics", "metrics_path", default="results/retrieval/metrics.json", show_default=True)
@click.option("--table", "table_path", default="results/retrieval/table.md", show_default=True)
def main(params_path, embeddings_dir, metrics_path, table_path):
    """Train and evaluate the retrieval scorers."""
    params = load_stage_params(params_path)
    checks.output_path(metrics_path)
    checks.output_path(table_path)
    try:
        started = time.time()
        retrieval.run(embeddings_dir, metrics_path, table_path, params.retrieval, log=click.echo)
    except retrieval.EmbeddingsError as e:
        raise click.ClickException(str(e)) from None
    provenance.write(Path(metrics_path).parent, provenance.collect(
        "retrieval", params, inputs=[embeddings_dir], seed=getattr(params.retrieval, "seed", None),
        started=started))


if __name__ == "__main__":  # pragma: no cover
    main()
