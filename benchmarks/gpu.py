"""The one prepared device benchmark: training and inference speed, FLOPs and MFU per model, data wait, metrics.

    python benchmarks/gpu.py                 # on a GPU: every registered network at 256x256, under ~8 minutes
    python benchmarks/gpu.py --quick         # anywhere: tiny variants at 32x32 (the tests run this on CPU)
    python benchmarks/gpu.py --models 'lama*' --budget 300
    bash benchmarks/gpu_device.sh --budget 300   # on a lent device machine (benchmarks/README.md says how)

For every trainable registered network (the ``-tiny`` CPU variants with ``--quick``) it measures, with the
Trainer's own step (``models.steps.train_step``: every group after the last phase, losses, backward into each
group, optimiser steps) on random images with L3 masks:

* training images/s in fp32 (TF32 allowed, as the Trainer sets it), in bf16 autocast + channels_last, and the
  same compiled with ``torch.compile`` (the compile time is reported apart), after warm-up steps;
* the peak device memory of each;
* the model FLOPs per training image, counted once with ``torch.utils.flop_counter.FlopCounterMode`` on one
  step (forward and backward of every group; a multiply-add is 2 FLOPs), and the MFU: achieved FLOP/s over the
  device's dense bf16 peak (a table below; MFU is left blank for an unknown device);
* inference images/s of the model's forward (bf16 autocast on CUDA);
* for a model that misses a target (bf16 MFU 35%, bf16 1.5x fp32; every model with ``--quick``), the top ops
  of two bf16 training steps by self device time (``torch.profiler``), which say why;

then the data path: the Trainer's own DataLoader (``models.batches.make_loader``: masks drawn on the fly in the
workers, pinned memory) over a generated 256 px sample dataset, alone (images/s) and inside a real training
loop of the fastest and the slowest model, as the share of each step spent waiting for the next batch; and the
metrics on the device: PSNR + SSIM, LPIPS and Inception features (randomly initialised networks when the
pretrained files are missing: the same compute).

The batch per model is the largest of 32, 16, 8, 4 that fits (stated in the table). A wall-clock ``--budget``
(seconds) skips what would not fit (the compile rows first) and says so. ``--quick`` never compiles (on a CPU
a compile takes minutes and says nothing about a GPU). Results go to
``benchmarks/results/gpu-<date>-<device>.md`` and ``.json`` (``--out-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("INPAINTBENCH_RANDOM_LOSS_NETWORKS", "1")  # the same compute as the pretrained files

import torch  # noqa: E402

import inpaintbench as ib  # noqa: E402
from inpaintbench.masks import make_masks  # noqa: E402
from inpaintbench.models import MODELS  # noqa: E402
from inpaintbench.models.steps import Health, build_groups, compile_networks, train_step  # noqa: E402
from inpaintbench.models.train import TrainConfig, set_backends  # noqa: E402

PHASE_END = 10**9  # a step after every phase (GLCIC's joint phase, PConv's fine-tuning)
BATCHES = (32, 16, 8, 4)
# dense bf16 tensor peaks (no sparsity), TFLOP/s, by a pattern of torch.cuda.get_device_name()
BF16_PEAK_TFLOPS = {r"H100 NVL|H200 NVL": 835.0, r"H100.*(SXM|HBM3)|H200|GH200": 989.0, r"H100.*PCIe": 756.0,
                    r"A100": 312.0,
                    r"L40S": 362.0, r"L4\b": 121.0, r"A10G?\b": 125.0, r"RTX 4090": 165.0, r"RTX 3090": 71.0,
                    r"V100": 125.0, r"T4\b": 65.0}
MFU_TARGET, SPEEDUP_TARGET = 0.35, 1.5  # benchmarks/README.md: the targets for the convolutional generators
# measured first, one preset each, so that a run the budget cuts short drops the variants and baselines instead
TARGET_MODELS = ("unet", "glcic", "pconv-256", "deepfill-v1", "deepfill-v2", "edgeconnect", "aot-gan", "big-lama")
WAIT_SECONDS = 10.0  # the data-wait loop stops after this much timed stepping (at least 20 steps)
RESULT_FIELDS = ("model", "size", "batch", "fp32_images_s", "bf16_images_s", "bf16_speedup", "compiled_images_s",
                 "compile_s", "peak_mem_fp32_gb", "peak_mem_bf16_gb", "train_gflops_per_image", "mfu_bf16",
                 "mfu_compiled", "inference_images_s", "profile_top", "notes")


def bf16_peak(device: torch.device) -> float | None:
    """The device's dense bf16 peak in FLOP/s, or None when it is not in the table."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for pattern, tflops in BF16_PEAK_TFLOPS.items():
        if re.search(pattern, name):
            return tflops * 1e12
    return None


