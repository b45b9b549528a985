import pytest

from inpaintbench._registry import InpaintbenchError
from inpaintbench.benchmarks import load_suite, parse_suite
from inpaintbench.benchmarks.suite import SuiteInvalid

BASE = {"name": "t", "dataset": {"path": "d"}, "masks": {"levels": ["L1"]}, "models": [{"name": "mean-fill"}]}


def _with(**changes):
    return {**BASE, **changes}


def test_valid_suite_and_defaults():
    suite = parse_suite(_with(models=[{"name": "mean-fill"}, {"name": "cnn", "train": {"steps": 5}}]))
    assert suite.output == "reports/t" and suite.mask_count == 100
    assert suite.models[0].train is None and suite.models[1].train.steps == 5
    assert suite.models[1].train.seed == 0


@pytest.mark.parametrize("data, message", [
    (_with(models=[{"name": "nope"}]), "name: unknown model 'nope'"),
    (_with(masks={"levels": ["L7"]}), r"\[masks\] levels: unknown mask level"),
    (_with(models=[{"name": "cnn", "options": {"depth": 2}}]), r"options.depth: unknown key for model 'cnn'"),
    (_with(models=[{"name": "cnn", "train": {"stepz": 2}}]), r"train.stepz: unknown key; allowed: accumulate"),
    (_with(models=[{"name": "mean-fill", "train": {"steps": 2}}]), "needs no training"),
    (_with(models=[{"name": "mean-fill"}, {"name": "mean-fill"}]), "labels must be unique"),
    (_with(extra=1), "extra: unknown key"),
    ({"name": "t", "dataset": {"path": "d"}, "masks": {"levels": ["L1"]}}, "models: missing"),
    (_with(models=[]), "at least one"),
    (_with(models=[{"name": "cnn", "train": {"batch_size": 6, "accumulate": 4}}]), "multiple of accumulate"),
    (_with(dataset={"path": "d", "split": "tst"}), r"\[dataset\] split: expected one of train, val, test"),
    (_with(dataset={"path": "d", "build": {"size": 8}}), "build options need a source"),
    (_with(masks={"levels": ["L1", "L1"]}), "each level once"),
    (_with(masks={"levels": ["L1"], "requires": {"L1": "cmd"}}), "requires.L1: expected a mask-set folder"),
    (_with(models=[{"name": "mean-fill", "published": [{"psnr": 30.0}]}]), "published #1 source: missing"),
    (_with(models=[{"name": "mean-fill", "published": [{"source": "p", "psnrr": 1}]}]), "unknown metric 'psnrr'"),
    (_with(models=[{"name": "mean-fill", "published": [{"source": "p", "level": "L5"}]}]), "suite's levels"),
])
def test_malformed_suites_fail_with_one_line(data, message):
    with pytest.raises(InpaintbenchError, match=message) as err:
        parse_suite(data)
    assert "\n" not in str(err.value) and str(err.value).startswith("suite: ")


@pytest.mark.parametrize("masks, shown", [
    ({"levels": ["L1"], "count": "32"}, '"32" (a string)'),
    ({"levels": ["L1"], "count": 32.7}, "32.7 (a number)"),
    ({"levels": ["L1"], "count": True}, "true (true/false)"),
    ({"levels": ["L1"], "count": 0}, "0"),
])
def test_no_silent_coercion_and_ranges(masks, shown):
    with pytest.raises(SuiteInvalid) as err:
        parse_suite(_with(masks=masks), origin="my.toml")
    assert str(err.value) == f"my.toml: [masks] count: expected an integer >= 1, got {shown}"


