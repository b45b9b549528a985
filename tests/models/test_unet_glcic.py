import pytest
import torch
import torch.nn.functional as F

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.masks import make_masks
from inpaintbench.models import MODELS, glcic, unet  # noqa: F401  (registration, until models/__init__ imports them)
from inpaintbench.models.adversarial import ADVERSARIAL
from inpaintbench.models.base import count_parameters, create_model
from inpaintbench.models.glcic import crop_patches, hole_patch_origins

VARIANTS = ["unet", "unet-tiny", "glcic", "glcic-tiny"]


def _photos(astronaut, size, n=4):
    """``n`` crops of the astronaut photo, resized to ``size`` (real image structure to overfit)."""
    photo = torch.from_numpy(astronaut).permute(2, 0, 1).float()
    crops = [photo[:, y:y + 256, x:x + 256] for y, x in [(0, 0), (0, 256), (256, 0), (256, 256), (128, 128)][:n]]
    return F.interpolate(torch.stack(crops), size=(size, size), mode="bilinear", antialias=True).clamp(0, 1)


def _masks(size, n, seed=0):
    return make_masks("L2", n, size=size, seed=seed).float()


def _group_params(model, group):
    """The parameters that ``group`` trains (all of them for an empty ``modules``)."""
    if not group.modules:
        return [p for p in model.parameters() if p.requires_grad]
    return [p for name in group.modules for p in getattr(model, name).parameters() if p.requires_grad]


def _fit(model, image, mask, steps, lr=2e-3, on_step=None):
    """What the Trainer does per step: one Adam per group, active groups in order, grads into the group only."""
    groups = model.optimizer_groups()
    params = {g.name: _group_params(model, g) for g in groups}
    opts = {g.name: torch.optim.Adam(params[g.name], lr=lr) for g in groups}
    model.train()
    for step in range(steps):
        if on_step is not None:
            on_step(step)
        cache = {}
        active = model.active_groups(step)
        for group in groups:
            if group.name not in active or step % group.every:
                continue
            opts[group.name].zero_grad()
            losses = model.training_losses(group.name, image, mask, step, cache)
            sum(losses.values()).backward(inputs=params[group.name])
            opts[group.name].step()


def _hole_l1(model, image, mask):
    model.eval()
    with torch.no_grad():
        value = ib.metrics.l1_hole(model(image * (1 - mask), mask), image, mask).mean().item()
    model.train()
    return value


