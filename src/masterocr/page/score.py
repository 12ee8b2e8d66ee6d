"""Scoring page OCR against line ground truth: line detection P/R/F1 at IoU >= 0.5, end-to-end CER and page
CER, with and without spaces (the definitions of the real-pages sets' SOURCES.md).

- Lines match one to one, greedily, highest IoU of their axis-aligned bounds first, at IoU >= 0.5.
- Don't-care: ground-truth lines marked "ignore" and the page's "ignore_regions"; an unmatched prediction with
  IoU >= 0.5 with one of them, or lying at least half inside them, counts neither way.
- e2e CER: edit distance of the matched pairs + the length of every unmatched ground-truth line and every
  unmatched, counted prediction, over the ground truth's characters.
- page CER: the ground truth's lines in its order against the predictions in theirs, each joined by one space.
- Text on both sides NFKC-normalised, whitespace runs collapsed; "nospace" drops all whitespace.
Counts pool over pages (sums first, then ratios).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from rapidfuzz.distance import Levenshtein

IOU = 0.5


def norm(text: str | None) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text or "")).strip()


def bounds(line: dict) -> tuple[float, float, float, float]:
    """A line's axis-aligned box from its "box" or "polygon"."""
    if line.get("box") is not None:
        x0, y0, x1, y1 = (float(v) for v in line["box"])
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
    xs = [float(p[0]) for p in line["polygon"]]
    ys = [float(p[1]) for p in line["polygon"]]
    return min(xs), min(ys), max(xs), max(ys)


def _inter(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _area(a) -> float:
    return max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])


def iou(a, b) -> float:
    i = _inter(a, b)
    u = _area(a) + _area(b) - i
    return i / u if u > 0 else 0.0


def score_page(gt: dict, preds: list[dict]) -> dict[str, int]:
    """Counts for one page: gt {"lines": [{"text", "box"/"polygon", "ignore"}], "ignore_regions"}, preds in the
    engine's reading order [{"text", "box"/"polygon"}]."""
    G = [(bounds(g), norm(g["text"])) for g in gt["lines"] if not g.get("ignore")]
    ign = [bounds(g) for g in gt["lines"] if g.get("ignore")] + [tuple(r) for r in gt.get("ignore_regions", [])]
    P = [(bounds(p), norm(p.get("text"))) for p in preds]
    pairs = sorted(((iou(g[0], p[0]), i, j) for i, g in enumerate(G) for j, p in enumerate(P)), reverse=True)
    g2p: dict[int, int] = {}
    p2g: dict[int, int] = {}
    for v, i, j in pairs:
        if v < IOU:
            break
        if i not in g2p and j not in p2g:
            g2p[i], p2g[j] = j, i
    dropped = {j for j, p in enumerate(P) if j not in p2g and (
        any(iou(p[0], b) >= IOU for b in ign) or sum(_inter(p[0], b) for b in ign) >= 0.5 * _area(p[0]) > 0)}
    spurious = [j for j in range(len(P)) if j not in p2g and j not in dropped]
    out = {"pages": 1, "gt_lines": len(G), "pred_lines": len(P) - len(dropped), "tp": len(g2p)}
    for tag, f in (("", lambda s: s), ("_nospace", lambda s: re.sub(r"\s+", "", s))):
        matched = sum(Levenshtein.distance(f(G[i][1]), f(P[j][1])) for i, j in g2p.items())
        missed = sum(len(f(G[i][1])) for i in range(len(G)) if i not in g2p)
        extra = sum(len(f(P[j][1])) for j in spurious)
        ed = matched + missed + extra
        if not tag:  # where the end-to-end errors come from: misread matched lines, missed lines, spurious ones
            out |= {"ed_matched": matched, "ed_missed": missed, "ed_spurious": extra}
        gt_text = f(" ".join(g[1] for g in G))
        pred_text = f(" ".join(P[j][1] for j in range(len(P)) if j not in dropped and P[j][1]))
        out |= {"e2e_ed" + tag: ed, "gt_chars" + tag: sum(len(f(g[1])) for g in G),
                "page_ed" + tag: Levenshtein.distance(gt_text, pred_text), "page_chars" + tag: len(gt_text)}
    return out


def summarize(rows: Iterable[dict[str, int]]) -> dict[str, float]:
    """Pooled metrics over pages' counts."""
    s: dict[str, int] = {}
    for r in rows:
        for k, v in r.items():
            s[k] = s.get(k, 0) + v
    if not s:
        return {"pages": 0}
    p = s["tp"] / s["pred_lines"] if s["pred_lines"] else 0.0
    r = s["tp"] / s["gt_lines"] if s["gt_lines"] else 0.0
    out = {"pages": s["pages"], "gt_lines": s["gt_lines"], "pred_lines": s["pred_lines"], "det_P": p, "det_R": r,
           "det_F1": 2 * p * r / (p + r) if p + r else 0.0}
    for part in ("matched", "missed", "spurious"):
        out[f"e2e_{part}"] = s[f"ed_{part}"] / max(s["gt_chars"], 1)
    for tag in ("", "_nospace"):
        out["e2e_cer" + tag] = s["e2e_ed" + tag] / max(s["gt_chars" + tag], 1)
        out["page_cer" + tag] = s["page_ed" + tag] / max(s["page_chars" + tag], 1)
    return out
