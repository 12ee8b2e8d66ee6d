"""Where the shipped files are: the weights travel inside the package (package data), so a wheel carries them.

The repository's `weights/` is a link to the same folder, so the documented paths work in a checkout too.
`MASTEROCR_WEIGHTS` (a .safetensors file) replaces the default model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from masterocr.errors import UserError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"  # the recipes (the repository's configs/ links here)
WEIGHTS_ENV = "MASTEROCR_WEIGHTS"


@dataclass(frozen=True)
class ShippedModel:
    """The files of one shipped model, by name under WEIGHTS_DIR."""

    weights: str  # safetensors with config and charset in its metadata
    onnx: str  # folder of its int8 ONNX graphs (scripts/ship_onnx.py writes it)


# shipped models by the name a user chooses them by (`--model word`, `-r medium`, `--checkpoint small`): "word"
# (the medium preset) reads word crops, "small" faster and less exactly, "line" text lines (configs/line_cpu.json
# trains one; its files are absent from a release that does not ship it)
SHIPPED_MODELS: dict[str, ShippedModel] = {
    "word": ShippedModel(weights="master_medium.safetensors", onnx="master_medium_int8"),
    "medium": ShippedModel(weights="master_medium.safetensors", onnx="master_medium_int8"),
    "small": ShippedModel(weights="master_small.safetensors", onnx="master_small_int8"),
    "line": ShippedModel(weights="master_line.safetensors", onnx="master_line_int8"),
}
DEFAULT_MODEL = "word"
DEFAULT_WEIGHTS_NAME = SHIPPED_MODELS[DEFAULT_MODEL].weights
SHIPPED_ONNX_NAME = SHIPPED_MODELS[DEFAULT_MODEL].onnx


def _shipped(name: str) -> ShippedModel:
    if name not in SHIPPED_MODELS:
        raise UserError(f"no shipped model {name!r}; choose one of {', '.join(SHIPPED_MODELS)}")
    return SHIPPED_MODELS[name]


def shipped_model(name: str = DEFAULT_MODEL) -> Path:
    """The weights file of the shipped model `name` (it may be missing: callers check)."""
    return WEIGHTS_DIR / _shipped(name).weights


def shipped_onnx(name: str = DEFAULT_MODEL) -> Path:
    """The folder of the shipped model's int8 ONNX graphs (it may be missing: callers check)."""
    return WEIGHTS_DIR / _shipped(name).onnx


def shipped_files(name: str, onnx: bool = False) -> Path:
    """The shipped model `name`'s weights (or its int8 ONNX folder), checked to exist: a one-line error says
    how to get a model when this release does not carry it."""
    path = shipped_onnx(name) if onnx else shipped_model(name)
    if onnx and not path.exists() and shipped_model(name).exists():
        # the line model's graphs do not fit the wheel's size budget: they are made on the user's machine
        raise UserError(
            f"the {name!r} model's int8 ONNX graphs ({path.name}) are not in this release; write them with "
            f"`masterocr export --checkpoint {name} --int8 --out {path.name}` and read with `--backend onnx "
            f"--checkpoint {path.name}`, or read with --backend torch"
        )
    if not path.exists():
        raise UserError(
            f"the {name!r} model is not shipped in this release ({path.name} is missing); train one "
            "(docs/training.md; `masterocr init line` writes a line recipe) and pass its file with --checkpoint"
        )
    return path


def shipped_name(path_or_name: str | os.PathLike) -> str | None:
    """The shipped model's name when `path_or_name` is one (`medium`, `small`, `line`, `word`) and no file of
    that name is in the working folder (a file there is what the user means); else None."""
    text = str(path_or_name)
    return text if text in SHIPPED_MODELS and not Path(text).exists() else None


def model_file(path_or_name: str | os.PathLike) -> Path:
    """A model file given by path, or a shipped model's weights by name (`shipped_name`), so `-r medium` works
    from any folder."""
    name = shipped_name(path_or_name)
    return shipped_files(name) if name else Path(path_or_name)


# the recipes `masterocr init NAME` writes by a short name; any file name in CONFIGS_DIR (less .json) works too
CONFIG_NAMES = {"finetune": "finetune_example", "line": "line_cpu", "synth": "synth_cpu"}


def shipped_config(name: str) -> Path:
    """A shipped training config by short name (CONFIG_NAMES) or file name without .json."""
    path = CONFIGS_DIR / f"{CONFIG_NAMES.get(name, name)}.json"
    if "/" in name or "\\" in name or not path.is_file():
        known = ", ".join([*CONFIG_NAMES, *sorted(p.stem for p in CONFIGS_DIR.glob("*.json"))])
        raise UserError(f"no shipped config {name!r}; choose one of {known}")
    return path


def weights_override() -> Path | None:
    """$MASTEROCR_WEIGHTS as a path, None when unset."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else None


def default_weights_path() -> Path:
    """The default model: $MASTEROCR_WEIGHTS, else the shipped word model; an error when the file is missing."""
    path = weights_override() or shipped_model()
    if not path.exists():
        raise UserError(
            f"no shipped weights at {path}; pass --checkpoint, or set {WEIGHTS_ENV} to a .safetensors file"
        )
    return path
