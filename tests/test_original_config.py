"""An original-format config.json with only its paths changed trains as it is."""

import json
from pathlib import Path

from masterocr.cli import main
from masterocr.formats.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def test_original_config_with_changed_paths_trains_the_paper_model(word_set, tmp_path, capsys):
    cfg = json.loads((REPO / "configs" / "paper.json").read_text())
    for key in ("train_dataset", "val_dataset"):
        cfg[key]["args"]["txt_file"] = str(word_set / "gt.txt")
        cfg[key]["args"]["img_root"] = str(word_set / "images")
    cfg["trainer"]["save_dir"] = str(tmp_path / "saved")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    # the original's epoch budget (600) is cut to one step with the original's own max_len_step field
    assert main(["train", "-c", str(path), "--set", "trainer.epochs=1", "trainer.max_len_step=1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 1
    ckpt = load_checkpoint(Path(summary["run_dir"]) / "checkpoint-latest.pth")
    assert ckpt["arch"] == "MASTER" and ckpt["model_config"]["d_model"] == 512
    assert sum(v.numel() for k, v in ckpt["model_state_dict"].items() if "running" not in k
               and "num_batches" not in k) > 59e6