def test_every_problem_is_one_line_naming_file_key_and_expectation():
    data = _with(seed=-1, masks={"levels": ["L1"], "count": "lots"},
                 dataset={"path": "d", "source": "sample", "build": {"size": "64", "foo": 1,
                                                                     "crops_per_photo": {"train": 1.5}}},
                 models=[{"name": "cnn", "options": {"width": "wide"},
                          "train": {"lr": "fast", "steps": -1, "betas": [0.5], "ema": 1.0, "masks": ["L9"]}}])
    with pytest.raises(SuiteInvalid) as err:
        parse_suite(data, origin="bad.toml")
    lines = err.value.lines
    assert str(err.value) == "\n".join(lines) and all(line.startswith("bad.toml: ") for line in lines)
    expected = [
        "seed: expected an integer >= 0, got -1",
        "[dataset] build.foo: unknown key for source 'sample'; allowed: crops_per_photo, image_format, seed, size, "
        "workers",
        '[dataset] build.size: expected an integer, got "64" (a string)',
        '[dataset] build.crops_per_photo: expected a table of integers, got {"train": 1.5} (a table)',
        '[masks] count: expected an integer >= 1, got "lots" (a string)',
        '[[models]] #1 (cnn) options.width: expected an integer, got "wide" (a string)',
        "[[models]] #1 (cnn) train.steps: expected an integer >= 0, got -1",
        '[[models]] #1 (cnn) train.lr: expected a number > 0, got "fast" (a string)',
        "[[models]] #1 (cnn) train.betas: expected a list of 2 numbers in [0, 1), got [0.5] (a list)",
        "[[models]] #1 (cnn) train.ema: expected a number in [0, 1), got 1.0",
    ]
    assert [line.removeprefix("bad.toml: ") for line in lines[:len(expected)]] == expected
    assert lines[len(expected)].startswith("bad.toml: [[models]] #1 (cnn) train.masks: unknown mask level or preset")
    assert len(lines) == len(expected) + 1


def test_integers_are_numbers_but_nothing_else_converts():
    suite = parse_suite(_with(models=[{"name": "cnn", "train": {"lr": 1, "steps": 3, "betas": [0, 0.5]}}]))
    assert suite.models[0].train.lr == 1 and suite.models[0].train.betas == (0, 0.5)
    with pytest.raises(SuiteInvalid, match="train.bf16: expected true or false, got 1"):
        parse_suite(_with(models=[{"name": "cnn", "train": {"bf16": 1}}]))
    with pytest.raises(SuiteInvalid, match=r"\[masks\] levels: expected a list of strings, got \[1\]"):
        parse_suite(_with(masks={"levels": [1]}))


def test_cli_exits_2_with_the_problems(tmp_path, capsys):
    from inpaintbench.cli import main

    path = tmp_path / "s.toml"
    path.write_text('name = "t"\n[dataset]\npath = "d"\n[masks]\nlevels = ["L1"]\ncount = "lots"\n'
                    '[[models]]\nname = "cnn"\ntrain = { lr = "fast" }\n')
    assert main(["bench", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'error: {path}: [masks] count: expected an integer >= 1, got "lots" (a string)',
                   f'{path}: [[models]] #1 (cnn) train.lr: expected a number > 0, got "fast" (a string)']
    assert not (tmp_path / "reports").exists()


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


def test_every_registered_default_passes_its_own_schema():
    """The checker understands every annotation in use: each config's defaults, as TOML would give them, pass."""
    import dataclasses

    from inpaintbench.benchmarks.schema import check_value, fields_of
    from inpaintbench.benchmarks.suite import TRAIN_RANGES
    from inpaintbench.datasets import SOURCES
    from inpaintbench.models import MODELS
    from inpaintbench.models.train import TrainConfig

    def as_toml(value):
        return [as_toml(v) for v in value] if isinstance(value, (tuple, list)) else value

    owners = [(type(MODELS.get(name).config), MODELS.get(name).config) for name in MODELS]
    owners.append((TrainConfig, TrainConfig()))
    checked = 0
    for cls, instance in owners:
        fields = fields_of(cls, TRAIN_RANGES if cls is TrainConfig else None)
        for f in dataclasses.fields(instance):
            value = as_toml(getattr(instance, f.name))
            if value is None:
                continue  # TOML has no null: an unset optional is left out
            assert check_value(value, fields[f.name].kind), (cls.__name__, f.name, value, fields[f.name].kind)
            checked += 1
    for name in SOURCES:
        import inspect

        for pname, p in inspect.signature(SOURCES.get(name)).parameters.items():
            if pname != "out" and p.default not in (inspect.Parameter.empty, None):
                assert check_value(as_toml(p.default), fields_of(SOURCES.get(name))[pname].kind), (name, pname)
    assert checked > 50
