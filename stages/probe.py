"""Stage ``probe``: supplement Table 4, an MLP instrument classifier on the frozen features of
``data/embeddings`` (raw inputs, erased-context and full TriBERT tokens per stream); writes
``results/probe/metrics.json`` and ``results/probe/table.md`` (:mod:`pipeline.evaluate.probe`)."""
from __future__ import annotations

import time

import click

from pipeline.data import checks
from pipeline.evaluate import probe
from pipeline import provenance
from pipeline.params import load_stage_params


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--embeddings", default="data/embeddings", show_default=True, type=click.Path())
@click.option("--out", default="results/probe", show_default=True, type=click.Path())
def main(params_path, embeddings, out):
    """Train and score the classification probes; write the metrics and the table."""
    p = load_stage_params(params_path)
    checks.output_path(out, folder=True)
    start, started = time.perf_counter(), time.time()
    try:
        metrics = probe.run(embeddings, p.probe, log=click.echo)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    probe.write(out, metrics, p.probe)
    provenance.write(out, provenance.collect("probe", p, inputs=[embeddings],
                                             seed=getattr(p.probe, "seed", None),
                                             started=started))
    click.echo(probe.table(metrics, p.probe.pooling, p.probe.repeats))
    click.echo(f"probe: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
