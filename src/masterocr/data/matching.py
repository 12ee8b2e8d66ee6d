"""Which prediction belongs to which label: label paths and prediction names matched by their path, so labels
written with folders (`images/0001.png`) find predictions made from that folder (`0001.png`) or above it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath

NO_PREDICTION = "no prediction has this path"
AMBIGUOUS = "several predictions end with this path"
UNREADABLE = "the image could not be read (its result is null)"


def _parts(name: str) -> tuple[str, ...]:
    """A path's components, `\\` and `./` forgiven, so `./images\\a.png` and `images/a.png` are one path."""
    return tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in (".", "/"))


@dataclass
class Matched:
    """Per label (in the label file's order) its predicted text or None, and the labels left without a text,
    grouped by why (NO_PREDICTION, AMBIGUOUS, UNREADABLE)."""

    texts: list[str | None] = field(default_factory=list)
    unmatched: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def num_matched(self) -> int:
        return len(self.texts) - sum(len(v) for k, v in self.unmatched.items() if k != UNREADABLE)


def match_predictions(labels: list[str], preds: dict[str, str | None]) -> Matched:
    """Each label path gets the prediction of the same path; failing that, the one prediction whose path ends
    with the label's or whose path the label's ends with (whole components: `images/a.png` matches `a.png`
    and `data/images/a.png`, never `xa.png`). Two such predictions are ambiguous and match neither."""
    exact = {_parts(name): name for name in preds}
    by_base: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for parts in exact:
        if parts:
            by_base[parts[-1]].append(parts)
    out = Matched()
    for label in labels:
        want = _parts(label)
        if want in exact:
            found = [want]
        else:
            n = len(want)
            found = [p for p in by_base.get(want[-1] if want else "", [])
                     if p[-n:] == want or want[-len(p):] == p]
        if len(found) != 1:
            out.texts.append(None)
            out.unmatched[AMBIGUOUS if found else NO_PREDICTION].append(label)
            continue
        text = preds[exact[found[0]]]
        out.texts.append(text)
        if text is None:
            out.unmatched[UNREADABLE].append(label)
    return out
