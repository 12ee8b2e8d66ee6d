"""Shipped weights: safetensors with the model config and charset in its metadata (no pickle)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from masterocr.errors import UserError, require_regular_file


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks: how shipped files name the weights they came from."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(
    state_dict: dict[str, torch.Tensor],
    model_config: dict,
    charset_keys: str,
    path: str | Path,
    *,
    case_sensitive: bool = True,
    dtype: torch.dtype | None = torch.float16,
    metadata: dict | None = None,
) -> None:
    """Write weights (floats cast to `dtype`) and their config/charset as safetensors metadata."""
    tensors = {}
    for k, v in state_dict.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    meta = {
        "format": "masterocr",
        "model_config": json.dumps(model_config),
        "charset": json.dumps({"keys": charset_keys, "case_sensitive": case_sensitive}),
        **{k: json.dumps(v) for k, v in (metadata or {}).items()},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def read_header(path: str | Path) -> dict:
    """The checkpoint shape of a safetensors file without its tensors: model_config, charset, metadata and
    `_shapes` (name -> shape, from the header), so sizes can be checked before anything is allocated."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise UserError(f"weights file {path} does not exist")
    require_regular_file(path, "weights file", "pass a .safetensors file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable safetensors file ({exc})") from exc
    if "model_config" not in meta or "charset" not in meta:
        raise UserError(f"{path} lacks masterocr metadata (model_config, charset); was it saved by masterocr?")
    try:
        extra = {k: json.loads(v) for k, v in meta.items() if k not in ("format", "model_config", "charset")}
        model_config, charset = json.loads(meta["model_config"]), json.loads(meta["charset"])
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{path}: its metadata is not valid JSON ({exc}); re-export the weights") from exc
    if not isinstance(model_config, dict) or not isinstance(charset, dict):
        raise UserError(f"{path}: metadata model_config and charset must be JSON objects; re-export the weights")
    return {"model_config": model_config, "charset": charset, "metadata": extra, "_shapes": shapes,
            "_path": str(path)}


def load_weights(path: str | Path) -> dict:
    """Read safetensors weights into the checkpoint shape: model_state_dict (fp32), model_config, charset."""
    ckpt = read_header(path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable safetensors file ({exc})") from exc
    ckpt["model_state_dict"] = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    del ckpt["_shapes"]
    return ckpt


# what every shipped model was trained on, written into its metadata
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
