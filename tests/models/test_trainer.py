"""The Trainer's engine: groups, update ratios, phases, accumulation, EMA, NaN guard, resume and DDP."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inpaintbench._registry import InpaintbenchError
from inpaintbench.datasets.loader import InpaintDataset
from inpaintbench.models import load_weights
from inpaintbench.models.resume import load_state
from inpaintbench.models.train import TrainConfig, checkpoint_interval, train
from tests.models.toy_gan import ToyConfig, ToyGAN


def _run(sample32, out, steps, seed=0, **options):
    torch.manual_seed(seed)
    model = ToyGAN(ToyConfig(**{k: options.pop(k) for k in list(options) if k in ToyConfig.__dataclass_fields__}))
    dataset = InpaintDataset(sample32, "train", masks=["L2"], seed=1)
    config = TrainConfig(steps=steps, batch_size=8, seed=3, log_every=1, checkpoint_every=4, **options)
    return model, train(model, dataset, out, config, model_name="toy")


def test_groups_step_at_their_ratio_and_phase(sample32, tmp_path):
    model, _ = _run(sample32, tmp_path / "run", steps=6, generator_only_until=2)
    calls = [(step, group) for step, group, _ in model.seen]
    # steps 0-1: generator-only phase (and the generator steps on even steps only); then the critic every step
    assert calls == [(0, "generator"), (2, "critic"), (2, "generator"), (3, "critic"), (4, "critic"),
                     (4, "generator"), (5, "critic")]
    with open(tmp_path / "run" / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["group"], r["loss"]) for r in rows} == {("critic", "wgan"), ("generator", "l1"), ("generator", "adv")}
    assert (tmp_path / "run" / "samples" / "step-0000006.png").exists()


def test_a_group_only_changes_when_it_trains(sample32, tmp_path):
    torch.manual_seed(0)
    model = ToyGAN(ToyConfig(generator_only_until=3))
    critic_before = [p.detach().clone() for p in model.critic.parameters()]
    train(model, InpaintDataset(sample32, "train", masks=["L2"]), tmp_path / "a",
          TrainConfig(steps=3, batch_size=8, checkpoint_every=10))
    assert all(torch.equal(a, b) for a, b in zip(critic_before, model.critic.parameters(), strict=True))


def test_resume_gives_the_weights_and_losses_of_an_uninterrupted_run(sample32, tmp_path):
    _, straight = _run(sample32, tmp_path / "straight", steps=8, ema=0.9, keep_state=True)
    _run(sample32, tmp_path / "resumed", steps=4, ema=0.9, keep_state=True)
    _, resumed = _run(sample32, tmp_path / "resumed", steps=8, ema=0.9, keep_state=True)
    assert straight.read_bytes() == resumed.read_bytes()
    a, b = (load_state(tmp_path / run / "checkpoint.pt") for run in ("straight", "resumed"))
    for part in ("model", "ema"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    assert a["optimizers"]["critic"]["state"][0]["step"] == b["optimizers"]["critic"]["state"][0]["step"]
    losses = [(tmp_path / run / "losses.csv").read_text().splitlines() for run in ("straight", "resumed")]
    assert losses[0] == losses[1]


def test_random_draws_do_not_depend_on_the_resume(sample32, tmp_path):
    """Every step seeds the generators from (seed, step): a model drawing noise resumes exactly too."""
    class Noisy(ToyGAN):
        def training_losses(self, group, image, mask, step, cache):
            losses = super().training_losses(group, image, mask, step, cache)
            return {k: v + 1e-3 * torch.rand(()) for k, v in losses.items()}

    def run(out, steps):
        torch.manual_seed(0)
        config = TrainConfig(steps=steps, batch_size=8, seed=3, log_every=1, checkpoint_every=2, keep_state=True)
        return train(Noisy(ToyConfig()), InpaintDataset(sample32, "train", masks=["L2"], seed=1), out, config,
                     model_name="toy")

    straight = run(tmp_path / "straight", 6)
    run(tmp_path / "resumed", 3)
    torch.rand(100)  # whatever the generators did in between
    assert run(tmp_path / "resumed", 6).read_bytes() == straight.read_bytes()


def test_a_killed_run_resumes_without_repeating_log_rows(sample32, tmp_path):
    """A run stopped after its step-4 checkpoint but after logging steps 5 and 6 logs them once on resume."""
    with pytest.raises(InpaintbenchError, match=r"generator loss became non-finite at step \d+"):
        _run(sample32, tmp_path / "run", steps=8, nan_at=6)  # stops at step 7's check; state of step 4 kept
    assert load_state(tmp_path / "run" / "checkpoint.pt")["step"] == 4
    _run(sample32, tmp_path / "run", steps=8)
    _run(sample32, tmp_path / "straight", steps=8)
    steps = [line.split(",")[0] for line in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [str(s) for s in range(1, 9)]
    assert ((tmp_path / "run" / "losses.csv").read_text() == (tmp_path / "straight" / "losses.csv").read_text())


def test_checkpoint_interval_adapts_to_short_runs():
    assert checkpoint_interval(TrainConfig(steps=200)) == 20
    assert checkpoint_interval(TrainConfig(steps=100_000)) == 250
    assert checkpoint_interval(TrainConfig(steps=3)) == 1
    assert checkpoint_interval(TrainConfig(steps=200, checkpoint_every=50)) == 50


def test_ema_weights_are_what_evaluation_loads(sample32, tmp_path):
    model, path = _run(sample32, tmp_path / "run", steps=4, ema=0.5, keep_state=True)
    state = load_state(tmp_path / "run" / "checkpoint.pt")
    assert not torch.equal(state["ema"]["generator.weight"], state["model"]["generator.weight"])
    fresh = load_weights(ToyGAN(ToyConfig()), path)
    assert torch.equal(fresh.generator.weight, state["ema"]["generator.weight"])


def test_accumulation_matches_one_big_batch(sample32, tmp_path):
    one, _ = _run(sample32, tmp_path / "one", steps=3)
    two, _ = _run(sample32, tmp_path / "two", steps=3, accumulate=2)
    for (name, a), b in zip(one.state_dict().items(), two.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_nan_loss_stops_with_one_line(sample32, tmp_path):
    with pytest.raises(InpaintbenchError, match=r"generator loss became non-finite at step 2 \(l1=nan"):
        _run(sample32, tmp_path / "run", steps=5, nan_at=2)


def test_bad_group_declarations_are_refused(sample32, tmp_path):
    class Shared(ToyGAN):
        def optimizer_groups(self):
            from inpaintbench.models.base import OptimizerGroup

            return (OptimizerGroup("critic", ("critic",)), OptimizerGroup("generator"))

    with pytest.raises(InpaintbenchError, match="shares parameters"):
        train(Shared(ToyConfig()), InpaintDataset(sample32, "train"), tmp_path / "x", TrainConfig(steps=1))
    with pytest.raises(InpaintbenchError, match="multiple of accumulate"):
        TrainConfig(batch_size=6, accumulate=4)


@pytest.mark.slow
def test_ddp_two_processes_train_on_disjoint_data_and_keep_identical_weights(sample32, tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(root / "tests" / "models" / "ddp_worker.py"), str(sample32), str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    for step in range(6):  # per step, the two processes saw different halves of the batch
        sums = [[s for st, g, s in r["seen"] if st == step and g == "critic"] for r in ranks]
        assert sums[0] and sums[1] and sums[0] != sums[1]
    single, _ = _run(sample32, tmp_path / "single", steps=1, seed=0)
    whole = [s for st, g, s in single.seen if st == 0 and g == "critic"][0]
    halves = [[s for st, g, s in r["seen"] if st == 0 and g == "critic"][0] for r in ranks]
    assert sum(halves) == pytest.approx(whole, rel=1e-5)  # together they are the single process's batch
    assert (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.slow
def test_glcic_resumes_exactly_across_its_phases(sample32, tmp_path):
    """glcic-tiny: phases change at steps 20 (discriminator only) and 30 (joint); stop at 18, resume to 36."""
    from inpaintbench.models import train_model

    common = dict(model_options={"size": 32}, batch_size=4, seed=2, checkpoint_every=6, log_every=1,
                  keep_state=True)
    train_model("glcic-tiny", sample32, out=tmp_path / "straight", steps=36, **common)
    train_model("glcic-tiny", sample32, out=tmp_path / "resumed", steps=18, **common)
    train_model("glcic-tiny", sample32, out=tmp_path / "resumed", steps=36, **common)
    a, b = (load_state(tmp_path / run / "checkpoint.pt") for run in ("straight", "resumed"))
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    losses = [(tmp_path / run / "losses.csv").read_text().splitlines() for run in ("straight", "resumed")]
    assert losses[0] == losses[1]
    groups = {line.split(",")[1] for line in losses[0][1:]}
    assert groups == {"generator", "discriminator"}


def test_training_from_the_shards_equals_training_from_memory(sample32, tmp_path):
    """A split too large for memory is read from the shards by two workers: same weights and losses."""
    runs = {}
    for name, in_memory, workers in (("memory", True, 0), ("shards", False, 2)):
        torch.manual_seed(0)
        model = ToyGAN(ToyConfig())
        dataset = InpaintDataset(sample32, "train", masks=["L2"], seed=1, in_memory=in_memory)
        config = TrainConfig(steps=4, batch_size=8, seed=3, log_every=1, checkpoint_every=4, workers=workers,
                             keep_state=True)
        train(model, dataset, tmp_path / name, config, model_name="toy")
        runs[name] = load_state(tmp_path / name / "checkpoint.pt")
        assert (dataset._memory is None) is (not in_memory)
    for key, value in runs["memory"]["model"].items():
        assert torch.equal(value, runs["shards"]["model"][key]), key
    losses = [(tmp_path / name / "losses.csv").read_text() for name in runs]
    assert losses[0] == losses[1]


_SYNCS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in __import__("inpaintbench").list_models("*-tiny")
                                  if __import__("inpaintbench").models.MODELS.get(n).model_cls.trainable])
def test_a_training_step_never_waits_for_the_device(name, sample32, tmp_path, monkeypatch):
    """No code of ours reads a tensor's value on the host inside a step (on CUDA that is a sync per step).

    Every Tensor method that copies a value to the host is wrapped, and calls made from inpaintbench's own
    files during the training steps are counted; torch's optimisers read their CPU step counters by design.
    """
    import importlib

    import inpaintbench as ib

    trainer = importlib.import_module("inpaintbench.models.train")
    calls, inside = [], [False]

    def counting(method):
        original = getattr(torch.Tensor, method)

        def wrapper(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if inside[0] and f"{os.sep}inpaintbench{os.sep}" in caller:
                calls.append(f"{method} in {Path(caller).name}:{sys._getframe(1).f_lineno}")
            return original(self, *args, **kwargs)

        return wrapper

    for method in _SYNCS:
        monkeypatch.setattr(torch.Tensor, method, counting(method))
    real_step = trainer.train_step

    def step(*args, **kwargs):
        inside[0] = True
        try:
            return real_step(*args, **kwargs)
        finally:
            inside[0] = False

    monkeypatch.setattr(trainer, "train_step", step)
    fields = ib.models.MODELS.get(name).config.__dataclass_fields__
    overrides = {k: v for k, v in {"size": 32, "stage1_steps": 2, "tc": 1, "td": 1}.items() if k in fields}
    model = ib.create_model(name, **overrides)
    dataset = InpaintDataset(sample32, "train", masks=["L2"])
    trainer.train(model, dataset, tmp_path / "run", TrainConfig(steps=4, batch_size=4, log_every=100), model_name=name)
    assert calls == []


def test_a_runs_lr_sets_the_generators_and_keeps_the_models_ratios():
    import inpaintbench as ib
    from inpaintbench.models.steps import group_lrs

    model = ib.create_model("edgeconnect-tiny")
    own = group_lrs(model, TrainConfig())
    given = group_lrs(model, TrainConfig(lr=5e-5))
    assert given["generator"] == 5e-5
    for name, lr in own.items():  # every group keeps its official ratio to the generator (D = 0.1 x G)
        assert given[name] == pytest.approx(lr * 5e-5 / own["generator"])
    assert group_lrs(ib.create_model("cnn-tiny"), TrainConfig()) == {"generator": 2e-4}


@pytest.mark.parametrize("name, eager", [("lama-tiny", {"discriminator"}),
                                         ("deepfill-v1-tiny", {"critic_global", "critic_local"}),
                                         ("dual-path-gan-tiny", {"d_rec", "d_gen"}),
                                         ("edgeconnect-tiny", {"edge_discriminator", "discriminator"}),
                                         ("cnn-tiny", set())])
def test_compile_leaves_the_discriminators_eager(name, eager):
    # R1 and gradient penalties differentiate through a discriminator twice, which compiled autograd refuses
    import inpaintbench as ib
    from inpaintbench.models.steps import compile_networks

    model = ib.create_model(name)
    keys = list(model.state_dict())
    names = compile_networks(model, backend="eager")  # dynamo traces as for inductor, without code generation
    assert set(names) == {n for n, _ in model.named_children()} - eager and names
    compiled = {n for n, m in model.named_children() if "forward" in vars(m)}
    assert compiled == set(names) and list(model.state_dict()) == keys  # checkpoints keep their key names
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    size = getattr(model.config, "size", 32)  # the fully convolutional models take any size
    model(torch.rand(1, 3, size, size), torch.zeros(1, 1, size, size))
    # dynamo really traced the forward (Module.compile() under torch 2.11 captured nothing)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
