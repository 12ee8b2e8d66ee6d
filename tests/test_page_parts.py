"""The page reader's parts without a model: DB post-processing, reading order, crops, page ranges, boxes files,
scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _page_util import text_page

from masterocr.errors import UserError
from masterocr.page.boxes import load_boxes
from masterocr.page.crops import crop_quad, gaps, order_quad, split_line
from masterocr.page.dbpost import boxes_from_map, connected_regions, min_area_rect
from masterocr.page.order import reading_order
from masterocr.page.pdf import parse_pages, selected
from masterocr.page.score import score_page, summarize

pytest.importorskip("pyclipper")


def rotated_rect(cx, cy, w, h, deg):
    a = np.radians(deg)
    u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    c = np.array([cx, cy])
    return np.array([c - u * w / 2 - v * h / 2, c + u * w / 2 - v * h / 2, c + u * w / 2 + v * h / 2,
                     c - u * w / 2 + v * h / 2])


def test_min_area_rect_recovers_a_rotated_rectangle():
    rect = rotated_rect(50, 40, 60, 10, 20)
    inside = np.concatenate([rect, rect.mean(axis=0)[None], (rect[0] + rect[2]) / 2 + np.array([[1, 0]])])
    found = min_area_rect(inside)
    sides = sorted(np.linalg.norm(found - np.roll(found, -1, axis=0), axis=1))
    assert sides == pytest.approx([10, 10, 60, 60], abs=1e-6)


def test_connected_regions_and_boxes_from_a_map():
    prob = np.zeros((60, 120), dtype=np.float32)
    prob[10:16, 10:80] = 0.9  # a line's kernel
    prob[40:46, 20:100] = 0.8
    prob[40:46, 101:110] = 0.8  # touches nothing: a third region
    prob[50, 50] = 0.95  # one pixel: under MIN_SIDE, dropped
    prob[30:35, 5:40] = 0.4  # over the binarization threshold but weak: dropped by the box threshold
    assert len(connected_regions(prob > 0.3, prob)) == 5
    boxes = boxes_from_map(prob)
    assert len(boxes) == 3
    first = min(boxes, key=lambda b: b[0][:, 1].min())[0]
    # grown by the paper's offset A * 1.5 / L: 70 x 6 -> about 70 + 2d by 6 + 2d, d = 420 * 1.5 / 152 ~ 4.1
    w, h = first[:, 0].max() - first[:, 0].min(), first[:, 1].max() - first[:, 1].min()
    assert w == pytest.approx(70 + 8.3, abs=1.0) and h == pytest.approx(6 + 8.3, abs=1.0)


def test_reading_order_columns_heading_footnote():
    heading = (100, 50, 700, 80)
    left = [(100, 120 + 30 * i, 380, 140 + 30 * i) for i in range(5)]
    right = [(420, 120 + 30 * i, 700, 140 + 30 * i) for i in range(5)]
    footnote = (100, 330, 700, 345)
    page_number = (390, 380, 410, 395)
    boxes = [right[2], footnote, left[4], heading, *right[:2], page_number, *left[:4], *right[3:]]
    want = [heading, *left, *right, footnote, page_number]
    assert [boxes[i] for i in reading_order(boxes)] == want


def test_reading_order_side_by_side_on_one_line_and_overlaps():
    head = [(100, 10, 300, 30), (900, 12, 960, 30)]  # running head and page number on one baseline
    body = [(100, 50 + 22 * i, 960, 76 + 22 * i) for i in range(3)]  # boxes with margins: they overlap
    boxes = [body[1], head[1], body[2], head[0], body[0]]
    assert [boxes[i] for i in reading_order(boxes)] == [*head, *body]
    assert reading_order([]) == []


def test_crop_of_a_rotated_box_matches_the_upright_crop():
    page, truth = text_page(["straight after the warp"], size=(500, 140), at=(40, 50))
    x0, y0, x1, y1 = truth[0][1]
    box = np.array([[x0 - 4, y0 - 4], [x1 + 4, y0 - 4], [x1 + 4, y1 + 4], [x0 - 4, y1 + 4]], dtype=float)
    upright = np.asarray(crop_quad(page, box).convert("L"), dtype=np.float32)
    turned = page.rotate(17, resample=3, expand=True, fillcolor="white")
    # where the box's corners went: PIL rotates counter-clockwise about the centre, then shifts by the expansion
    a = np.radians(17)
    c = np.array(page.size) / 2
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    quad = (box - c) @ rot.T + np.array(turned.size) / 2
    warped = crop_quad(turned, quad[[2, 0, 3, 1]]).convert("L")  # corners in any order
    assert abs(warped.width - upright.shape[1]) <= 2 and abs(warped.height - upright.shape[0]) <= 2
    warped = np.asarray(warped.resize((upright.shape[1], upright.shape[0])), dtype=np.float32)
    assert np.abs(warped - upright).mean() < 12  # the same ink in the same place (resampling blurs edges)
    assert np.abs(warped - upright[:, ::-1]).mean() > 2 * np.abs(warped - upright).mean()


def test_boxes_past_the_page_are_clamped():
    page, _ = text_page(["edge"], size=(200, 80), at=(5, 5))
    crop = crop_quad(page, np.array([[-50, -20], [400, -20], [400, 300], [-50, 300]], dtype=float))
    assert crop.size == page.size
    assert crop_quad(page, np.array([[500, 500], [900, 500], [900, 600], [500, 600]], dtype=float)) is None


def test_order_quad_and_tall_crops_turn():
    q = order_quad(np.array([[10, 50], [10, 0], [30, 0], [30, 50]]))
    assert q.tolist() == [[10, 0], [30, 0], [30, 50], [10, 50]]
    page, truth = text_page(["down the page"], size=(400, 100), at=(20, 30))
    tall = page.rotate(-90, expand=True)
    crop = crop_quad(tall, np.array([[0, 0], [tall.width, 0], [tall.width, tall.height], [0, tall.height]]))
    assert crop.width > crop.height


def test_split_line_cuts_at_word_gaps_only():
    page, truth = text_page(["one two three four five six seven eight nine ten"], size=(900, 60), at=(10, 15))
    x0, y0, x1, y1 = truth[0][1]
    line = page.crop((x0 - 3, y0 - 3, x1 + 3, y1 + 3))
    assert len(gaps(line, 0.25)) == 9
    words = split_line(line, None)
    assert len(words) == 10
    pieces = split_line(line, 8.0)
    assert 1 < len(pieces) < 10 and sum(p.width for p in pieces) == line.width
    assert all(p.width <= 8.0 * line.height for p in pieces)
    assert split_line(line, 1000.0) == [line]


def test_page_ranges():
    assert parse_pages("1-3,7") == [(1, 3), (7, 7)]
    assert parse_pages(None) is None
    assert selected([(2, 3), (9, 12)], 10, "doc.pdf") == [2, 3, 9, 10]
    for bad in ("0-2", "3-1", "a"):
        with pytest.raises(UserError, match="--pages"):
            parse_pages(bad)
    with pytest.raises(UserError, match="picks none of its 3 pages"):
        selected([(5, 9)], 3, "short.pdf")
    with pytest.raises(UserError, match="2000 pages, over the 100 read at once; pick some with --pages"):
        selected(None, 2000, "manual.pdf")


def test_boxes_file_forms_and_errors(tmp_path):
    f = tmp_path / "b.json"
    f.write_text(json.dumps({"lines": [{"polygon": [[0, 0], [10, 0], [10, 5], [0, 5]], "text": "x"},
                                       {"box": [1, 2, 30, 12]}]}))
    quads = load_boxes(f)
    assert [q.shape for q in quads] == [(4, 2), (4, 2)] and quads[1][2].tolist() == [30, 12]
    for bad, why in (("[1, 2]", "entry 0"), ('{"lines": 3}', "a list of boxes"), ("{", "not valid"),
                     ('[{"polygon": [[0, 0], [1, "a"], [1, 1], [0, 1]]}]', "at least 4")):
        f.write_text(bad)
        with pytest.raises(UserError, match=why):
            load_boxes(f)


def test_score_definitions():
    gt = {"lines": [{"text": "hello world", "box": [0, 0, 100, 20]}, {"text": "second", "box": [0, 30, 60, 50]},
                    {"text": "x/y", "box": [0, 60, 30, 80], "ignore": True}], "ignore_regions": []}
    preds = [{"text": "hello wor1d", "polygon": [[0, 0], [98, 0], [98, 21], [0, 21]]},
             {"text": "junk", "box": [200, 200, 260, 220]}, {"text": "x", "box": [0, 60, 28, 80]}]
    s = summarize([score_page(gt, preds)])
    assert (s["det_P"], s["det_R"]) == (0.5, 0.5)  # the ignored line's prediction counts neither way
    assert s["e2e_cer"] == pytest.approx((1 + 6 + 4) / 17)
    assert (s["e2e_matched"], s["e2e_missed"], s["e2e_spurious"]) == pytest.approx((1 / 17, 6 / 17, 4 / 17))
    assert s["page_cer"] == pytest.approx(_lev("hello world second", "hello wor1d junk") / 18)


def _lev(a, b):
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(a, b)