def run_order(names: list[str]) -> list[str]:
    """The models in measuring order: the targets' generators first (their tiny variants with ``--quick``)."""
    tiny = {"pconv-256": "pconv-tiny", "big-lama": "lama-tiny"}  # the rest are the preset's name + "-tiny"

    def rank(name: str) -> int:
        hits = [i for i, t in enumerate(TARGET_MODELS) if name in (t, tiny.get(t, f"{t}-tiny"))]
        return hits[0] if hits else len(TARGET_MODELS)

    return sorted(names, key=rank)  # stable: the rest keep the registry's order


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    """Drop what earlier measurements left (loss networks sit in reference cycles) so each starts on a clean device."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _extras(model, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's per-sample inputs (EdgeConnect's Canny edges...), made on the CPU as the loader's workers do."""
    extra = model.sample_inputs()
    if extra is None:
        return {}
    items = [extra(i, m) for i, m in zip(image, mask, strict=True)]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def _out_of_memory(err: BaseException) -> bool:
    """A CUDA allocation failure: torch's own error, or cuDNN's / cuBLAS's / cuFFT's as a RuntimeError."""
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and any(t in str(err) for t in ("out of memory", "ALLOC_FAILED")))


def _options(name: str, size: int) -> dict[str, Any]:
    fields = MODELS.get(name).config.__dataclass_fields__
    return {k: v for k, v in {"size": size}.items() if k in fields}


class Bench:
    """One model at one batch: builds it once per precision and times the Trainer's step."""

    def __init__(self, name: str, size: int, batch: int, device: torch.device) -> None:
        self.name, self.size, self.batch, self.device = name, size, batch, device
        g = torch.Generator().manual_seed(0)
        self.image = torch.rand(batch, 3, size, size, generator=g)
        self.mask = make_masks("L3", batch, size=size, seed=0).float()
        self.extras: dict[str, torch.Tensor] | None = None  # the model's per-sample inputs, made at the first setup

    def _setup(self, bf16: bool, compiled: bool):
        _free(self.device)
        torch.manual_seed(0)
        model = ib.create_model(self.name, **_options(self.name, self.size)).to(self.device)
        if self.extras is None:  # made once: Canny on the CPU is the loader workers' job, not the step's
            self.extras = {k: v.to(self.device) for k, v in _extras(model, self.image, self.mask).items()}
        image, mask = self.image.to(self.device), self.mask.to(self.device)
        if bf16:
            model.to(memory_format=torch.channels_last)
            image, mask = image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)
        if compiled:
            torch._dynamo.reset()  # no model inherits another's graphs, nor its count towards the recompile limit
            compile_networks(model)  # as the Trainer does: the discriminators stay eager
        config = TrainConfig(batch_size=self.batch, bf16=bf16)
        model.train()
        return model, build_groups(model, config), config, image, mask

    def step(self, model, groups, config, image, mask, bf16: bool) -> None:
        """One Trainer step of every group (after the last phase), with the model's per-sample inputs."""
        train_step(model, groups, image, mask, PHASE_END, config, bf16 and self.device.type == "cuda", 1,
                   Health(self.device), self.extras)

    def train_speed(self, bf16: bool, compiled: bool = False, steps: int = 10, warmup: int = 3
                    ) -> tuple[float, float, float]:
        """(images/s, peak memory in GB, seconds of the first steps: compile time when compiled)."""
        model, groups, config, image, mask = self._setup(bf16, compiled)
        start = time.perf_counter()
        for _ in range(warmup):
            self.step(model, groups, config, image, mask, bf16)
        _sync(self.device)
        first = time.perf_counter() - start
        if self.device.type == "cuda":  # the steady state's peak: not cuDNN's autotuning in the first steps
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step(model, groups, config, image, mask, bf16)
        _sync(self.device)
        rate = self.batch * steps / (time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated(self.device) / 2**30 if self.device.type == "cuda" else float("nan")
        return rate, peak, first

    def profile_top(self, bf16: bool, steps: int = 2, top: int = 5) -> list[str]:
        """The ops taking most of the step's device time (self time, CPU time on a CPU), as "name share" strings."""
        from torch.profiler import ProfilerActivity, profile

        model, groups, config, image, mask = self._setup(bf16, compiled=False)
        self.step(model, groups, config, image, mask, bf16)  # warm-up outside the trace
        _sync(self.device)
        cuda = self.device.type == "cuda"
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as trace:
            for _ in range(steps):
                self.step(model, groups, config, image, mask, bf16)
            _sync(self.device)
        attribute = "self_device_time_total" if cuda else "self_cpu_time_total"
        # on CUDA the kernels alone, as torch's own table sums them: an op's self device time is its kernels'
        # again, and user annotations (Optimizer.step, record_function) span them a third time
        events = [e for e in trace.key_averages() if getattr(e, attribute, 0) > 0
                  and (not cuda or (e.device_type == torch.autograd.DeviceType.CUDA and not e.is_user_annotation))]
        total = sum(getattr(e, attribute) for e in events) or 1.0
        events.sort(key=lambda e: getattr(e, attribute), reverse=True)
        return [f"{e.key[:60]} {getattr(e, attribute) / total:.0%}" for e in events[:top]]

    def flops_per_image(self) -> float:
        """Training FLOPs per image of one step (every group's forward and backward), counted by torch."""
        from torch.utils.flop_counter import FlopCounterMode

        model, groups, config, image, mask = self._setup(bf16=False, compiled=False)
        counter = FlopCounterMode(display=False)
        with counter:
            self.step(model, groups, config, image, mask, bf16=False)
        return counter.get_total_flops() / self.batch

    def inference_speed(self, steps: int = 10) -> float:
        """Forward images/s in eval mode (bf16 autocast on CUDA)."""
        torch.manual_seed(0)
        model = ib.create_model(self.name, **_options(self.name, self.size)).to(self.device).eval()
        image, mask = self.image.to(self.device), self.mask.to(self.device)
        cuda = self.device.type == "cuda"
        if cuda:  # as the bf16 training rows
            model.to(memory_format=torch.channels_last)
            image, mask = image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cuda):
            for _ in range(2):
                model(image * (1 - mask), mask)
            _sync(self.device)
            start = time.perf_counter()
            for _ in range(steps):
                model(image * (1 - mask), mask)
            _sync(self.device)
        return self.batch * steps / (time.perf_counter() - start)


