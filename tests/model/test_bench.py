from click.testing import CliRunner

from model.bench import make_inputs
from model.config import ModelParams
from pipeline.cli import main


def test_bench_model_is_a_tribert_bench_command():
    result = CliRunner().invoke(main, ["bench", "model", "--help"])
    assert result.exit_code == 0, result.output
    assert "--preset" in result.output and "--json" in result.output


def test_bench_inputs_follow_the_model_contract():
    inputs, feats, labels = make_inputs(1, 2, ModelParams())
    assert inputs["frames"].shape == (1, 2, 3, 224, 224, 3)
    assert inputs["pose"].shape == (1, 2, 3, 2, 256, 68) and inputs["absent"].dtype.is_floating_point is False
    assert feats["masks"].shape == (1, 2, 256, 256) and labels.shape == (1, 2, 21)
