"""Score a `predict` run's predict_result.json against a label file; what cannot be scored is refused."""

from __future__ import annotations

import json
from pathlib import Path

from masterocr.data.labels import check_regular_file, json_type, read_labels
from masterocr.data.matching import match_predictions
from masterocr.errors import UserError
from masterocr.metrics import score

__all__ = ["evaluate_files", "read_predictions"]

_FORMAT = "a predict_result.json (a JSON list of {filename, result, pred_score})"


def read_predictions(path: str | Path) -> dict[str, str | None]:
    """Filename -> text from predict_result.json; a null result (an unreadable image) counts as missing.

    UserError naming the file, the entry and the reason for anything else: not a list, an entry that is not an
    object, a filename that is not a string or appears twice, a result that is neither a string nor null, JSON
    nested too deeply.
    """
    path = Path(path)
    check_regular_file(path, "predictions file")
    try:
        items = json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as exc:
        raise UserError(f"cannot read predictions {path}: {exc.strerror}") from exc
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply; expected {_FORMAT}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not {_FORMAT}") from exc
    if not isinstance(items, list):
        raise UserError(f"{path}: the file holds {json_type(items)}; expected {_FORMAT}")
    preds: dict[str, str | None] = {}
    for i, item in enumerate(items):
        where = f"{path}: entry {i}"
        if not isinstance(item, dict):
            raise UserError(f"{where} is {json_type(item)}, not an object {{filename, result, pred_score}}")
        name, result = item.get("filename"), item.get("result")
        if not isinstance(name, str):
            raise UserError(f'{where}: "filename" is {json_type(name) if "filename" in item else "missing"}, '
                            "expected a string")
        if result is not None and not isinstance(result, str):
            raise UserError(f'{where} ({name!r}): "result" is {json_type(result)}, expected a string or null')
        if name in preds:  # two readings of one image: which one to score is not known
            raise UserError(f"{where}: filename {name!r} appears twice; one entry per image")
        preds[name] = result
    return preds


def evaluate_files(predict_path: str | Path, label_path: str | Path, split: str = ",") -> dict:
    """Score a predict_result.json against a label file; predictions are matched by path (data.matching: a
    label `images/a.png` finds a prediction `a.png`). A label without a prediction counts as wrong;
    "num_matched" says how many found one and "unmatched" lists the others by reason (up to 5 each, with the
    count). A label file with no label is refused: a score over nothing would read as 100 %."""
    labels = read_labels(label_path, split)
    if not labels:
        raise UserError(f"label file {label_path} holds no labels; nothing to score against")
    preds = read_predictions(predict_path)
    matched = match_predictions(list(labels), preds)
    metrics = score(matched.texts, list(labels.values()))
    metrics["num_matched"] = matched.num_matched
    metrics["unmatched"] = {why: {"count": len(names), "examples": names[:5]}
                            for why, names in matched.unmatched.items()}
    if preds:
        metrics["prediction_example"] = next(iter(preds))
    return metrics
