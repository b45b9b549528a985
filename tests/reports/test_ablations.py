"""Paired bootstrap intervals of ablations: identical variants contain zero, a known degradation is flagged."""

import numpy as np
import pandas as pd
import pytest

import inpaintbench as ib
from inpaintbench.benchmarks.suite import Ablation, Variant, parse_suite
from inpaintbench.reports.ablations import ablation_rows, ablation_table, paired_bootstrap


def _frame(values: dict[str, dict[str, np.ndarray]], level="L2"):
    """A results frame: model -> metric -> per-image values, on the same images and mask set."""
    parts = []
    for model, metrics in values.items():
        n = len(next(iter(metrics.values())))
        parts.append(pd.DataFrame({"model": model, "level": level, "image": np.arange(n),
                                   "key": [f"k{i}" for i in range(n)], "mask_set": "masks/sets/x", "dataset": "d",
                                   "split": "test", **metrics}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def real_metrics(sample32):
    """Per-image L1 and PSNR of Telea and of mean fill on real test crops with L2 masks (mean fill is worse)."""
    from inpaintbench.datasets.loader import InpaintDataset

    images = InpaintDataset(sample32, "test").images_at(range(16)).float() / 255
    masks = ib.make_masks("L2", 16, size=32, seed=0).float()
    out = {}
    for name in ("telea", "mean-fill"):
        pred = ib.create_model(name)(images * (1 - masks), masks)
        composite = masks * pred + (1 - masks) * images
        out[name] = {"l1": ib.metrics.l1(composite, images).numpy(), "psnr": ib.metrics.psnr(composite, images).numpy()}
    return out


def test_identical_variants_give_an_interval_containing_zero(real_metrics):
    base = real_metrics["telea"]["l1"]
    diff, low, high = paired_bootstrap(base, base.copy())
    assert diff == low == high == 0.0
    rows = ablation_rows(_frame({"telea": real_metrics["telea"], "telea again": real_metrics["telea"]}),
                         [Ablation("same", "telea", (Variant("telea again", "radius", 3.0),))], ["l1", "psnr"], ["L2"])
    assert [r["excludes_zero"] for r in rows] == [False, False] and {r["effect"] for r in rows} == {""}


def test_pure_noise_differences_give_an_interval_containing_zero(real_metrics):
    base = real_metrics["telea"]["l1"]
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, size=len(base))
    noise -= noise.mean()  # a zero-mean difference: nothing for the interval to find
    diff, low, high = paired_bootstrap(base, base + noise)
    assert low < 0 < high and abs(diff) < 1e-12


def test_a_known_degradation_is_flagged_worse(real_metrics):
    frame = _frame({"telea": real_metrics["telea"], "mean fill": real_metrics["mean-fill"]})
    rows = ablation_rows(frame, [Ablation("fill", "telea", (Variant("mean fill", "method", "mean"),))],
                         ["l1", "psnr"], ["L2"])
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["l1"]["excludes_zero"] and by_metric["l1"]["effect"] == "worse"
    assert by_metric["l1"]["low"] > 0  # mean fill's L1 is higher on every resample
    assert by_metric["psnr"]["effect"] == "worse" and by_metric["psnr"]["high"] < 0
    assert by_metric["l1"]["difference"] == pytest.approx(
        real_metrics["mean-fill"]["l1"].mean() - real_metrics["telea"]["l1"].mean())
    table = ablation_table(rows)
    assert "* worse" in table and "mean fill vs telea" in table


def test_the_interval_covers_a_known_mean_shift_at_its_nominal_rate():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        base = rng.normal(0.1, 0.03, 64)
        variant = base + 0.005 + rng.normal(0, 0.02, 64)
        _, low, high = paired_bootstrap(base, variant, resamples=1000, seed=trial)
        covered += low <= 0.005 <= high
    assert 0.88 <= covered / 200 <= 0.99


def test_pairs_need_the_same_masks(real_metrics):
    frame = _frame({"telea": real_metrics["telea"], "b": real_metrics["mean-fill"]})
    frame.loc[frame["model"] == "b", "mask_set"] = "masks/sets/other"
    with pytest.raises(ib.InpaintbenchError, match="same images and masks"):
        ablation_rows(frame, [Ablation("x", "telea", (Variant("b", "radius", 1.0),))], ["l1"], ["L2"])


SUITE = {"name": "s", "dataset": {"path": "data"}, "masks": {"levels": ["L1"]},
         "models": [{"name": "telea"}, {"name": "pconv-tiny", "label": "pconv", "train": {"steps": 5},
                                        "options": {"tv_weight": 0.2}}]}


def test_a_suite_expands_ablation_variants_into_rows():
    suite = parse_suite({**SUITE, "ablations": [
        {"name": "PConv without style loss", "base": "pconv",
         "variants": [{"label": "pconv (no style)", "options": {"style_weight": 0.0}}]},
        {"base": "telea", "variants": [{"options": {"radius": 9.0}}]}]})
    rows = {r.label: r for r in suite.models}
    assert rows["pconv (no style)"].options == {"tv_weight": 0.2, "style_weight": 0.0}
    assert rows["pconv (no style)"].train == rows["pconv"].train and rows["pconv (no style)"].name == "pconv-tiny"
    assert rows["telea radius=9.0"].options == {"radius": 9.0}
    assert [a.name for a in suite.ablations] == ["PConv without style loss", "telea ablation"]
    assert suite.ablations[0].variants == (Variant("pconv (no style)", "style_weight", 0.0),)


@pytest.mark.parametrize("ablation, message", [
    ({"base": "nope", "variants": [{"options": {"radius": 1.0}}]}, "expected the label of a \\[\\[models\\]\\] row"),
    ({"base": "telea", "variants": [{"options": {"radius": 1.0, "x": 2}}]}, "changes exactly one option, got 2"),
    ({"base": "telea", "variants": [{"options": {"radius": "wide"}}]}, "radius: expected a number"),
    ({"base": "telea", "variants": [{"label": "telea", "options": {"radius": 1.0}}]}, "labels must be unique"),
])
def test_bad_ablations_are_one_line_problems(ablation, message):
    with pytest.raises(ib.InpaintbenchError, match=message):
        parse_suite({**SUITE, "ablations": [ablation]})


def test_a_shift_too_small_to_show_is_not_marked(real_metrics):
    base = real_metrics["telea"]["psnr"].astype(np.float64)
    frame = _frame({"telea": {"psnr": base}, "nudged": {"psnr": base + 1e-7}})
    (row,) = ablation_rows(frame, [Ablation("n", "telea", (Variant("nudged", "radius", 3.0),))], ["psnr"], ["L2"])
    assert row["low"] > 0 and not row["excludes_zero"] and row["effect"] == ""
