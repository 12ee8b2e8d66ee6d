"""Scores with the original MASTER's definitions (word accuracy, edit-distance accuracy), line scores (exact
line accuracy, character error rate, per length bucket), and their table.

Scoring only: reading label and prediction files is `masterocr.data.labels` / `masterocr.data.evaluation`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from rapidfuzz.distance import Levenshtein

from masterocr.text import normalize_text

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
        """Count one prediction against its label, both NFKC-folded as training folds labels (normalize_text)."""
        gold = normalize_text(gold)
        pred = None if pred is None else normalize_text(pred)
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


# Line scores (bench/lines.py): exact line accuracy and character error rate, with and without spaces, per
# length bucket of the label. NFKC on both sides, so that a full-width comma and "," or a ligature and its two
# letters count as the same text.
_SPACES = re.compile(r"\s+")
LENGTH_BUCKETS = ((1, 25), (26, 50), (51, 100), (101, None))


def normalize_line(text: str, spaces: bool = True) -> str:
    """NFKC, then whitespace runs collapsed to one space and stripped (`spaces`), or all whitespace removed."""
    text = normalize_text(text)
    return _SPACES.sub(" ", text).strip() if spaces else _SPACES.sub("", text)


def length_bucket(n: int) -> str:
    """The bucket name ("1-25", "26-50", "51-100", ">100") of a label of n characters."""
    for lo, hi in LENGTH_BUCKETS:
        if hi is None:
            return f">{lo - 1}"
        if n <= hi:
            return f"{lo}-{hi}"
    raise AssertionError("unreachable")


RUNAWAY_MARGIN = 10  # characters a reading may run past its label before it counts as a runaway


@dataclass
class LineCounts:
    """Exact matches and summed edit distances of a set of lines; CER = edits / label characters; `runaway`:
    the lines read more than RUNAWAY_MARGIN characters longer than their label (a decoder that lost its place
    and repeats itself)."""

    n: int = 0
    correct: int = 0
    edits: int = 0
    chars: int = 0
    runaway: int = 0

    def add(self, pred: str, gold: str) -> None:
        self.n += 1
        self.correct += pred == gold
        self.edits += Levenshtein.distance(pred, gold)
        self.chars += len(gold)
        self.runaway += len(pred) > len(gold) + RUNAWAY_MARGIN

    @property
    def acc(self) -> float:
        return self.correct / max(self.n, 1)

    @property
    def cer(self) -> float:
        return self.edits / max(self.chars, 1)


def line_scores(preds: Sequence[str | None], golds: Sequence[str]) -> dict[str, LineCounts]:
    """LineCounts keyed "all", "nospace" and one per length bucket of the label (its length with spaces, after
    normalisation; the bucket scores are with spaces). A missing prediction (None) reads as "". Buckets with no
    line are absent."""
    out: dict[str, LineCounts] = {"all": LineCounts(), "nospace": LineCounts()}
    for pred, gold in zip(preds, golds, strict=True):
        pred = pred or ""
        p, g = normalize_line(pred), normalize_line(gold)
        out["all"].add(p, g)
        out["nospace"].add(normalize_line(pred, spaces=False), normalize_line(gold, spaces=False))
        out.setdefault(length_bucket(len(g)), LineCounts()).add(p, g)
    return out
