"""Metrics with the original's definitions, label/prediction file readers, and the benchmark table."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from masterocr.errors import UserError

_NON_ALNUM = re.compile(r"[^0-9a-z]")


def str_protocol(text: str) -> str:
    """The STR benchmarks' protocol: case-insensitive, alphanumeric characters only."""
    return _NON_ALNUM.sub("", text.lower())


@dataclass
class Counts:
    """Sums that merge across batches and processes (all-reduce friendly)."""

    n: int = 0
    correct: int = 0
    correct_ci: int = 0
    correct_str: int = 0
    edit_sum: int = 0
    len_sum: int = 0
    missing: int = 0

    def add(self, pred: str | None, gold: str) -> None:
        self.n += 1
        self.len_sum += len(gold)
        if pred is None:  # a missing prediction counts as its whole label
            self.missing += 1
            self.edit_sum += len(gold)
            return
        self.correct += pred == gold
        self.correct_ci += pred.lower() == gold.lower()
        self.correct_str += str_protocol(pred) == str_protocol(gold)
        self.edit_sum += Levenshtein.distance(pred, gold)

    def merge(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))

    def as_list(self) -> list[int]:
        return list(asdict(self).values())

    def metrics(self) -> dict:
        n = max(self.n, 1)
        return {
            "word_acc": self.correct / n,
            "word_acc_ci": self.correct_ci / n,
            "word_acc_str": self.correct_str / n,
            "edit_acc": 1.0 - self.edit_sum / max(self.len_sum, 1),
            "num_labels": self.n,
            "num_missing": self.missing,
        }


def score(preds: Sequence[str | None], golds: Sequence[str]) -> dict:
    """Word accuracy (exact, case-insensitive, STR protocol) and edit-distance accuracy."""
    counts = Counts()
    for p, g in zip(preds, golds, strict=True):
        counts.add(p, g)
    return counts.metrics()


def read_labels(path: str | Path, split: str = ",") -> dict[str, str]:
    """Filename -> label from JSON lines ({"ImageFile","Label"}) or the txt format (name<split>label)."""
    path = Path(path)
    if not split:  # str.split("") raises ValueError
        raise UserError("the label separator (split) is empty; use e.g. ',' or '\\t'")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read label file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"label file {path} is not UTF-8; re-save it as UTF-8") from exc
    labels: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                item = json.loads(line)
                labels[str(item["ImageFile"])] = str(item["Label"])
            except (json.JSONDecodeError, KeyError, TypeError, RecursionError) as exc:
                raise UserError(f"{path}:{lineno}: expected {{\"ImageFile\": ..., \"Label\": ...}}") from exc
        else:
            if split not in line:
                raise UserError(f"{path}:{lineno}: no separator {split!r}; lines are name{split}label")
            name, label = line.split(split, 1)
            labels[name] = label
    return labels


def read_predictions(path: str | Path) -> dict[str, str | None]:
    """Filename -> text from predict_result.json (entries with result null count as missing)."""
    path = Path(path)
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
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


def format_table(rows: Iterable[tuple[str, dict]], columns: Sequence[str]) -> str:
    """A plain text table: one row per set, percentages for *_acc columns."""
    rows = list(rows)
    head = ["set", *columns]
    body = []
    for name, m in rows:
        cells = [name]
        for c in columns:
            v = m.get(c, "")
            cells.append(f"{100 * v:.2f}" if c.endswith("acc") or "acc_" in c else str(v))
        body.append(cells)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*r) for r in body]
    return "\n".join(lines)
