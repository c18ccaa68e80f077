"""Cross-modal retrieval (pipeline/evaluate/retrieval.py, stage ``retrieval``) on tiny synthetic
embeddings files in the ``embed`` stage's format."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pipeline.evaluate import retrieval
from pipeline.params import ParamsError, validate_section
from pipeline.schema import RetrievalParams

TOKENS, DIM, LATENT = 7, 8, 6
FAST = RetrievalParams(width=32, lr=3e-3, epochs=25, batch_size=32, repeats=1, threads=1)


def write_split(path, videos: int, clips: int, rng: np.random.Generator, mixes: dict,
                shuffled: bool = False):
    """An embeddings file whose three modalities are fixed linear maps (``mixes``, shared by the
    splits) of one random latent per clip, so each is retrievable from the others; with
    ``shuffled`` every modality gets its own permutation of the clips, destroying the
    correspondence."""
    n = videos * clips
    video_id = np.repeat([f"vid{v:08d}" for v in range(videos)], clips).astype("S11")
    latent = rng.normal(size=(n, LATENT))
    with h5py.File(path, "w") as f:
        f["video_id"] = video_id
        f["clip"] = np.tile(np.arange(clips), videos).astype(np.int64)
        f["label"] = np.eye(21, dtype=np.uint8)[rng.integers(0, 21, n)]
        f["kind"] = np.array([b"solo"] * n, dtype="S4")
        f["valid/pose"] = np.ones((n, TOKENS), dtype=bool)
        for kind in retrieval.KINDS:
            for m in retrieval.MODALITIES:
                z = latent[rng.permutation(n)] if shuffled else latent
                x = z @ mixes[(kind, m)] + 0.1 * rng.normal(size=(n, TOKENS * DIM))
                f[f"{kind}/{m}"] = x.reshape(n, TOKENS, DIM).astype(np.float32)


def write_splits(directory, shuffled=False, seed=0, videos=(60, 12, 30)):
    rng = np.random.default_rng(seed)
    mixes = {(k, m): rng.normal(size=(LATENT, TOKENS * DIM))
             for k in retrieval.KINDS for m in retrieval.MODALITIES}
    directory.mkdir(parents=True, exist_ok=True)
    for split, count in zip(retrieval.SPLITS, videos):
        write_split(directory / f"{split}.h5", count, 2, rng, mixes, shuffled)
    return directory


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    return write_splits(tmp_path_factory.mktemp("aligned"))


def mean_top1(metrics):
    return np.mean([metrics[v.name][k]["top1"] for v in retrieval.VARIANTS for k in retrieval.KINDS])


def test_aligned_modalities_are_retrieved_well_above_random(aligned, tmp_path):
    metrics = retrieval.run(aligned, tmp_path / "m.json", tmp_path / "t.md", FAST, log=lambda s: None)
    assert metrics["pool"] == 30 and metrics["random"]["top1"] == pytest.approx(100 / 30, abs=0.01)
    worst = min(metrics[v.name][k]["top1"] for v in retrieval.VARIANTS for k in retrieval.KINDS)
    assert worst > 5 * metrics["random"]["top1"], metrics
    assert json.loads((tmp_path / "m.json").read_text()) == metrics
    table = (tmp_path / "t.md").read_text()
    assert "| vision+audio->pose |" in table and "Pre-Transformer" in table


def test_shuffled_correspondence_is_near_random(tmp_path):
    data = write_splits(tmp_path / "emb", shuffled=True)
    metrics = retrieval.run(data, tmp_path / "m.json", tmp_path / "t.md", FAST, log=lambda s: None)
    assert mean_top1(metrics) < 3 * metrics["random"]["top1"], metrics


def test_pool_covers_every_video_or_every_clip(aligned):
    test = retrieval.load_embeddings(aligned / "test.h5")
    videos = retrieval.pool_indices(test, "videos")
    assert len(videos) == 30 and (test.clip[videos] == 0).all()
    assert len(set(test.video_id[videos])) == 30
    assert len(retrieval.pool_indices(test, "clips")) == 60


def test_query_blind_scorer_gets_one_over_pool(aligned):
    """A scorer that always prefers the same candidate (it ignores the query, like the official
    evaluation that scores one candidate for every index) is right only for that candidate's own
    query: top-1 = 1 / pool, not 1."""
    torch.manual_seed(0)
    scorer = retrieval.Scorer((DIM,), DIM, 16)
    with torch.no_grad():
        scorer.query[0].weight.zero_()
        scorer.query[0].bias.fill_(1.0)
    pool = 40
    queries, results = torch.randn(pool, DIM), torch.randn(pool, DIM)
    ranks = retrieval.pool_ranks(scorer, [queries], results)
    assert sorted(ranks.tolist()) == list(range(pool))  # one fixed order of the candidates
    assert retrieval.topk_percent(ranks)["top1"] == pytest.approx(100 / pool, abs=0.01)


def test_ranks_are_computed_against_the_whole_pool_in_chunks():
    """Chunking the query rows (max_pairs) changes nothing: each row sees every candidate."""
    torch.manual_seed(1)
    scorer = retrieval.Scorer((5, 3), 4, 16)
    queries, results = [torch.randn(23, 5), torch.randn(23, 3)], torch.randn(23, 4)
    whole = retrieval.pool_ranks(scorer, queries, results)
    assert (retrieval.pool_ranks(scorer, queries, results, max_pairs=23 * 2) == whole).all()
    assert whole.max() > 10  # ranks reach beyond any n-way choice set


def test_hard_negatives_are_nearest_neighbours_never_the_positive_or_its_video():
    x = torch.arange(12, dtype=torch.float32)[:, None]     # points on a line
    codes = np.repeat(np.arange(6), 2)                      # videos of 2 clips: (0,1), (2,3), ...
    nn_same = retrieval.nearest_neighbours(x, codes, 3, exclude_same_video=False)
    assert set(nn_same[4]) == {3, 5, 2} or set(nn_same[4]) == {3, 5, 6}
    nn = retrieval.nearest_neighbours(x, codes, 3, exclude_same_video=True)
    assert set(nn[4]) == {2, 3, 6}  # 5 is clip 4's own video
    for i in range(12):
        assert i not in nn[i] and not (codes[nn[i]] == codes[i]).any()
    gen = np.random.default_rng(0)
    anchors = np.tile(np.arange(12), 50)
    for variant in retrieval.VARIANTS:
        negs = retrieval.sample_negatives(anchors, nn, codes, variant, True, gen)
        assert negs.shape == (len(anchors), variant.easy + variant.hard)
        assert not (codes[negs] == codes[anchors][:, None]).any()
        hard = negs[:, variant.easy:]
        assert all(set(h) <= set(nn[a]) for a, h in zip(anchors, hard))
        if variant.hard > 1:
            assert (hard[:, 0] != hard[:, 1]).all()  # drawn without replacement


def test_same_seed_gives_same_metrics(aligned, tmp_path):
    params = FAST.replace(epochs=3)
    quiet = lambda s: None  # noqa: E731
    a = retrieval.run(aligned, tmp_path / "a.json", tmp_path / "a.md", params, log=quiet)
    b = retrieval.run(aligned, tmp_path / "b.json", tmp_path / "b.md", params, log=quiet)
    assert a == b
    assert (tmp_path / "a.md").read_text().split("Training:")[0] == \
        (tmp_path / "b.md").read_text().split("Training:")[0]


def _corrupt(path, how):
    with h5py.File(path, "a") as f:
        if how == "missing":
            del f["transformer/pose"]
        elif how == "rank":
            del f["input/audio"]
            f["input/audio"] = np.zeros((60, 56), dtype=np.float32)
        elif how == "rows":
            del f["clip"]
            f["clip"] = np.zeros(3, dtype=np.int64)
        elif how == "kind":
            f["kind"][0] = b"trio"
        elif how == "nan":
            f["transformer/visual"][0, 0, 0] = np.nan


@pytest.mark.parametrize("how,message", [
    ("missing", "missing dataset 'transformer/pose'"),
    ("rank", "input/audio has shape (60, 56)"),
    ("rows", "clip has 3 rows"),
    ("kind", "kind has value b'trio'"),
    ("nan", "transformer/visual has non-finite values"),
])
def test_malformed_file_names_file_and_problem(tmp_path, how, message):
    data = write_splits(tmp_path / "emb")
    _corrupt(data / "val.h5", how)
    with pytest.raises(retrieval.EmbeddingsError) as e:
        retrieval.load_splits(data)
    assert str(e.value).startswith(str(data / "val.h5")) and message in str(e.value)


def test_stage_writes_metrics_and_table_from_params(aligned, tmp_path):
    from stages.retrieval import main

    params = tmp_path / "params.yaml"
    params.write_text("retrieval:\n  epochs: 2\n  width: 16\n  pool: clips\n  threads: 1\n"
                      "  repeats: 2\n")
    out = tmp_path / "results"
    res = CliRunner().invoke(main, ["--params", str(params), "--embeddings", str(aligned),
                                    "--metrics", str(out / "m.json"), "--table", str(out / "t.md")])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "m.json").read_text())
    assert set(metrics) == {v.name for v in retrieval.VARIANTS} | {"random", "pool"}
    assert metrics["pool"] == 60 and set(metrics["audio->pose"]) == set(retrieval.KINDS)
    assert set(metrics["audio->pose"]["input"]) == {"top1", "top5", "top10", "top1_std",
                                                     "top5_std", "top10_std"}
    assert "pool of 60 (every test clip)" in (out / "t.md").read_text()
    assert "Mean ± std over 2 scorers" in (out / "t.md").read_text()
    # no temporaries left; provenance.json says what made the metrics (issue 12, item 12)
    assert sorted(p.name for p in out.iterdir()) == ["m.json", "provenance.json", "t.md"]
    made = json.loads((out / "provenance.json").read_text())
    assert made["stage"] == "retrieval" and made["params"]["retrieval"]["epochs"] == 2
    assert made["data"]["inputs"][Path(aligned).as_posix()]["files"] > 0
    assert made["libraries"]["torch"] and made["machine"]["cpu"]["model"]


def test_stage_reports_a_malformed_file_as_a_clear_error(tmp_path):
    from stages.retrieval import main

    data = write_splits(tmp_path / "emb")
    (data / "test.h5").write_bytes(b"not hdf5")
    params = tmp_path / "params.yaml"
    params.write_text("retrieval:\n  epochs: 1\n  width: 16\n")
    out = tmp_path / "results"
    res = CliRunner().invoke(main, ["--params", str(params), "--embeddings", str(data),
                                    "--metrics", str(out / "m.json"), "--table", str(out / "t.md")])
    assert res.exit_code == 1 and f"{data / 'test.h5'}: not a readable HDF5 file" in res.output
    assert not (out / "m.json").exists()


def test_width_must_halve_three_times():
    with pytest.raises(ParamsError, match="retrieval.width: must be a multiple of 8"):
        validate_section("retrieval", {"width": 20})


def test_reads_what_the_embed_stage_writes(tmp_path):
    """The contract end to end: files written by pipeline.evaluate.embeddings from tiny real shards and a
    random-init tiny TriBERT load and run through one epoch of every scorer."""
    from analysis_data import write_clips, write_model, write_pose
    from pipeline.evaluate import embeddings
    from pipeline.schema import EmbedParams

    clips = write_clips(tmp_path / "clips")
    pose = write_pose(clips, tmp_path / "pose")
    model = write_model(tmp_path / "tribert.pt")
    embeddings.run(clips, pose, model, tmp_path / "emb", EmbedParams(batch_size=4, threads=1),
                   progress=False, log=lambda s: None)
    params = FAST.replace(epochs=1, width=16)
    metrics = retrieval.run(tmp_path / "emb", tmp_path / "m.json", tmp_path / "t.md", params,
                            log=lambda s: None)
    test = retrieval.load_embeddings(tmp_path / "emb" / "test.h5")
    assert metrics["pool"] == len(set(test.video_id)) >= 2
    assert set(metrics["vision+audio->pose"]) == set(retrieval.KINDS)


def test_repeats_report_mean_and_std_of_the_scorers():
    runs = [{"top1": 10.0, "top5": 50.0, "top10": 100.0}, {"top1": 30.0, "top5": 50.0, "top10": 90.0}]
    assert retrieval.mean_std(runs) == {"top1": 20.0, "top1_std": 10.0, "top5": 50.0,
                                        "top5_std": 0.0, "top10": 95.0, "top10_std": 5.0}


def test_a_one_video_val_split_keeps_the_last_epoch(tmp_path):
    data = write_splits(tmp_path / "emb", videos=(8, 1, 3))
    splits = retrieval.load_splits(data)
    metrics, details = retrieval.evaluate_all(splits, FAST.replace(epochs=3),
                                              log=lambda s: None)
    assert metrics["pool"] == 3
    assert all(details[v.name][k]["epochs"] == [3] for v in retrieval.VARIANTS for k in retrieval.KINDS)
    assert np.isnan(details["audio->pose"]["input"]["val_mrr"])


def test_a_one_video_test_split_is_an_error_naming_the_file(tmp_path):
    data = write_splits(tmp_path / "emb", videos=(8, 2, 1))
    with pytest.raises(retrieval.EmbeddingsError, match=r"test\.h5: the videos pool has 1 item"):
        retrieval.evaluate_all(retrieval.load_splits(data), FAST, log=lambda s: None)


def test_the_figures_do_not_depend_on_the_worker_count(aligned):
    """The scorers run over ``jobs`` processes; inline gives the same ranks and chosen epochs."""
    params = FAST.replace(epochs=3)
    splits = retrieval.load_splits(aligned)
    quiet = lambda s: None  # noqa: E731
    one, d1 = retrieval.evaluate_all(splits, params.replace(jobs=1), log=quiet)
    two, d2 = retrieval.evaluate_all(splits, params.replace(jobs=2), log=quiet)
    assert one == two
    for v in d1:
        for kind in d1[v]:
            assert (d1[v][kind]["epochs"], d1[v][kind]["val_mrr"]) == \
                (d2[v][kind]["epochs"], d2[v][kind]["val_mrr"])
