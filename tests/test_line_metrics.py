"""Line scores in masterocr.metrics: NFKC and space normalisation, length buckets, CER, known answers."""

from __future__ import annotations

import pytest

from masterocr.metrics import LineCounts, length_bucket, line_scores, normalize_line


def test_normalize_line_nfkc_and_spaces():
    # full-width ASCII and the fi ligature fold to ASCII; whitespace runs collapse, ends are stripped
    assert normalize_line("  Ａ，\ufb01le \t x\n") == "A,file x"
    assert normalize_line("认使用的 simp ;而", spaces=False) == "认使用的simp;而"
    assert normalize_line("a\u3000b") == "a b"  # the ideographic space is whitespace after NFKC


@pytest.mark.parametrize(
    ("n", "bucket"),
    [
        (1, "1-25"),
        (25, "1-25"),
        (26, "26-50"),
        (50, "26-50"),
        (51, "51-100"),
        (100, "51-100"),
        (101, ">100"),
        (500, ">100"),
    ],
)
def test_length_bucket_edges(n, bucket):
    assert length_bucket(n) == bucket


def test_line_counts_cer_is_summed_edits_over_summed_label_lengths():
    c = LineCounts()
    c.add("abc", "abcd")  # 1 edit over 4
    c.add("xyz", "xyz")  # 0 over 3
    c.add("", "ab")  # 2 over 2
    assert (c.n, c.correct, c.edits, c.chars, c.runaway) == (3, 1, 3, 9, 0)
    assert c.acc == pytest.approx(1 / 3)
    assert c.cer == pytest.approx(3 / 9)  # not the mean of per-line rates (0.25, 0, 1)


def test_line_scores_known_answer():
    golds = ["hello world", "中文 abc", "x" * 30, "y" * 120]
    preds = ["hello  world ", "中文abc", "x" * 29, None]
    s = line_scores(preds, golds)
    # with spaces: line 1 matches after collapsing; line 2 lacks the CJK/Latin gap (1 edit); line 3 one short;
    # line 4 missing counts its whole label
    assert (s["all"].correct, s["all"].edits, s["all"].chars) == (1, 1 + 1 + 120, 11 + 6 + 30 + 120)
    # without spaces the gap no longer counts
    assert (s["nospace"].correct, s["nospace"].edits, s["nospace"].chars) == (2, 1 + 120, 10 + 5 + 30 + 120)
    assert s["1-25"].n == 2 and s["1-25"].correct == 1 and s["1-25"].cer == pytest.approx(1 / 17)
    assert s["26-50"].n == 1 and s["26-50"].cer == pytest.approx(1 / 30)
    assert s[">100"].acc == 0.0 and s[">100"].cer == 1.0
    assert "51-100" not in s


def test_a_reading_more_than_ten_characters_past_its_label_is_a_runaway():
    c = LineCounts()
    c.add("the wide " * 2, "the wide")  # 18 characters: 10 past, not yet
    c.add("the wide " * 2 + "t", "the wide")  # 11 past
    c.add("", "y" * 40)  # short readings are errors, not runaways
    assert c.runaway == 1


def test_line_scores_lengths_must_match():
    with pytest.raises(ValueError):
        line_scores(["a"], ["a", "b"])