def fitting_batch(name: str, size: int, device: torch.device, batches: tuple[int, ...]) -> int:
    """The largest batch of ``batches`` whose fp32 training step fits in memory (bf16 needs less)."""
    for batch in batches:
        fits = False
        try:
            bench = Bench(name, size, batch, device)
            model, groups, config, image, mask = bench._setup(bf16=False, compiled=False)
            bench.step(model, groups, config, image, mask, bf16=False)
            _sync(device)
            fits = True
        except Exception as err:
            if not _out_of_memory(err):
                raise
        model = groups = bench = None  # freed outside the except, whose traceback holds the activations
        _free(device)
        if fits:
            return batch
    return batches[-1]


def _steps(quick: bool) -> tuple[int, int]:
    """Timed and warm-up steps of a training measurement."""
    return (2, 1) if quick else (10, 3)


def measure_model(name: str, size: int, device: torch.device, quick: bool, deadline: float,
                  peak: float | None) -> dict[str, Any]:
    """Every eager training and inference figure of one model (a dict of RESULT_FIELDS; see measure_compiled)."""
    batch = fitting_batch(name, size, device, (4,) if quick else BATCHES)
    bench = Bench(name, size, batch, device)
    steps, warmup = _steps(quick)
    row: dict[str, Any] = {"model": name, "size": size, "batch": batch, "notes": ""}
    row["fp32_images_s"], row["peak_mem_fp32_gb"], _ = bench.train_speed(False, steps=steps, warmup=warmup)
    row["train_gflops_per_image"] = bench.flops_per_image() / 1e9
    if device.type == "cuda":
        row["bf16_images_s"], row["peak_mem_bf16_gb"], _ = bench.train_speed(True, steps=steps, warmup=warmup)
        row["bf16_speedup"] = row["bf16_images_s"] / row["fp32_images_s"]
    if quick:
        row["notes"] += "compile not run with --quick; "
    if peak:
        row["mfu_bf16"] = row["train_gflops_per_image"] * 1e9 * row.get("bf16_images_s", float("nan")) / peak
    row["inference_images_s"] = bench.inference_speed(steps=steps)
    if misses_target(row, device) and (quick or time.monotonic() < deadline):
        row["profile_top"] = bench.profile_top(device.type == "cuda", steps=1 if quick else 2)
    return row


