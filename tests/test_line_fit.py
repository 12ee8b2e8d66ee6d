"""bench/line_fit.py: the pilot's log-linear extrapolation recovers a known curve and its crossing points."""

from __future__ import annotations

import math

from conftest import BENCH, load_script


def test_the_fit_recovers_a_log_linear_curve_and_where_it_meets_the_target():
    line_fit = load_script("line_fit", BENCH)
    rows = []
    for chars in (50_000, 100_000, 400_000):
        cer = 200 - 10 * math.log(chars)  # 10 points fewer per e-fold of characters
        rows.append({"chars_seen": chars, **{col: cer for col in line_fit.COLUMNS}})
    out = {r["column"]: r for r in line_fit.extrapolate(rows, chars_at_budget=1e6)}
    latin = out["real_latin_cer"]
    assert (latin["a"], latin["per_doubling"]) == (200.0, round(-10 * math.log(2), 2))
    assert latin["cer_at_budget"] == round(200 - 10 * math.log(1e6), 1)
    assert math.isclose(latin["chars_for_target"], math.exp((200 - 1.5) / 10))
    assert math.isclose(out["synth_zh_cer"]["chars_for_target"], math.exp((200 - 3.0) / 10))
    flat = [{**r, "synth_zh_cer": 50.0} for r in rows]
    assert math.isinf({r["column"]: r for r in line_fit.extrapolate(flat, 1e6)}["synth_zh_cer"]["chars_for_target"])
