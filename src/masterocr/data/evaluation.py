"""Score a `predict` run's predict_result.json against a label file."""

from __future__ import annotations

import json
from pathlib import Path

from masterocr.data.labels import read_labels
from masterocr.errors import UserError
from masterocr.metrics import score

__all__ = ["evaluate_files", "read_predictions"]


def read_predictions(path: str | Path) -> dict[str, str | None]:
    """Filename -> text from predict_result.json (entries with result null count as missing)."""
    path = Path(path)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read predictions {path}: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a predict_result.json (a JSON list)") from exc
    if not isinstance(items, list):
        raise UserError(f"{path}: expected a JSON list of {{filename, result, pred_score}}")
    return {str(it["filename"]): it.get("result") for it in items if isinstance(it, dict) and "filename" in it}


def evaluate_files(predict_path: str | Path, label_path: str | Path, split: str = ",") -> dict:
    """Score a predict_result.json against a label file; predictions are matched by file name."""
    labels = read_labels(label_path, split)
    preds = read_predictions(predict_path)
    return score([preds.get(name) for name in labels], list(labels.values()))
