"""Average the weights of several checkpoints of one model (a "model soup", Wortsman et al. 2022).

    python scripts/average_weights.py A.safetensors B.safetensors [...] --out weights/master_medium.safetensors

Inputs are shipped weights (.safetensors) or training checkpoints (.pth, or a run folder), all of one
architecture and charset, e.g. the ends of two finetuning runs that started from the same weights (averaging
unrelated trainings gives noise). Floats are averaged in fp32, then cast to --dtype; the output gets its config
and charset beside it in the layout `scripts/ship_weights.py` writes, and its metadata names the inputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from masterocr.errors import UserError
from masterocr.formats.checkpoint import load_checkpoint
from masterocr.formats.weights import TRAINING_DATA, write_shipped

# As in scripts/ship_weights.py (each script stands alone; tests/test_average_weights.py checks the two agree).



def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of float tensors; other tensors (counters) are taken from the last state."""
    if not states:
        raise UserError("nothing to average: pass at least two checkpoints")
    keys = set(states[0])
    for i, s in enumerate(states[1:], 1):
        if set(s) != keys:
            raise UserError(f"input {i + 1} has other parameters than input 1 ({sorted(set(s) ^ keys)[:3]} ...)")
    out = {}
    for k in states[0]:
        shapes = {tuple(s[k].shape) for s in states}
        if len(shapes) > 1:
            raise UserError(f"parameter {k} has different shapes across the inputs: {sorted(shapes)}")
        if states[0][k].is_floating_point():
            out[k] = torch.stack([s[k].float() for s in states]).mean(0)
        else:
            out[k] = states[-1][k]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help=".safetensors, .pth or run folders (two or more)")
    parser.add_argument("--out", required=True, help="output .safetensors")
    parser.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    args = parser.parse_args(argv)
    try:
        if len(args.inputs) < 2:
            raise UserError("pass two or more checkpoints to average")
        out = Path(args.out)
        if out.suffix != ".safetensors":
            raise UserError(f"--out {out} must end in .safetensors")
        ckpts = [load_checkpoint(p) for p in args.inputs]
        first = ckpts[0]
        for p, c in zip(args.inputs[1:], ckpts[1:]):
            if c["model_config"] != first["model_config"]:
                raise UserError(f"{p} has another model config than {args.inputs[0]}; average one architecture")
            if c["charset"].get("keys") != first["charset"].get("keys"):
                raise UserError(f"{p} has another charset than {args.inputs[0]}")
        state = average_state_dicts([c["model_state_dict"] for c in ckpts])
        last = ckpts[-1]
        last_meta = last.get("metadata", {})
        meta = {
            "averaged_from": [
                {"file": Path(p).name, "step": c.get("step", c.get("metadata", {}).get("step"))}
                for p, c in zip(args.inputs, ckpts)
            ],
            "train_config": last.get("config", last_meta.get("train_config")),
            "license": last_meta.get("license", "MIT"),
            "training_data": last_meta.get("training_data", TRAINING_DATA),
        }
        write_shipped(state, first["model_config"], first["charset"], out, args.dtype == "fp16", meta)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), the mean of {len(ckpts)} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
