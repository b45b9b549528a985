import pytest

from inpaintbench._registry import InpaintbenchError
from inpaintbench.benchmarks import load_suite, parse_suite

BASE = {"name": "t", "dataset": {"path": "d"}, "masks": {"levels": ["L1"]}, "models": [{"name": "mean-fill"}]}


def _with(**changes):
    return {**BASE, **changes}


def test_valid_suite_and_defaults():
    suite = parse_suite(_with(models=[{"name": "mean-fill"}, {"name": "cnn", "train": {"steps": 5}}]))
    assert suite.output == "reports/t" and suite.mask_count == 100
    assert suite.models[0].train is None and suite.models[1].train.steps == 5
    assert suite.models[1].train.seed == 0


@pytest.mark.parametrize("data, message", [
    (_with(models=[{"name": "nope"}]), "unknown model 'nope'"),
    (_with(masks={"levels": ["L7"]}), "unknown mask level"),
    (_with(models=[{"name": "cnn", "options": {"depth": 2}}]), "has no option depth"),
    (_with(models=[{"name": "cnn", "train": {"stepz": 2}}]), "unknown train option"),
    (_with(models=[{"name": "mean-fill", "train": {"steps": 2}}]), "needs no training"),
    (_with(models=[{"name": "mean-fill"}, {"name": "mean-fill"}]), "labels must be unique"),
    (_with(extra=1), "unknown key extra"),
    ({"name": "t", "dataset": {"path": "d"}, "masks": {"levels": ["L1"]}}, "missing key models"),
    (_with(models=[]), "at least one"),
])
def test_malformed_suites_fail_with_one_line(data, message):
    with pytest.raises(InpaintbenchError, match=message) as err:
        parse_suite(data)
    assert "\n" not in str(err.value)


def test_load_suite_errors(tmp_path):
    with pytest.raises(InpaintbenchError, match="does not exist"):
        load_suite(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(InpaintbenchError, match="not valid TOML"):
        load_suite(bad)


def test_shipped_suites_validate():
    from pathlib import Path

    suites = sorted((Path(__file__).parents[2] / "benchmarks").glob("*.toml"))
    assert suites
    for path in suites:
        load_suite(path)
