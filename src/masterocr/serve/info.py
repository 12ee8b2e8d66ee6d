"""What `GET /v1/model` answers: the model, its charset and input, the weights file's name and hash, the limits."""

from __future__ import annotations

from pathlib import Path

from masterocr.assets import SHIPPED_MODELS, shipped_model, shipped_onnx
from masterocr.formats.onnx_layout import META_FILE, folder_sha256
from masterocr.formats.weights import file_sha256
from masterocr.runtime.base import BaseRecognizer


def _weights_sha256(path: Path | None) -> str | None:
    """The weights file's SHA-256; for an exported ONNX folder, onnx_layout.folder_sha256 of its files."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir() and (path / META_FILE).is_file():
        return folder_sha256(path)
    return file_sha256(path) if path.is_file() else None


def shipped_names(path: Path | None) -> tuple[str | None, list[str]]:
    """(the shipped model's name `path` is, or None; the shipped models this release carries), "medium" folded
    into "word": the page says which model reads and how to start the others."""
    names = [n for n in SHIPPED_MODELS if n != "medium" and shipped_model(n).is_file()]
    if path is None:
        return None, names
    path = Path(path).resolve()
    name = next((n for n in names if path in (shipped_model(n).resolve(), shipped_onnx(n).resolve())), None)
    return name, names


def model_info(recognizer: BaseRecognizer, serving: dict) -> dict:
    """What /v1/model answers: the model's config, charset, input, weights file name and the serving limits."""
    cfg = recognizer.cfg
    weights_path = recognizer.weights_path
    name, shipped = shipped_names(weights_path)
    return {
        "model": name,  # a shipped model's name (`masterocr serve --model NAME`), None for another file
        "reads": "text lines" if cfg.variable_width else "word crops",
        "shipped_models": shipped,
        "config": cfg.to_dict(),
        "charset": {"keys": recognizer.charset.keys, "size": len(recognizer.charset.keys),
                    "case_sensitive": recognizer.charset.case_sensitive},
        "input": {"height": cfg.img_h, "width": cfg.img_w, "channels": cfg.in_channels,
                  "keep_ratio": cfg.keep_ratio},
        "attention_grid": {"height": cfg.img_h // 8, "width": cfg.img_w // 4},
        # the file name only: the server's directory layout is none of the client's business
        "checkpoint": Path(weights_path).name if weights_path else None,
        "variant": recognizer.variant,
        "sha256": _weights_sha256(weights_path),
        "parameters": recognizer.num_parameters,
        "device": str(recognizer.device),
        "backend": recognizer.backend,
        "attention_maps": recognizer.supports_attention,
        "decode": recognizer.decode,  # the decoding mode: attention, ctc or joint
        "serving": serving,
    }
