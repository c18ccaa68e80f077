import subprocess
import sys

import pytest

from model.presets import PRESETS
from pipeline.params import ParamsError, load_params, validate_section


def test_presets_validate_and_resolve():
    for preset in PRESETS:
        r = validate_section("model", {"preset": preset}).resolved()
        assert set(PRESETS[preset]) <= set(r)


def test_paper_preset_has_the_papers_sizes():
    r = validate_section("model", {"preset": "paper"}).resolved()
    assert (r["backbone"], r["hidden_visual"], r["hidden_pose"], r["hidden_audio"]) == \
        ("resnet50", 1024, 1024, 512)
    assert (r["hidden_coattention"], r["heads"], r["layers"], r["ffn"], r["unet_depth"]) == \
        (512, 8, 6, 1024, 7)


def test_an_override_replaces_one_preset_value():
    r = validate_section("model", {"preset": "paper", "layers": 2}).resolved()
    assert r["layers"] == 2 and r["hidden_visual"] == 1024


@pytest.mark.parametrize("raw, key", [({"heads": 0}, "model.heads"),
                                      ({"hidden_visual": 100, "heads": 8}, "model.hidden_visual"),
                                      ({"coattention": "sum"}, "model.coattention"),
                                      ({"vggish_channels": [1, 2]}, "model.vggish_channels"),
                                      ({"unet_depth": 9}, "model.unet_depth")])
def test_a_bad_value_fails_with_its_key(raw, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        validate_section("model", raw)


def test_params_yaml_model_section_validates(root):
    assert load_params(root / "params.yaml").model.arch in ("tribert", "sop")


def test_config_does_not_import_torch():
    code = "import sys, pipeline.schema; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
