"""Grow shipped weights into a deeper preset that starts out reading exactly as they do (masterocr.model.grow).

python scripts/grow_weights.py weights/master_medium.safetensors --preset large --out /tmp/large_init.safetensors
masterocr train -c configs/synth_gpu_large.json -r /tmp/large_init.safetensors --finetune
"""

from __future__ import annotations

import argparse
from pathlib import Path

from masterocr.formats.weights import load_weights, save_weights
from masterocr.model import MasterConfig, get_preset
from masterocr.model.grow import grow_state_dict


def grow_file(source: Path, preset: str, out: Path, seed: int = 0) -> MasterConfig:
    """Write `out`: the weights of `source` grown into `preset` (fp32), with the grown config and same charset."""
    ckpt = load_weights(source)
    src = MasterConfig.from_dict(ckpt["model_config"])
    dst = get_preset(preset)
    num_classes = ckpt["model_state_dict"]["generator.weight"].shape[0]
    state = grow_state_dict(ckpt["model_state_dict"], src, dst, num_classes, seed=seed)
    charset = ckpt["charset"]
    save_weights(
        state,
        dst.to_dict(),
        charset["keys"],
        out,
        case_sensitive=charset.get("case_sensitive", True),
        dtype=None,
        metadata={"grown_from": source.name},
    )
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a .safetensors written by masterocr")
    parser.add_argument("--preset", default="large")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seeds the new layers' random tensors")
    args = parser.parse_args()
    dst = grow_file(args.source, args.preset, args.out, args.seed)
    print(f"wrote {args.out}: {args.preset} (blocks {dst.blocks}, {dst.num_decoder_layers} decoder layers)")


if __name__ == "__main__":
    main()