def measure_compiled(row: dict[str, Any], device: torch.device, peak: float | None) -> None:
    """Add the ``torch.compile`` figures to a measured row (after every eager row: compiles are the slowest)."""
    steps, warmup = _steps(quick=False)
    bench = Bench(row["model"], row["size"], row["batch"], device)
    try:
        rate, _, first = bench.train_speed(device.type == "cuda", compiled=True, steps=steps, warmup=warmup)
    except Exception as err:  # a model that does not compile is reported, not fatal
        row["notes"] += f"compile failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}; "
        return
    finally:
        _free(device)
    row["compiled_images_s"], row["compile_s"] = rate, first
    if peak:
        row["mfu_compiled"] = row["train_gflops_per_image"] * 1e9 * rate / peak


def misses_target(row: dict[str, Any], device: torch.device) -> bool:
    """Whether a model misses the stated targets (bf16 MFU 35%, bf16 1.5x fp32); every model on a CPU."""
    if device.type != "cuda":
        return True  # --quick on a CPU profiles too, so the profiling path cannot rot
    return not (row.get("mfu_bf16", 0.0) >= MFU_TARGET and row.get("bf16_speedup", 0.0) >= SPEEDUP_TARGET)


def data_path(size: int, device: torch.device, quick: bool, models: list[str]) -> dict[str, Any]:
    """The loader alone (images/s) and its share of real training steps (time waiting for the next batch)."""
    import tempfile

    from inpaintbench.datasets.loader import InpaintDataset
    from inpaintbench.datasets.sample import build_sample
    from inpaintbench.models.batches import PREFETCH, loader_workers, make_loader

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        crops = {"train": 8, "val": 1, "test": 1} if quick else {"train": 128, "val": 4, "test": 4}
        build_sample(Path(tmp) / "data", size=size, seed=0, crops_per_photo=crops, image_format="jpg")
        dataset = InpaintDataset(Path(tmp) / "data", "train", masks=["L3"], seed=0)
        config = TrainConfig(batch_size=4 if quick else 32)
        workers = loader_workers(config, device)
        # the batches the workers hold ready when the clock starts (prefetch_factor each) are not counted: a
        # loader that starts with a full queue would otherwise look faster than it runs
        skip = 1 if quick else workers * PREFETCH + 2
        timed = 2 if quick else 200
        config = dataclasses.replace(config, steps=skip + timed)
        out["workers"], out["timed_batches"] = workers, timed
        start = None
        for i, batch in enumerate(make_loader(dataset, config, device, 0)):
            batch["image"].to(device, non_blocking=True)
            if i == skip - 1:
                _sync(device)
                start = time.perf_counter()
        _sync(device)
        out["loader_images_s"] = timed * config.batch_size / (time.perf_counter() - start)
        out["waits"] = []
        cuda = device.type == "cuda"
        for name in models:
            _free(device)
            torch.manual_seed(0)
            model = ib.create_model(name, **_options(name, size)).to(device)
            if cuda:
                model.to(memory_format=torch.channels_last)
            groups = build_groups(model, dataclasses.replace(config, bf16=cuda))
            health, waited, stepped = Health(device), 0.0, 0.0
            loader = iter(make_loader(dataset, config, device, 0, extra=model.sample_inputs()))
            model.train()
            timed_steps = 0
            for step in range(config.steps):
                t0 = time.perf_counter()
                batch = next(loader)
                image = batch["image"].to(device, non_blocking=True)
                mask = batch["mask"].to(device, non_blocking=True)
                if cuda:  # as the Trainer feeds a bf16 run
                    image = image.to(memory_format=torch.channels_last)
                    mask = mask.to(memory_format=torch.channels_last)
                extras = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k not in ("image", "mask")}
                t1 = time.perf_counter()
                train_step(model, groups, image, mask, PHASE_END, config, cuda, 1, health, extras)
                _sync(device)
                t2 = time.perf_counter()
                if step >= skip:  # once the batches queued before the first step are used up
                    waited, stepped, timed_steps = waited + t1 - t0, stepped + t2 - t1, timed_steps + 1
                    if not quick and timed_steps >= 20 and waited + stepped > WAIT_SECONDS:
                        break  # enough for a share: 200 steps of the slowest model would take minutes
            out["waits"].append({"model": name, "wait_share": waited / (waited + stepped), "steps": timed_steps})
            model = groups = loader = None
    return out


