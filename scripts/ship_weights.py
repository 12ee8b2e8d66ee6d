"""Turn a training checkpoint into the shipped weights: weights/<name>.safetensors (fp16) + config + charset.

    python scripts/ship_weights.py CHECKPOINT --name master_medium [--dtype fp16|fp32] [--cpu-hours H]
                                   [--decode ctc|attention|joint]

The metadata keeps what the weights were shown (lines, characters, views per character, seconds): a run that
finetunes from them goes on counting.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from masterocr.assets import WEIGHTS_DIR
from masterocr.formats.checkpoint import load_checkpoint
from masterocr.formats.weights import TRAINING_DATA, write_shipped
from masterocr.train.state import shown

WEIGHTS = WEIGHTS_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--name", required=True, help="e.g. master_medium (the default model) or master_small")
    parser.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    parser.add_argument("--out-dir", default=str(WEIGHTS), help="where <name>.safetensors goes (weights/)")
    parser.add_argument("--decode", choices=["attention", "ctc", "joint"], default=None,
                        help="the shipped model's default decoding mode (default: the checkpoint config's)")
    parser.add_argument("--cpu-hours", type=float, default=None,
                        help="the CPU-hours of training behind the weights, all chunks together (recorded)")
    args = parser.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    meta = {
        "step": ckpt.get("step"),
        "epoch": ckpt.get("epoch"),
        "monitor_best": ckpt.get("monitor_best"),
        "train_config": ckpt.get("config"),
        "license": "MIT",
        "training_data": TRAINING_DATA,
        **shown(ckpt),
        **({"cpu_hours": args.cpu_hours} if args.cpu_hours is not None else {}),
    }
    model_config = dict(ckpt["model_config"])
    if args.decode:
        model_config["decode"] = args.decode
    out = Path(args.out_dir) / f"{args.name}.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_shipped(ckpt["model_state_dict"], model_config, ckpt["charset"], out, args.dtype == "fp16", meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), step {ckpt.get('step')}")


if __name__ == "__main__":
    main()
