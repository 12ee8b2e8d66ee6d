"""Lines read in overlapping windows: the merge of made-up overlapping readings, the windows' geometry, and a
recognizer that reads a line wider than its model in windows only when asked."""

from __future__ import annotations

import pytest
import torch
from conftest import render_word

from masterocr import Charset, build_model
from masterocr.errors import UserError
from masterocr.model import get_preset
from masterocr.runtime.torch import Recognizer
from masterocr.runtime.windows import (
    MAX_WINDOWS,
    Piece,
    merge_pieces,
    overlap_length,
    split_line,
    window_starts,
)


def _piece(text: str, score: float = 0.9) -> Piece:
    return Piece(text, [score] * len(text), [[i, i + 1] for i in range(len(text))])


def test_an_exact_overlap_is_read_once():
    merged = merge_pieces([_piece("the quick brown fo"), _piece("brown fox jumps ov"), _piece("umps over it")])
    assert merged.text == "the quick brown fox jumps over it"
    assert len(merged.scores) == len(merged.ranges) == len(merged.text)


@pytest.mark.parametrize("left, right", [("the quick brown fa", "brown fox jumps"),  # left's cut glyph misread
                                         ("the quick brown fo", "brcwn fox jumps")])  # right's
def test_a_misread_character_at_the_seam_goes_to_the_window_that_reads_it_centrally(left, right):
    assert merge_pieces([_piece(left), _piece(right)]).text == "the quick brown fox jumps"


def test_no_overlap_found_joins_the_readings_as_they_are():
    assert overlap_length("abcdef", "uvwxyz") == 0
    assert merge_pieces([_piece("abcdef"), _piece("uvwxyz")]).text == "abcdefuvwxyz"
    # one equal character is chance, not an overlap
    assert merge_pieces([_piece("hello world"), _piece("dog barks")]).text == "hello worlddog barks"


def test_a_long_overlap_with_a_misread_beats_a_short_exact_one():
    assert overlap_length("reading windows as", "windcws as they come") == len("windows as")


def test_the_merged_ranges_follow_the_kept_characters():
    left, right = _piece("abcdxy"), Piece("cdxyzz", [0.5] * 6, [[10 + i, 11 + i] for i in range(6)])
    merged = merge_pieces([left, right])
    assert merged.text == "abcdxyzz"
    assert merged.ranges == [[0, 1], [1, 2], [2, 3], [3, 4], [12, 13], [13, 14], [14, 15], [15, 16]]
    assert merged.scores == [0.9] * 4 + [0.5] * 4


def test_windows_cover_the_line_overlapping_and_end_flush():
    starts = window_starts(1000, 400)
    assert starts[0] == 0 and starts[-1] == 600
    assert all(b - a <= 300 and b > a for a, b in zip(starts, starts[1:]))
    assert window_starts(300, 400) == [0]
    pieces = split_line(torch.zeros(1, 32, 1000), 400)
    assert [p[1].size(-1) for p in pieces] == [400] * len(starts)
    with pytest.raises(UserError, match="windows"):
        window_starts(400 * MAX_WINDOWS, 400)


def _line_recognizer(window):
    cfg = get_preset("tiny", img_w=256, keep_ratio=True, variable_width=True, max_len=40, ctc_weight=0.5,
                     decode="ctc")
    torch.manual_seed(3)
    charset = Charset("abcdefgh ")
    return Recognizer(build_model(cfg, charset).eval(), charset, window=window)


def test_a_line_wider_than_the_model_is_refused_unless_windows_are_asked():
    wide = render_word("abcdefgh " * 8)  # ~ 1,000 px at 32 px high: wider than the model's 256
    (refused,) = _line_recognizer(None).predict([wide])
    assert refused.text is None and "over its maximum" in refused.error
    rec = _line_recognizer(160)
    (read,) = rec.predict([wide], return_locations=True)
    assert read.error is None and read.text is not None
    assert len(read.char_ranges) == len(read.text) == len(read.char_scores)
    assert all(0 <= a < b <= wide.width for a, b in read.char_ranges)
    # a line narrower than the window is read whole, as without windows
    short = render_word("abc")
    assert rec.predict([short])[0].text == _line_recognizer(None).predict([short])[0].text


def test_window_is_checked():
    with pytest.raises(UserError, match="outside"):
        _line_recognizer(1000)
    with pytest.raises(UserError, match="line models"):
        Recognizer(build_model("tiny", Charset.default()), Charset.default(), window=100)