def metric_speed(size: int, device: torch.device, quick: bool) -> dict[str, float]:
    """Images/s of PSNR + SSIM, LPIPS (AlexNet) and Inception features on the device."""
    from inpaintbench.benchmarks.metrics import psnr, ssim

    n = 4 if quick else 64
    g = torch.Generator().manual_seed(0)
    pred, target = (torch.rand(n, 3, size, size, generator=g).to(device) for _ in range(2))
    result = {}

    def timed(fn, repeats: int = 1 if quick else 3) -> float:
        fn()
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        _sync(device)
        return n * repeats / (time.perf_counter() - start)

    result["psnr_ssim_images_s"] = timed(lambda: (psnr(pred, target), ssim(pred, target, fused=False)))
    try:
        import lpips

        net = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False).to(device).eval()
        with torch.no_grad():
            result["lpips_images_s"] = timed(lambda: net(pred * 2 - 1, target * 2 - 1))
    except Exception as err:  # reported, not fatal
        result["lpips_error"] = str(err).splitlines()[0][:120]
    try:
        net = _inception(device)
        uint8 = (pred * 255).to(torch.uint8)
        with torch.no_grad():
            result["inception_images_s"] = timed(lambda: net(uint8))
    except Exception as err:  # reported, not fatal
        result["inception_error"] = str(err).splitlines()[0][:120]
    return result


def _inception(device: torch.device):
    """torch-fidelity's inception-v3-compat extractor, with the real weights when cached, else random ones."""
    from unittest import mock

    from torch_fidelity import feature_extractor_inceptionv3 as fe

    real = Path(torch.hub.get_dir()) / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    if real.is_file():
        return fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                              feature_extractor_weights_path=str(real)).to(device).eval()
    # the same network with its random initialisation: nothing is fetched (the compute is the same)
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None):
        return fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).to(device).eval()


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_results(report: dict[str, Any], out_dir: Path) -> Path:
    """The markdown table and the JSON of a run; returns the markdown path."""
    device = report["device"]
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-") or "device"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"gpu-{report['date']}-{slug}"
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    lines = [f"# Device benchmark: {device}", "",
             f"`python benchmarks/gpu.py{' --quick' if report['quick'] else ''}` on {report['date']}; torch "
             f"{report['torch']}; {report['host']}; backends {report['backends']}; bf16 peak "
             f"{_fmt(report['bf16_peak_tflops'])} TFLOP/s; wall time {report['wall_s']:.0f} s.", "",
             "Training: the Trainer's step (every group after the last phase) on random images with L3 masks; "
             "MFU = counted training FLOPs per image x images/s / bf16 dense peak.", "",
             "| model | size | batch | fp32 img/s | bf16+CL img/s | bf16 speed-up | compiled img/s | compile s | "
             "peak GB fp32 / bf16 | train GFLOP/img | MFU bf16 | MFU compiled | inference img/s | notes |",
             "|" + "---|" * 15]
    for r in report["models"]:
        lines.append(f"| {r['model']} | {r['size']} | {r['batch']} | {_fmt(r.get('fp32_images_s'))} | "
                     f"{_fmt(r.get('bf16_images_s'))} | {_fmt(r.get('bf16_speedup'), 2)} | "
                     f"{_fmt(r.get('compiled_images_s'))} | {_fmt(r.get('compile_s'), 0)} | "
                     f"{_fmt(r.get('peak_mem_fp32_gb'), 2)} / {_fmt(r.get('peak_mem_bf16_gb'), 2)} | "
                     f"{_fmt(r.get('train_gflops_per_image'), 2)} | {_fmt(r.get('mfu_bf16'), 3)} | "
                     f"{_fmt(r.get('mfu_compiled'), 3)} | {_fmt(r.get('inference_images_s'))} | "
                     f"{r.get('notes', '').strip()} |")
    profiled = [r for r in report["models"] if r.get("profile_top")]
    if profiled:
        lines += ["", f"Where the step's time goes for the models below target (MFU bf16 {MFU_TARGET:.0%}, bf16 "
                  f"{SPEEDUP_TARGET}x fp32): torch.profiler, the top ops by self device time over "
                  "training steps (self CPU time on a CPU):", ""]
        lines += [f"- {r['model']}: " + "; ".join(r["profile_top"]) for r in profiled]
    data = report.get("data", {})
    if data:
        lines += ["", f"Data path: the Trainer's DataLoader with L3 masks drawn on the fly, {data['workers']} "
                  f"workers, batches timed after those queued at the start: "
                  f"**{_fmt(data['loader_images_s'])} images/s** alone ({data['timed_batches']} batches); share "
                  "of each training step spent waiting for the next batch: " + ", ".join(
                      f"{w['model']} {w['wait_share']:.1%} ({w.get('steps', '-')} steps)" for w in data["waits"]) + "."]
    if report.get("metrics"):
        lines += ["", "Metrics on the device (images/s): " + ", ".join(
            f"{k.replace('_images_s', '')} {_fmt(v) if isinstance(v, float) else v}"
            for k, v in report["metrics"].items()) + "."]
    for key in ("data_error", "metrics_error"):
        if report.get(key):
            lines += ["", f"{key.split('_')[0].capitalize()} measurement failed: {report[key]}."]
    if report.get("skipped"):
        lines += ["", "Skipped for the time budget: " + ", ".join(report["skipped"]) + "."]
    Path(f"{stem}.md").write_text("\n".join(lines) + "\n")
    return Path(f"{stem}.md")


