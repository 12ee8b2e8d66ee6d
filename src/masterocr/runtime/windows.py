"""Lines wider than a limit, read in overlapping windows and their texts merged by alignment.

A line model reads up to its img_w; the step bound and the CTC branch keep long lines honest, and where they
do not (issue 25, item 3) a line can be cut into windows that overlap by a quarter, each read alone, and the
readings joined where the end of one matches the start of the next (the idea of docTR's split_crops and
merge_multi_strings; written here from that description). The overlap found is the suffix/prefix pair of
least normalised edit distance (rapidfuzz); the merged text keeps each side's half of it, the half that lies
further from its window's cut edge (a glyph cut by the edge is the likeliest misread). Where no pair is close
enough the readings are joined as they are. Off unless asked (`Recognizer(..., window=N)`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rapidfuzz.distance import Levenshtein

from masterocr.errors import UserError
from masterocr.model.backbone import STRIDE

# the share of a window that the next one reads again
OVERLAP = 0.25
# an overlap is accepted when its normalised edit distance is at most this (1 misread in 4 characters)
MAX_DISTANCE = 0.25
# a window narrower than this many line heights holds too few characters to align
MIN_WINDOW_HEIGHTS = 4
# at most this many windows per line: a bound on the work one image can ask for
MAX_WINDOWS = 64


@dataclass
class Piece:
    """One window's reading: its characters with their scores and input x-ranges (None: not located)."""

    text: str
    scores: list[float]
    ranges: list[list[float]] | None = None


def window_starts(width: int, window: int) -> list[int]:
    """Left edges of the windows that cover `width` px: `window` wide, each overlapping the next by OVERLAP of
    a window (rounded to the backbone's stride), the last one flush with the line's end."""
    if width <= window:
        return [0]
    step = max(STRIDE, int(window * (1 - OVERLAP)) // STRIDE * STRIDE)
    starts = list(range(0, width - window, step))
    starts.append(width - window)
    if len(starts) > MAX_WINDOWS:
        raise UserError(f"a line of {width} px needs {len(starts)} windows of {window} px, over {MAX_WINDOWS}; "
                        "crop it into shorter lines")
    return starts


def check_window(window: int | None, img_h: int, img_w: int, variable_width: bool) -> int | None:
    """`window` as given, or a UserError naming what is wrong with it."""
    if window is None:
        return None
    if not variable_width:
        raise UserError("window reading is for line models (variable width); drop window for this model")
    low = MIN_WINDOW_HEIGHTS * img_h
    if not low <= window <= img_w:
        raise UserError(f"window {window} is outside {low}..{img_w} px (4 line heights .. the model's width)")
    return window


def split_line(x: torch.Tensor, window: int) -> list[tuple[int, torch.Tensor]]:
    """A line (C, H, W) -> its windows (left edge, (C, H, w))."""
    return [(s, x[..., s : s + window]) for s in window_starts(x.size(-1), window)]


def overlap_length(left: str, right: str) -> int:
    """The length k of the best match of left's last k characters with right's first k, 0 when none is
    close enough: the k with the most matching characters (k minus the edit distance) among those within
    MAX_DISTANCE, so that a long overlap with one misread beats a short exact one, which can match by chance.
    One matching character is no evidence of an overlap."""
    best_k, best_matches = 0, 1
    for k in range(1, min(len(left), len(right)) + 1):
        d = Levenshtein.distance(left[-k:], right[:k])
        if d <= MAX_DISTANCE * k and k - d > best_matches:
            best_k, best_matches = k, k - d
    return best_k


def merge_pair(left: Piece, right: Piece) -> Piece:
    """Join two consecutive windows' readings over their overlap (see the module docstring)."""
    k = overlap_length(left.text, right.text)
    keep = (k + 1) // 2  # left keeps the first half of the overlap, right the rest
    cut_left, cut_right = len(left.text) - k + keep, keep
    ranges = None
    if left.ranges is not None and right.ranges is not None:
        ranges = left.ranges[:cut_left] + right.ranges[cut_right:]
    return Piece(left.text[:cut_left] + right.text[cut_right:], left.scores[:cut_left] + right.scores[cut_right:],
                 ranges)


def merge_pieces(pieces: list[Piece]) -> Piece:
    """The readings of a line's windows, left to right, merged into one."""
    out = pieces[0]
    for nxt in pieces[1:]:
        out = merge_pair(out, nxt)
    return out
