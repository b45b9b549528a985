import numpy as np
import pandas as pd
import pytest
from scipy import stats

from inpaintbench.reports.tables import below_baseline, by_level, easier_on_harder, leaderboard, mean_ci, summarize


def test_mean_ci_is_the_student_t_interval():
    values = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    mean, half = mean_ci(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(3.2) and half == pytest.approx((hi - lo) / 2)
    assert np.isnan(mean_ci(np.array([2.0]))[1])


def _results():
    rng = np.random.default_rng(0)
    rows = []
    for level, shift in [("L1", 0.0), ("L2", 0.1)]:
        for model, base in [("good", 0.05), ("bad", 0.2)]:
            for _i in range(20):
                rows.append({"level": level, "model": model, "psnr": 30 - 100 * base + rng.normal(),
                             "l1_hole": base + shift + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def test_leaderboard_bolds_the_best_in_each_direction():
    summary = summarize(_results(), ["psnr", "l1_hole"])
    table = leaderboard(summary, "L1", ["psnr", "l1_hole"], ["good", "bad"])
    lines = table.splitlines()
    assert "PSNR (dB) ↑" in lines[0] and "L1 hole ↓" in lines[0]
    good, bad = lines[2], lines[3]
    assert good.count("**") == 4 and "**" not in bad  # good is best on both: higher PSNR, lower L1
    assert " ± " in good


def test_by_level_table():
    summary = summarize(_results(), ["l1_hole"])
    table = by_level(summary, "l1_hole", ["L1", "L2"], ["good", "bad"])
    assert table.splitlines()[0].split("|")[2].strip() == "L1"
    assert table.splitlines()[2].count("**") == 4
    assert " ± " in table.splitlines()[2] and "†" not in table  # L2 is harder for both: nothing marked


def test_a_metric_better_on_a_harder_level_and_a_model_below_mean_fill_are_flagged():
    rows = []
    rng = np.random.default_rng(1)
    for level, l1 in [("L1", 0.10), ("L2", 0.05), ("L3", 0.12)]:  # "net" gets better on L2: suspicious
        for _ in range(30):
            rows.append({"level": level, "model": "net", "l1_hole": l1 + rng.normal(0, 0.005)})
            rows.append({"level": level, "model": "mean-fill", "l1_hole": 0.08 + rng.normal(0, 0.005)})
    summary = summarize(pd.DataFrame(rows), ["l1_hole"])
    easier = easier_on_harder(summary, ["l1_hole"], ["L1", "L2", "L3"], ["net", "mean-fill"])
    assert [(r["model"], r["easier"], r["level"]) for r in easier] == [("net", "L1", "L2")]
    below = below_baseline(summary, ["l1_hole"], ["L1", "L2", "L3"], ["net"])
    assert [(r["model"], r["level"]) for r in below] == [("net", "L1"), ("net", "L3")]
    table = by_level(summary, "l1_hole", ["L1", "L2", "L3"], ["net", "mean-fill"])
    assert table.splitlines()[2].count("†") == 1


def test_the_questions_section_gives_one_line_per_model_and_level_with_every_metric():
    from inpaintbench.reports.markdown import _questions

    rng = np.random.default_rng(2)
    rows = []
    for level in ["L1", "L2"]:
        for _ in range(30):  # a trained cnn worse than mean fill by both metrics on both levels
            rows.append({"level": level, "model": "net", "model_name": "cnn", "l1_hole": 0.2 + rng.normal(0, 0.005),
                         "psnr": 20 + rng.normal(0, 0.1)})
            rows.append({"level": level, "model": "mean-fill", "model_name": "mean-fill",
                         "l1_hole": 0.1 + rng.normal(0, 0.005), "psnr": 25 + rng.normal(0, 0.1)})
    frame = pd.DataFrame(rows)
    lines = _questions(summarize(frame, ["l1_hole", "psnr"]), ["l1_hole", "psnr"], ["L1", "L2"], ["net", "mean-fill"],
                       frame)
    flagged = [line for line in lines if line.startswith("- ")]
    assert [line.split(" (")[0] for line in flagged] == ["- **net** is worse than mean fill on L1",
                                                         "- **net** is worse than mean fill on L2"]
    assert all("L1 hole" in line and "PSNR" in line for line in flagged)