def main(argv: list[str] | None = None) -> Path:
    """Run the benchmark and write its result files; returns the markdown path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny variants at 32x32 (a smoke test, any device)")
    parser.add_argument("--models", default="*", help="fnmatch pattern of registered models")
    parser.add_argument("--size", type=int, help="image side [default: 256, 32 with --quick]")
    parser.add_argument("--budget", type=float, default=420.0, help="wall-clock seconds before skipping")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    start = time.monotonic()
    # no compile starts after 80% of the budget: one takes up to a minute or two, and the files are written
    # after every row, so whatever the budget leaves out is said in them
    deadline = start + args.budget * 0.8
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    size = args.size or (32 if args.quick else 256)
    backends = set_backends(TrainConfig(), device)
    names = run_order([n for n in ib.list_models(args.models) if MODELS.get(n).model_cls.trainable
                       and n.endswith("-tiny") == args.quick])
    peak = bf16_peak(device)
    rows: list[dict[str, Any]] = []
    report = {"device": torch.cuda.get_device_name(device) if cuda else f"{platform.machine()} CPU",
              "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "quick": args.quick,
              "host": f"{os.cpu_count()} CPU cores, python {platform.python_version()}", "backends": backends,
              "bf16_peak_tflops": peak / 1e12 if peak else None, "models": rows, "skipped": [], "wall_s": 0.0}

    def save() -> Path:
        # after every step of the run: a device lent for minutes may be taken back, or the command cut, any time
        report["wall_s"] = time.monotonic() - start
        return write_results(report, args.out_dir)

    try:
        for name in names:  # every eager row first, then the data path and the metrics, then the compiles
            if time.monotonic() > start + args.budget * 0.6:
                report["skipped"].append(name)
                continue
            try:
                rows.append(measure_model(name, size, device, args.quick, deadline, peak))
            except Exception as err:  # one failing model must not cost the whole (scarce) device run
                rows.append({"model": name, "size": size, "batch": "-", "notes": f"failed: {type(err).__name__}: "
                                                                                 f"{str(err).splitlines()[0][:160]}"})
            print(json.dumps(rows[-1], default=str), flush=True)
            save()
        timed = [r for r in rows if r.get("fp32_images_s")]
        extremes = sorted({min(timed, key=lambda r: r["fp32_images_s"])["model"],
                           max(timed, key=lambda r: r["fp32_images_s"])["model"]}) if timed else []
        for key, measure in (("data", lambda: data_path(size, device, args.quick, extremes) if extremes else {}),
                             ("metrics", lambda: metric_speed(size, device, args.quick))):
            try:
                report[key] = measure()
            except Exception as err:  # reported, not fatal
                report[key + "_error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
            save()
        for row in timed if not args.quick else []:
            if time.monotonic() > deadline:
                row["notes"] += "compile skipped (time budget); "
                continue
            measure_compiled(row, device, peak)
            print(json.dumps({k: row.get(k) for k in ("model", "compiled_images_s", "compile_s", "notes")}),
                  flush=True)
            save()
    finally:
        path = save()
    print(path)
    return path


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