def _snapshot(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _same_snap(a, b):
    return all(torch.equal(a[name], b[name]) for name in a)


def _same(module, snapshot):
    return _same_snap(_snapshot(module), snapshot)


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_backward_at_64_through_every_phase(name, astronaut):
    torch.manual_seed(0)
    overrides = {"size": 64, "tc": 1, "td": 1} if name.startswith("glcic") else {}
    model = create_model(name, **overrides)
    image, mask = _photos(astronaut, 64, n=2), _masks(64, 2)
    pred = model(image * (1 - mask), mask)
    assert pred.shape == image.shape and torch.isfinite(pred).all()
    assert pred.min() >= 0 and pred.max() <= 1
    groups = model.optimizer_groups()
    seen = set()
    for step in range(3):  # glcic: generator, discriminator, both; unet: generator every step
        cache = {}
        for group in groups:
            if group.name not in model.active_groups(step):
                continue
            params = _group_params(model, group)
            others = [p for p in model.parameters() if all(p is not q for q in params)]
            model.zero_grad(set_to_none=True)
            losses = model.training_losses(group.name, image, mask, step, cache)
            assert losses and all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
            sum(losses.values()).backward(inputs=params)
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
            assert any(p.grad.abs().sum() > 0 for p in params)
            assert all(p.grad is None for p in others)
            seen.add((group.name, tuple(sorted(losses))))
    if name.startswith("glcic"):
        assert seen == {("generator", ("mse_hole",)), ("discriminator", ("d_adv",)),
                        ("generator", ("g_adv", "mse_hole"))}


@pytest.mark.parametrize("adversarial", sorted(ADVERSARIAL))
def test_glcic_joint_step_with_every_adversarial_loss(adversarial):
    torch.manual_seed(0)
    model = create_model("glcic-tiny", size=32, tc=0, td=0, adversarial=adversarial)
    image, mask = torch.rand(2, 3, 32, 32), _masks(32, 2)
    cache = {}
    for group in model.optimizer_groups():
        losses = model.training_losses(group.name, image, mask, 0, cache)
        sum(losses.values()).backward(inputs=_group_params(model, group))
        assert all(torch.isfinite(v) for v in losses.values())
    assert set(losses) == {"mse_hole", "g_adv"}


def test_glcic_default_completes_a_256_image():
    model = create_model("glcic").eval()
    image, mask = torch.rand(1, 3, 256, 256), _masks(256, 1)
    with torch.no_grad():
        pred = model(image * (1 - mask), mask)
    assert pred.shape == (1, 3, 256, 256) and pred.min() >= 0 and pred.max() <= 1


def test_glcic_completion_network_matches_the_reference_parameter_count():
    model = create_model("glcic")
    n = count_parameters(model.generator)
    assert abs(n - 6.07e6) / 6.07e6 < 0.01, n
    assert n == 6_069_155  # conv weights (no bias before BN) + BN affine + output conv bias
    assert count_parameters(model.discriminator) == 45_060_225  # global 25.81M + local 19.25M + FC 2049
    assert MODELS.get("glcic").reference_count == 6_070_000


def test_glcic_phases_and_optimizer_groups():
    model = create_model("glcic")
    assert [g.name for g in model.optimizer_groups()] == ["discriminator", "generator"]
    assert [g.modules for g in model.optimizer_groups()] == [("discriminator",), ("generator",)]
    assert {(g.optimizer, g.lr) for g in model.optimizer_groups()} == {("adadelta", 1.0)}
    assert model.active_groups(0) == model.active_groups(89_999) == ("generator",)
    assert model.active_groups(90_000) == model.active_groups(99_999) == ("discriminator",)
    assert model.active_groups(100_000) == ("discriminator", "generator")
    adam = create_model("glcic-tiny", optimizer="adam")
    assert {(g.optimizer, g.lr) for g in adam.optimizer_groups()} == {("adam", None)}
    with pytest.raises(InpaintbenchError, match="optimizer"):
        create_model("glcic", optimizer="sgd")
    with pytest.raises(InpaintbenchError, match="multiple of 4"):
        create_model("glcic", size=66)


def test_glcic_refills_holes_and_takes_any_size():
    model = create_model("glcic-tiny").eval()
    image, mask = torch.rand(2, 3, 64, 64), _masks(64, 2)
    with torch.no_grad():
        a = model(image * (1 - mask), mask)
        b = model(image, mask)  # whatever the holes hold, they are refilled with `fill`
        odd = model(torch.rand(1, 3, 30, 45), torch.zeros(1, 1, 30, 45))
    assert torch.allclose(a, b)
    assert odd.shape == (1, 3, 30, 45)
    with pytest.raises(InpaintbenchError, match="64x64"):
        model.training_losses("discriminator", torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32), 25, {})


def test_unet_takes_any_size():
    model = create_model("unet-tiny").eval()
    with torch.no_grad():
        for h, w in [(8, 8), (30, 45), (64, 64)]:
            assert model(torch.rand(1, 3, h, w), torch.zeros(1, 1, h, w)).shape == (1, 3, h, w)


