"""Turn a training checkpoint into the shipped weights: weights/<name>.safetensors (fp16) + config + charset.

    python scripts/ship_weights.py CHECKPOINT --name master_medium [--dtype fp16|fp32]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from masterocr.assets import WEIGHTS_DIR
from masterocr.formats.checkpoint import load_checkpoint
from masterocr.formats.weights import save_weights

WEIGHTS = WEIGHTS_DIR
TRAINING_DATA = "synthetic words rendered by masterocr.data.synth (no real images)"


def write_shipped(state: dict, model_config: dict, charset: dict, out: Path, fp16: bool, metadata: dict) -> None:
    """`out` (.safetensors, floats cast to fp16 when asked) with its config and charset beside it, as shipped."""
    save_weights(
        state,
        model_config,
        charset["keys"],
        out,
        case_sensitive=charset.get("case_sensitive", True),
        dtype=torch.float16 if fp16 else None,
        metadata=metadata,
    )
    stem = out.with_suffix("")
    Path(f"{stem}.config.json").write_text(json.dumps(model_config, indent=2) + "\n")
    Path(f"{stem}.keys.txt").write_text(charset["keys"], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--name", required=True, help="e.g. master_medium (the default model) or master_small")
    parser.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    args = parser.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    meta = {
        "step": ckpt.get("step"),
        "epoch": ckpt.get("epoch"),
        "monitor_best": ckpt.get("monitor_best"),
        "train_config": ckpt.get("config"),
        "license": "MIT",
        "training_data": TRAINING_DATA,
    }
    WEIGHTS.mkdir(exist_ok=True)
    out = WEIGHTS / f"{args.name}.safetensors"
    write_shipped(ckpt["model_state_dict"], ckpt["model_config"], ckpt["charset"], out, args.dtype == "fp16", meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), step {ckpt.get('step')}")


if __name__ == "__main__":
    main()
