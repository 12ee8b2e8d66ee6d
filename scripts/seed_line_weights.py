"""Seed the line preset from trained word weights, so line training starts from a model that already reads.

python scripts/seed_line_weights.py weights/master_medium.safetensors --out runs/line_seed.safetensors
masterocr train -c configs/line_cpu.json -r runs/line_seed.safetensors --finetune

The backbone and decoder are grown into the line preset's depth (masterocr.model.grow: the added blocks start
as identities); the class rows of the characters both charsets hold keep their trained values, the new
characters (hanzi, accented letters, CJK punctuation) start fresh. The decoder must still learn the line
preset's column-major memory order and its longer outputs: this is a start, not a line model.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from masterocr.charset import Charset
from masterocr.formats.weights import load_weights, save_weights
from masterocr.model import MASTER, MasterConfig, get_preset
from masterocr.model.grow import GROWABLE, carry_classes, grow_state_dict

# fields that change how inputs are read, not the shape of any tensor: the word model's values give way
SHAPELESS = ("img_w", "keep_ratio", "variable_width", "max_len")


def seed_file(source: Path, charset_path: Path, out: Path, preset: str = "line", seed: int = 0) -> int:
    """Write `out` (fp32 safetensors of `preset` with the charset of `charset_path`); returns rows carried."""
    ckpt = load_weights(source)
    src = MasterConfig.from_dict(ckpt["model_config"])
    dst = get_preset(preset)
    like_dst = dataclasses.replace(src, **{f: getattr(dst, f) for f in SHAPELESS})
    src_keys = ckpt["charset"]["keys"]
    old_classes = ckpt["model_state_dict"]["generator.weight"].shape[0]
    grown = grow_state_dict(ckpt["model_state_dict"], like_dst, dst, old_classes, seed=seed)
    charset = Charset.from_file(charset_path)
    fresh = MASTER(dst, len(charset)).state_dict()
    grown = {k: v for k, v in grown.items() if k in fresh}
    state = carry_classes(grown, src_keys, charset.keys, fresh)
    save_weights(state, dst.to_dict(), charset.keys, out, dtype=None, metadata={"seeded_from": source.name})
    return 4 + sum(ch in set(src_keys) for ch in charset.keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="word weights written by masterocr (.safetensors)")
    parser.add_argument("--charset", type=Path, default=Path("src/masterocr/charsets/zh_latin.txt"))
    parser.add_argument("--preset", default="line")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seeds the new layers' and classes' random tensors")
    args = parser.parse_args()
    carried = seed_file(args.source, args.charset, args.out, args.preset, args.seed)
    print(f"wrote {args.out}: preset {args.preset}, {carried} class rows carried from {args.source.name}")
    print(f"(grown fields: {', '.join(GROWABLE)}; read-only fields: {', '.join(SHAPELESS)})")


if __name__ == "__main__":
    main()
