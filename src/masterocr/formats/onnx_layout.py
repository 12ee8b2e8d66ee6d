"""The exported ONNX folder: its file names and its model.json (config, charset, provenance).

* ``encoder.onnx``: images (B, C, H, W) -> mem_kv (L, 2, B, heads, S, Dh), the cross-attention keys/values of
  every decoder layer, stacked (dynamic batch).
* ``decoder_step.onnx``: token (B, 1) int64, step () int64 (the position, a graph input, not a constant),
  past (L, 2, B, heads, T, Dh) with dynamic T (T = 0 at the first step), mem_kv -> logits (B, V) and
  present (L, 2, B, heads, T + 1, Dh).
* A model with the CTC branch (model_config.ctc_weight > 0): the encoder also outputs ``ctc_logits``
  (B, F, V) float32, the branch's frame logits (F = 2 frames per memory column, blank = PAD). Logits, not
  their argmax: joint decoding scores any prefix the decoder proposes, which needs every class's
  probability at every frame; ctc decoding takes the best path of the same output on the host.
* ``model.json``: {"format", "opset", "model_config", "charset": {"keys", "case_sensitive"}, "num_classes",
  "source", "ctc" (with the branch: {"output", "frames_per_column", "blank"}), and after quantization
  "quantized"}.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from masterocr.assets import shipped_onnx, weights_override
from masterocr.charset import Charset
from masterocr.errors import UserError, require_regular_file
from masterocr.files import read_json
from masterocr.formats.load import charset_of
from masterocr.formats.weights import file_sha256
from masterocr.model import MasterConfig
from masterocr.model.ctc import BLANK, FRAMES_PER_COLUMN

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder_step.onnx"
META_FILE = "model.json"
LAYOUT_FILES = (ENCODER_FILE, DECODER_FILE, META_FILE)
CTC_OUTPUT = "ctc_logits"
FORMAT = "masterocr-onnx"


def export_meta(cfg: MasterConfig, charset: Charset, num_classes: int, opset: int, source: str | None) -> dict:
    """The model.json of a freshly exported folder."""
    meta = {
        "format": FORMAT,
        "opset": opset,
        "model_config": cfg.to_dict(),
        "charset": {"keys": charset.keys, "case_sensitive": charset.case_sensitive},
        "num_classes": num_classes,
        "source": source,
    }
    if cfg.ctc_weight > 0:
        meta["ctc"] = {"output": CTC_OUTPUT, "frames_per_column": FRAMES_PER_COLUMN, "blank": BLANK}
    return meta


def read_meta(folder: str | Path) -> dict:
    """model.json of an exported folder, its fields checked; a one-line UserError naming the field when it is
    not one."""
    folder = Path(folder)
    path = folder / META_FILE
    if not folder.is_dir() or not path.exists():
        raise UserError(f"{folder} is not an exported model folder (no {META_FILE}); run `masterocr export` first")
    for name in LAYOUT_FILES:  # a FIFO would block onnxruntime's reader: refused without opening
        if (folder / name).is_symlink() or (folder / name).exists():
            require_regular_file(folder / name, "model file", "export the model again with `masterocr export`")
    meta = read_json(path, "model file", "export the model again with `masterocr export`")
    check_meta(meta, path)
    return meta


# field -> (allowed types, what to say); fields absent from model.json are checked only when required
META_FIELDS: dict[str, tuple[tuple[type, ...], str, bool]] = {
    "model_config": ((dict,), "a JSON object", True),
    "charset": ((dict,), "a JSON object {keys, case_sensitive}", True),
    "format": ((str,), "a string", False),
    "opset": ((int,), "an integer", False),
    "num_classes": ((int,), "an integer", False),
    "source": ((str, type(None)), "a string or null", False),
}


def check_meta(meta: object, path: Path) -> None:
    """Raise a UserError naming `path` and the first bad field of a model.json: types, charset, model_config."""
    fix = "export the model again with `masterocr export`"
    if not isinstance(meta, dict):
        raise UserError(f"{path} holds {type(meta).__name__}, not a JSON object; {fix}")
    for name, (types, want, required) in META_FIELDS.items():
        if name not in meta:
            if required:
                raise UserError(f"{path} lacks the field {name!r}; {fix}")
            continue
        value = meta[name]
        if not isinstance(value, types) or (int in types and isinstance(value, bool)):
            raise UserError(f"{path}: field {name!r} is {type(value).__name__} {str(value)[:60]!r}, expected "
                            f"{want}; {fix}")
    cs = meta["charset"]
    if not isinstance(cs.get("keys"), str) or not cs["keys"]:
        raise UserError(f"{path}: field 'charset.keys' must be a non-empty string; {fix}")
    if not isinstance(cs.get("case_sensitive", True), bool):
        raise UserError(f"{path}: field 'charset.case_sensitive' must be true or false; {fix}")
    try:
        cfg, charset = config_and_charset(meta)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: field 'model_config' cannot describe a model ({exc}); {fix}") from exc
    if "num_classes" in meta and meta["num_classes"] != len(charset):
        raise UserError(f"{path}: field 'num_classes' is {meta['num_classes']} but the charset has "
                        f"{len(charset)} classes; {fix}")


def write_meta(folder: str | Path, meta: dict) -> None:
    """Write model.json into `folder` (UTF-8, indented)."""
    (Path(folder) / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")


def config_and_charset(meta: dict) -> tuple[MasterConfig, Charset]:
    """The model config and charset a model.json describes."""
    return MasterConfig.from_dict(meta["model_config"]), charset_of(meta)


def _dims(session: Any, which: str) -> dict[str, list]:
    """name -> shape (ints, or names of dynamic axes) of a session's inputs or outputs."""
    items = session.get_inputs() if which == "inputs" else session.get_outputs()
    return {item.name: list(item.shape) for item in items}


