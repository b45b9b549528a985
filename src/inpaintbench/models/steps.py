"""One training step: the optimiser groups a model declares, their step, non-finite checks and the EMA.

Per step, each active group whose ``every`` divides the step runs its losses on the step's batch (split into
``accumulate`` micro-batches), gradients are accumulated into that group's parameters only
(``backward(inputs=...)``), averaged across DDP processes, clipped, and the group's optimiser and learning-rate
schedule step. Nothing here waits for the device: losses stay tensors until the Trainer logs them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from .._registry import InpaintbenchError
from .base import InpaintModel, OptimizerGroup

if TYPE_CHECKING:
    from .train import TrainConfig

DEFAULT_LR = 2e-4  # the learning rate of a group that names none, when the run gives none either


@dataclass
class Group:
    """An optimiser group at run time: its spec, parameters, optimiser and learning-rate schedule."""

    spec: OptimizerGroup
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler


def group_lrs(model: InpaintModel, config: TrainConfig) -> dict[str, float]:
    """The learning rate of each optimiser group.

    Without ``config.lr`` each group takes its own (the paper's), or :data:`DEFAULT_LR`. With it, the generator
    takes ``config.lr`` and every other group keeps its ratio to the generator's own rate (EdgeConnect's and LaMa's
    discriminators stay at 0.1x), so ``--lr`` always means something.
    """
    specs = model.optimizer_groups()
    own = {spec.name: spec.lr or DEFAULT_LR for spec in specs}
    if config.lr is None:
        return own
    base = own.get("generator", DEFAULT_LR)
    return {name: config.lr * lr / base for name, lr in own.items()}


def compile_networks(model: InpaintModel, backend: str = "inductor") -> list[str]:
    """``torch.compile`` the forward of every submodule but the discriminators; return the names of those compiled.

    A discriminator (the modules of a group named ``*discriminator``) stays eager: LaMa's R1 penalty and the
    gradient penalties of DeepFill v1 and the dual-path WGAN-GP differentiate through it twice, which compiled
    autograd refuses ("does not currently support double backward"). ``backend`` is torch.compile's (the tests
    trace with "eager").
    """
    critics = {name for spec in model.optimizer_groups() if spec.name.endswith("discriminator")
               for name in spec.modules}
    names = [name for name, _ in model.named_children() if name not in critics]
    for name in names:
        module = getattr(model, name)
        # the forward, not Module.compile(): under torch 2.11 (the lent GPU machine's image) Module.compile()
        # captured no frame at all and ran eagerly (seen on the CPU); torch.compile(module) would wrap it in a
        # module whose state_dict keys all gain an "_orig_mod." prefix
        module.forward = torch.compile(module.forward, backend=backend)
    return names


def build_groups(model: InpaintModel, config: TrainConfig) -> dict[str, Group]:
    """One optimiser (and schedule) per group the model declares, with a one-line error for a bad declaration."""
    groups: dict[str, Group] = {}
    claimed: set[int] = set()
    lrs = group_lrs(model, config)
    for spec in model.optimizer_groups():
        modules = [getattr(model, name, None) for name in spec.modules] if spec.modules else [model]
        if any(not isinstance(m, torch.nn.Module) for m in modules):
            raise InpaintbenchError(f"optimizer group {spec.name!r} names a missing submodule: {spec.modules}")
        params = list(dict.fromkeys(p for m in modules for p in m.parameters()))
        if claimed & {id(p) for p in params}:
            raise InpaintbenchError(f"optimizer group {spec.name!r} shares parameters with another group")
        claimed |= {id(p) for p in params}
        lr, betas = lrs[spec.name], spec.betas or config.betas
        if spec.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=spec.weight_decay)
        elif spec.optimizer == "adamw":
            optimizer = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=spec.weight_decay)
        elif spec.optimizer == "adadelta":
            optimizer = torch.optim.Adadelta(params, lr=lr, weight_decay=spec.weight_decay)
        else:
            raise InpaintbenchError(f"optimizer group {spec.name!r}: unknown optimizer {spec.optimizer!r}")
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(spec.lr_milestones), spec.lr_gamma)
        groups[spec.name] = Group(spec, params, optimizer, schedule)
    return groups


class Health:
    """Non-finite losses, flagged on the device and checked at log and checkpoint steps (no per-step host sync).

    It keeps the step, the group and the losses of the first non-finite total, for the error message.
    """

    def __init__(self, device: torch.device) -> None:
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.bad_group = torch.full((), -1, dtype=torch.long, device=device)
        self.groups: list[str] = []
        self.values: dict[str, torch.Tensor] = {}  # "group/loss" -> its value at the first bad step

    def watch(self, group: str, step: int, losses: dict[str, torch.Tensor], total: torch.Tensor) -> None:
        """Flag ``step`` when ``total`` is not finite and no earlier step was."""
        if group not in self.groups:
            self.groups.append(group)
        newly = ~torch.isfinite(total.detach()) & (self.first_bad < 0)
        self.first_bad = torch.where(newly, step, self.first_bad)
        self.bad_group = torch.where(newly, self.groups.index(group), self.bad_group)
        for key, value in losses.items():
            value = value.detach().float()
            kept = self.values.get(f"{group}/{key}", torch.full_like(value, float("nan")))
            self.values[f"{group}/{key}"] = torch.where(newly, value, kept)

    def check(self) -> None:
        """Raise the one-line error of the first non-finite loss so far, naming the group and its losses."""
        first = int(self.first_bad)
        if first < 0:
            return
        group = self.groups[int(self.bad_group)]
        bad = ", ".join(f"{key.split('/', 1)[1]}={float(value):.4g}" for key, value in self.values.items()
                        if key.startswith(f"{group}/"))
        raise InpaintbenchError(f"{group} loss became non-finite at step {first} ({bad}); lower the learning rate "
                                "or check the data")


def train_step(model: InpaintModel, groups: dict[str, Group], image: torch.Tensor, mask: torch.Tensor, step: int,
                config: TrainConfig, use_bf16: bool, world: int, health: Health,
                extras: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """One optimiser step of every group active at ``step``; returns the losses (``group/name``: detached tensor).

    ``extras`` are the batch's per-sample inputs from the loader (:meth:`~.base.InpaintModel.sample_inputs`);
    each micro-batch's part starts its ``cache``. Nothing here waits for the device: losses stay tensors and
    non-finite ones are flagged in ``health``.
    """
    active = [name for name in model.active_groups(step) if step % groups[name].spec.every == 0]
    micro_images, micro_masks = image.chunk(config.accumulate), mask.chunk(config.accumulate)
    micro_extras = [{k: v.chunk(config.accumulate)[i] for k, v in (extras or {}).items()}
                    for i in range(len(micro_images))]
    # With one micro-batch the groups of a step share the generator's output; with several, keeping every
    # micro-batch's graph alive until the generator's turn would defeat accumulation, so each group recomputes.
    shared = [dict(e) for e in micro_extras] if config.accumulate == 1 else None
    logged: dict[str, torch.Tensor] = {}
    for name in active:
        group = groups[name]
        group.optimizer.zero_grad(set_to_none=True)
        trainable = [p for p in group.params if p.requires_grad]
        for i, (im, ma) in enumerate(zip(micro_images, micro_masks, strict=True)):
            cache = shared[i] if shared is not None else dict(micro_extras[i])
            with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                losses = model.training_losses(name, im, ma, step, cache)
                total = sum(losses.values())
            health.watch(name, step, losses, total)
            (total / config.accumulate).backward(inputs=trainable)
            for key, value in losses.items():
                part = value.detach().float() / config.accumulate
                logged[f"{name}/{key}"] = logged[f"{name}/{key}"] + part if f"{name}/{key}" in logged else part
        if world > 1:
            for p in trainable:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        clip = group.spec.clip_norm or config.clip_norm
        if clip:
            torch.nn.utils.clip_grad_norm_(trainable, clip)
        group.optimizer.step()
    with warnings.catch_warnings():  # a group that has not stepped yet (GLCIC's discriminator in phase 1)
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
        for group in groups.values():  # schedules follow the step count, whether or not the group trained
            group.schedule.step()
    return logged


def make_ema(model: InpaintModel, groups: dict[str, Group], decay: float):
    """An EMA of the model's weights and buffers (inference uses it: the stored weights are the EMA's)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    if "generator" not in groups:
        raise InpaintbenchError("ema needs an optimizer group named 'generator'")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def update_ema(ema: Any, model: InpaintModel) -> None:
    """Average the float weights and buffers; copy integer buffers (step counters, PConv's stage) as they are."""
    ema.update_parameters(model)
    for mine, theirs in zip(ema.module.buffers(), model.buffers(), strict=True):
        if not mine.is_floating_point():
            mine.copy_(theirs)