def test_local_patch_is_centred_on_the_hole_and_inside_the_image():
    size, patch = 64, 32
    mask = torch.zeros(5, 1, size, size)
    mask[0, :, 20:30, 40:50] = 1  # interior hole
    mask[1, :, 0:6, 0:4] = 1  # top-left corner: clamped to (0, 0)
    mask[2, :, 55:64, 58:64] = 1  # bottom-right corner: clamped to (32, 32)
    mask[3, :, 10:12, 5:7] = 1
    mask[3, :, 50:52, 60:62] = 1  # two holes: the bounding box spans both
    # sample 4 has no hole: the centred window
    origins = hole_patch_origins(mask, patch)
    assert origins.tolist() == [[8, 28], [0, 0], [32, 32], [14, 17], [15, 15]]
    image = torch.arange(5 * 3 * size * size, dtype=torch.float32).view(5, 3, size, size)
    patches = crop_patches(image, origins, patch)
    assert patches.shape == (5, 3, patch, patch)
    for i, (top, left) in enumerate(origins.tolist()):
        assert 0 <= top <= size - patch and 0 <= left <= size - patch
        assert torch.equal(patches[i], image[i, :, top:top + patch, left:left + patch])
        ys, xs = torch.nonzero(mask[i, 0], as_tuple=True)
        if len(ys):
            cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
            assert top <= cy < top + patch and left <= cx < left + patch
    # random holes: always the right size, inside, containing the bounding-box centre
    masks = _masks(size, 16, seed=3)
    for i, (top, left) in enumerate(hole_patch_origins(masks, patch).tolist()):
        ys, xs = torch.nonzero(masks[i, 0], as_tuple=True)
        assert 0 <= top <= size - patch and 0 <= left <= size - patch
        assert top <= (ys.min() + ys.max()) / 2 < top + patch and left <= (xs.min() + xs.max()) / 2 < left + patch
    with pytest.raises(InpaintbenchError, match="does not fit"):
        hole_patch_origins(mask, 65)


def test_unet_tiny_overfits_one_batch(astronaut):
    torch.manual_seed(0)
    image, mask = _photos(astronaut, 32), _masks(32, 4)
    model = create_model("unet-tiny")
    start = _hole_l1(model, image, mask)
    _fit(model, image, mask, steps=100)
    assert _hole_l1(model, image, mask) < 0.5 * start


def test_glcic_tiny_overfits_one_batch_through_the_three_phases(astronaut):
    """Phase 1 leaves the discriminator alone, phase 2 the generator; the hole L1 halves by the end."""
    torch.manual_seed(0)
    tc, td, steps = 80, 10, 100
    image, mask = _photos(astronaut, 32), _masks(32, 4)
    model = create_model("glcic-tiny", size=32, tc=tc, td=td)
    start = _hole_l1(model, image, mask)
    snaps = {}

    def on_step(step):
        if step in (0, tc, tc + td):
            snaps[step] = (_snapshot(model.generator), _snapshot(model.discriminator))

    _fit(model, image, mask, steps=steps, on_step=on_step)
    assert _same_snap(snaps[tc][1], snaps[0][1]), "the discriminator changed during phase 1"
    assert _same_snap(snaps[tc + td][0], snaps[tc][0]), "the generator changed during phase 2"
    assert not _same_snap(snaps[tc + td][1], snaps[tc][1])  # the discriminator learnt in phase 2
    assert not _same(model.generator, snaps[tc + td][0])  # both learnt in phase 3
    assert not _same(model.discriminator, snaps[tc + td][1])
    assert _hole_l1(model, image, mask) < 0.5 * start


def test_glcic_without_local_discriminator_ignores_the_patch_and_trains():
    from inpaintbench.models.base import create_model

    full = create_model("glcic-tiny")
    ablated = create_model("glcic-tiny", local_discriminator=False, tc=0, td=0)
    assert ablated.discriminator.local_d is None
    local = sum(p.numel() for p in full.discriminator.local_d.parameters())
    fewer = sum(p.numel() for p in full.discriminator.parameters()) - sum(
        p.numel() for p in ablated.discriminator.parameters())
    assert fewer == local + 64  # the local trunk and the final FC's 64 weights of its half
    image = torch.rand(2, 3, 64, 64)
    patch = torch.rand(2, 3, 32, 32)
    d = ablated.discriminator
    torch.testing.assert_close(d(image, patch), d(image, torch.zeros_like(patch)))
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 8:30, 12:40] = 1
    cache = {}
    losses = ablated.training_losses("generator", image, mask, step=0, cache=cache)
    assert set(losses) == {"mse_hole", "g_adv"}
    sum(losses.values()).backward()
    assert ablated.generator[0][0].weight.grad is not None