def check_graphs(meta: dict, folder: str | Path, encoder: Any, decoder: Any) -> None:
    """UserError naming model.json, the field and both values when its model_config or charset disagrees with
    the shapes of the graphs beside it (onnxruntime sessions): channels, height, width (fixed-width models),
    decoder layers, heads, head size, memory length and classes. max_len is not in the graphs' shapes: the
    runtime's loop stops at it."""
    cfg, charset = config_and_charset(meta)
    images = _dims(encoder, "inputs").get("images", [])
    mem_kv = _dims(encoder, "outputs").get("mem_kv", [])
    logits = _dims(decoder, "outputs").get("logits", [])
    want = [("model_config.in_channels", cfg.in_channels, images, 1), ("model_config.img_h", cfg.img_h, images, 2),
            ("model_config.num_decoder_layers", cfg.num_decoder_layers, mem_kv, 0),
            ("model_config.nhead", cfg.nhead, mem_kv, 3), ("model_config.d_model / nhead", cfg.d_model // cfg.nhead,
                                                          mem_kv, 5),
            ("charset (classes, specials included)", len(charset), logits, 1)]
    if not cfg.variable_width:
        want += [("model_config.img_w", cfg.img_w, images, 3), ("model_config img_h/8 * img_w/4 (memory)",
                                                                 cfg.memory_len, mem_kv, 4)]
    for field, value, shape, axis in want:
        have = shape[axis] if axis < len(shape) else None
        if isinstance(have, int) and have != value:
            raise UserError(f"{Path(folder) / META_FILE}: {field} is {value} but the graphs have {have}; the folder "
                            "mixes two exports: export the model again with `masterocr export`")
    if meta.get("num_classes") is not None and meta["num_classes"] != len(charset):
        raise UserError(f"{Path(folder) / META_FILE}: num_classes is {meta['num_classes']} but the charset has "
                        f"{len(charset)} classes; export the model again with `masterocr export`")


def folder_sha256(folder: str | Path) -> str:
    """One SHA-256 for an exported folder: of its files' names and SHA-256s, in layout order."""
    h = hashlib.sha256()
    for name in LAYOUT_FILES:
        h.update(f"{name} {file_sha256(Path(folder) / name)}\n".encode())
    return h.hexdigest()


def default_onnx_path() -> Path:
    """The shipped int8 graphs; an error when MASTEROCR_WEIGHTS points the default elsewhere (they would not
    match) or when they are missing."""
    if weights_override() is not None:
        raise UserError(
            "MASTEROCR_WEIGHTS is set, and the shipped ONNX graphs are of the repository's weights: export yours "
            "with `masterocr export --int8 --out DIR` and pass --checkpoint DIR"
        )
    path = shipped_onnx()
    if not (path / META_FILE).exists():
        raise UserError(
            f"no shipped ONNX graphs at {path}; pass --checkpoint with a folder written by `masterocr export`"
        )
    return path
