"""The alphapose backend up to the boundary: configuration errors, the command line, and the
result file of a run read back (a stand-in script writes a fixture where AlphaPose would)."""
import json
import sys

import pytest

from pipeline.pose.alphapose_backend import AlphaposeUnavailable, check_config, command, run_alphapose
from pipeline.schema import AlphaposeParams


def test_unconfigured_explains_the_annotations_route():
    with pytest.raises(AlphaposeUnavailable, match="keypoints.backend: annotations"):
        check_config(AlphaposeParams())


def test_missing_checkpoint_is_named(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "demo_inference.py").write_text("")
    (tmp_path / "cfg.yaml").write_text("")
    p = AlphaposeParams(script=str(tmp_path / "scripts" / "demo_inference.py"), cfg="cfg.yaml",
                        checkpoint="pretrained_models/halpe68.pth")
    with pytest.raises(AlphaposeUnavailable, match=r"checkpoint: .*halpe68.pth does not exist"):
        check_config(p)


def test_command_line(tmp_path):
    p = AlphaposeParams(script="/opt/AlphaPose/scripts/demo_inference.py", cfg="configs/h68.yaml",
                        checkpoint="pretrained_models/h68.pth", python="/opt/ap/bin/python", gpus="0")
    cmd = command(tmp_path / "v.mp4", tmp_path / "out", p)
    assert cmd == ["/opt/ap/bin/python", "/opt/AlphaPose/scripts/demo_inference.py",
                   "--cfg", "configs/h68.yaml", "--checkpoint", "pretrained_models/h68.pth",
                   "--video", str(tmp_path / "v.mp4"), "--outdir", str(tmp_path / "out"),
                   "--gpus", "0", "--sp"]


STAND_IN = """
import json, sys
args = sys.argv[1:]
out = args[args.index("--outdir") + 1]
kp = [v for j in range(68) for v in (10.0 + j, 20.0, 0.9)]
dets = [{"image_id": "0.jpg", "category_id": 1, "keypoints": kp, "score": 2.1,
         "box": [10, 5, 80, 120], "idx": [1.0]},
        {"image_id": "1.jpg", "category_id": 1, "keypoints": kp, "score": 2.0,
         "box": [10, 5, 80, 120], "idx": [1.0]}]
json.dump(dets, open(out + "/alphapose-results.json", "w"))
"""


def _installation(tmp_path, script_text):
    root = tmp_path / "AlphaPose"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "demo_inference.py").write_text(script_text)
    (root / "configs").mkdir()
    (root / "configs" / "h68.yaml").write_text("")
    (root / "h68.pth").write_text("")
    return AlphaposeParams(script=str(root / "scripts" / "demo_inference.py"), cfg="configs/h68.yaml",
                           checkpoint="h68.pth", python=sys.executable)


def test_run_reads_the_result_file(tmp_path):
    frames = run_alphapose(tmp_path / "v.mp4", _installation(tmp_path, STAND_IN))
    assert sorted(frames) == [0, 1]
    assert frames[1][0].keypoints.shape == (68, 3) and frames[1][0].box.tolist() == [10, 5, 90, 125]


def test_failed_run_reports_its_output_and_command(tmp_path):
    p = _installation(tmp_path, "import sys; sys.exit('CUDA not available')")
    with pytest.raises(RuntimeError, match="(?s)AlphaPose failed.*CUDA not available.*command: "):
        run_alphapose(tmp_path / "v.mp4", p)


def test_result_fixture_written_by_alphapose_parses(tmp_path):
    # AlphaPose's own writer: image_id "<n>.jpg", idx as a list, person score above 1
    from pipeline.pose.annotations import read_alphapose

    kp = [v for j in range(68) for v in (1.0 * j, 2.0, 0.5)]
    (tmp_path / "alphapose-results.json").write_text(json.dumps(
        [{"image_id": "12.jpg", "category_id": 1, "keypoints": kp, "score": 2.7,
          "box": [0, 0, 67, 3], "idx": [3.0]}]))
    det = read_alphapose(tmp_path / "alphapose-results.json")[12][0]
    assert det.score == pytest.approx(2.7)
