"""What `GET /v1/model` answers: the model, its charset and input, the weights file's name and hash, the limits."""

from __future__ import annotations

from pathlib import Path

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


def model_info(recognizer: BaseRecognizer, serving: dict) -> dict:
    """What /v1/model answers: the model's config, charset, input, weights file name and the serving limits."""
    cfg = recognizer.cfg
    weights_path = recognizer.weights_path
    return {
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
