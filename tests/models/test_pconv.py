import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import inpaintbench.models.pconv  # noqa: F401  (registers pconv, pconv-256, pconv-tiny)
from inpaintbench._registry import InpaintbenchError
from inpaintbench.masks import make_masks
from inpaintbench.models import losses as L
from inpaintbench.models.base import MODELS, count_parameters, create_model
from inpaintbench.models.layers import PartialConv2d


def _batch(size, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g)
    mask = make_masks("L2", n, size=size, seed=seed).float()
    return image, mask


def _tiny(**overrides):
    torch.manual_seed(0)
    return create_model("pconv-tiny", **overrides)


class _Loop:
    """The Trainer's loop in small: one Adam and MultiStepLR per group; backward into params that require grad."""

    def __init__(self, model, lr=2e-3):
        self.model, self.step, self.opts = model, 0, {}
        for group in model.optimizer_groups():
            assert group.modules == ()  # pconv's single group trains every parameter
            opt = torch.optim.Adam(model.parameters(), lr=group.lr or lr)
            self.opts[group.name] = (opt, torch.optim.lr_scheduler.MultiStepLR(opt, list(group.lr_milestones),
                                                                               group.lr_gamma))

    def run(self, image, mask, steps):
        self.model.train()
        for _ in range(steps):
            cache = {}
            for name in self.model.active_groups(self.step):
                opt, _ = self.opts[name]
                opt.zero_grad(set_to_none=True)
                losses = self.model.training_losses(name, image, mask, self.step, cache)
                sum(losses.values()).backward(inputs=[p for p in self.model.parameters() if p.requires_grad])
                opt.step()
            for _, sched in self.opts.values():
                sched.step()
            self.step += 1


# --------------------------------------------------------------------------------------------------
# architecture


@pytest.mark.parametrize(("name", "layers", "expected"), [("pconv", 8, 32.9e6), ("pconv-256", 7, 25.8e6)])
def test_paper_parameter_counts(name, layers, expected):
    model = create_model(name)
    assert model.config.layers == layers
    assert count_parameters(model) == pytest.approx(expected, rel=0.01)
    # naoto0804's first layer has no bias (64 parameters fewer); ours follows mmagic's bias="auto"
    assert count_parameters(model.unet) - MODELS.get(name).reference_count == 64


def test_paper_architecture():
    model = create_model("pconv")
    unet = model.unet
    enc = [(b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0]) for b in unet.encoder]
    assert enc == [(3, 64, 7, 2), (64, 128, 5, 2), (128, 256, 5, 2), (256, 512, 3, 2)] + [(512, 512, 3, 2)] * 4
    dec = [(b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0]) for b in unet.decoder]
    assert dec == [(1024, 512, 3, 1)] * 4 + [(768, 256, 3, 1), (384, 128, 3, 1), (192, 64, 3, 1), (67, 3, 3, 1)]
    assert all(isinstance(b.conv, PartialConv2d) for b in [*model.unet.encoder, *model.unet.decoder])
    # BN everywhere except the first encoder and the last decoder layer, which have a bias instead
    norms = [isinstance(b.norm, nn.BatchNorm2d) for b in [*model.unet.encoder, *model.unet.decoder]]
    assert norms == [False] + [True] * 14 + [False]
    assert [b.conv.bias is not None for b in [*model.unet.encoder, *model.unet.decoder]] == [not n for n in norms]
    assert all(isinstance(b.act, nn.ReLU) for b in model.unet.encoder)
    assert all(isinstance(b.act, nn.LeakyReLU) and b.act.negative_slope == 0.2 for b in model.unet.decoder[:-1])
    assert isinstance(model.unet.decoder[-1].act, nn.Identity)
    assert [k for k in model.state_dict() if "vgg" in k.lower()] == [] and "stage" in model.state_dict()


def test_paper_configs_forward_at_a_small_size():
    image, mask = _batch(64, n=1)
    for name in ("pconv", "pconv-256"):
        model = create_model(name).eval()
        with torch.no_grad():
            pred = model(image * (1 - mask), mask)
        assert pred.shape == image.shape and 0 <= pred.min() and pred.max() <= 1


def test_unet_equals_naoto_forward_loop():
    """naoto0804's PConvUNet.forward (x2 nearest upsampling of every feature and mask plane) with our layers."""
    model = _tiny().eval()
    image, mask = _batch(64)
    x, valid = image * 2 - 1, (1 - mask).repeat(1, 3, 1, 1)
    h_dict, m_dict = {0: x}, {0: valid}
    for i, block in enumerate(model.unet.encoder, start=1):
        h_dict[i], m_dict[i] = block(h_dict[i - 1], m_dict[i - 1])
    layers = model.config.layers
    h, m = h_dict[layers], m_dict[layers]
    for j, i in enumerate(range(layers, 0, -1)):
        h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), h_dict[i - 1]], dim=1)
        m = torch.cat([F.interpolate(m, scale_factor=2, mode="nearest"), m_dict[i - 1]], dim=1)
        h, m = model.unet.decoder[j](h, m)
    with torch.no_grad():
        torch.testing.assert_close(model.unet(x, valid), h, rtol=0, atol=0)
        torch.testing.assert_close(model(image, mask), ((h + 1) / 2).clamp(0, 1))


@pytest.mark.parametrize("size", [32, 64])
def test_tiny_forward_backward(size):
    model = _tiny()
    image, mask = _batch(size, n=2 if size == 32 else 1)
    pred = model(image * (1 - mask), mask)
    assert pred.shape == image.shape and torch.isfinite(pred).all()
    assert pred.min() >= 0 and pred.max() <= 1
    cache = {}
    losses = model.training_losses("generator", image, mask, 0, cache)
    assert set(losses) == {"l1_valid", "l1_hole", "perceptual", "style", "tv"}
    assert cache["pred"].shape == image.shape  # the unclamped output, for the step's other groups
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)


def test_hole_pixels_do_not_matter():
    """Partial convolutions only see valid pixels: noise in the holes gives exactly the same output."""
    model = _tiny()
    image, mask = _batch(32)
    noisy = image * (1 - mask) + torch.rand_like(image) * mask
    for mode in (True, False):
        model.train(mode)
        with torch.no_grad():
            torch.testing.assert_close(model(noisy, mask), model(image * (1 - mask), mask), rtol=0, atol=1e-6)


def test_config_validation():
    with pytest.raises(InpaintbenchError, match="layers >= 1"):
        create_model("pconv-tiny", layers=0)
    with pytest.raises(InpaintbenchError, match="has no option"):
        create_model("pconv", size=256)
    assert create_model("pconv-tiny", widths=[8, 16]).config.widths == (8, 16)


# --------------------------------------------------------------------------------------------------
# losses and the VGG


def test_missing_vgg_weights_fail_only_when_training(empty_hub, tmp_path):
    model = create_model("pconv-tiny", vgg_weights_dir=str(tmp_path / "weights"))
    image, mask = _batch(32)
    with torch.no_grad():
        model(image * (1 - mask), mask)  # inference never needs the VGG
    with pytest.raises(InpaintbenchError) as err:
        model.training_losses("generator", image, mask, 0, {})
    message = str(err.value)
    assert "vgg16-397923af.pth" in message and str(tmp_path / "weights") in message and "\n" not in message


def test_vgg_is_built_once_seeded_and_kept_out_of_the_state_dict():
    model, other = _tiny(), _tiny()
    image, mask = _batch(32)
    rng = torch.get_rng_state()
    model.training_losses("generator", image, mask, 0, {})
    assert torch.equal(torch.get_rng_state(), rng)  # building the random VGG leaves the global RNG alone
    vgg = model.vgg(image.device)
    model.training_losses("generator", image, mask, 1, {})
    assert model.vgg(image.device) is vgg and not any(p.requires_grad for p in vgg.parameters())
    assert all(not k.startswith("_vgg") for k in model.state_dict())
    assert all(not any(p is q for q in vgg.parameters()) for p in model.parameters())
    for a, b in zip(vgg.parameters(), other.vgg(image.device).parameters(), strict=True):
        assert torch.equal(a, b)  # the test-only random VGG is the same in every model (and after a resume)


def test_loss_terms_vanish_on_the_truth_and_scale_with_their_weights():
    image, mask = _batch(32)
    model = _tiny()
    truth = model.loss(image, image, mask)
    assert all(truth[k].item() == pytest.approx(0, abs=1e-6) for k in ("l1_valid", "l1_hole", "perceptual", "style"))
    assert truth["tv"].item() == pytest.approx(0.1 * L.total_variation(image, mask).item())  # TV of the truth itself
    pred = (image + 0.3 * torch.rand_like(image)).clamp(0, 1)
    base = model.loss(pred, image, mask)
    assert all(v.item() > 0 for v in base.values())
    double = _tiny(valid_weight=2, hole_weight=12, perceptual_weight=0.1, style_weight=240, tv_weight=0.2)
    for key, value in double.loss(pred, image, mask).items():
        assert value.item() == pytest.approx(2 * base[key].item(), rel=1e-5), key
    # a prediction that is wrong only far from the hole: the hole L1 and the (dilated-hole) TV stay 0
    far = torch.zeros_like(mask)
    far[..., :4, :4] = 1
    hole = torch.zeros_like(mask)
    hole[..., 20:24, 20:24] = 1
    terms = model.loss(image + far * 0.5, image, hole)
    assert terms["l1_hole"].item() == 0 and terms["l1_valid"].item() > 0
    assert terms["tv"].item() == model.loss(image, image, hole)["tv"].item()


def test_output_is_computed_once_per_step():
    model = _tiny()
    image, mask = _batch(32)
    calls = []
    model.unet.encoder[0].register_forward_hook(lambda *args: calls.append(1))
    cache = {}
    model.training_losses("generator", image, mask, 0, cache)
    model.training_losses("generator", image, mask, 0, cache)
    assert len(calls) == 1
    with pytest.raises(InpaintbenchError, match="generator"):
        model.training_losses("discriminator", image, mask, 0, cache)


# --------------------------------------------------------------------------------------------------
# two-stage training


def test_learning_rate_schedule():
    model = create_model("pconv")
    (group,) = model.optimizer_groups()
    assert group.name == "generator" and group.lr_milestones == (500_000,) and group.lr_gamma == 0.25
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(group.lr_milestones), group.lr_gamma)
    sched.last_epoch = 499_999
    opt.step()
    sched.step()  # now at step 500_000, the first fine-tuning step
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-5)


def _bn_state(norms):
    return [(n.weight.detach().clone(), n.bias.detach().clone(), n.running_mean.clone(), n.running_var.clone())
            for n in norms]


def _changed(before, after):
    return [any(not torch.equal(a, b) for a, b in zip(x, y, strict=True)) for x, y in zip(before, after, strict=True)]


def test_stage_two_freezes_the_encoder_batchnorm_and_survives_a_reload():
    model = _tiny(stage1_steps=2)
    image, mask = _batch(32, n=4)
    enc, dec = model.encoder_norms(), [m for m in model.unet.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(enc) == 4 and len(dec) == 4
    loop = _Loop(model)
    loop.run(image, mask, steps=2)  # stage 1: everything trains
    assert int(model.stage) == 1 and all(n.training and n.weight.requires_grad for n in enc)
    enc_before, dec_before = _bn_state(enc), _bn_state(dec)
    loop.run(image, mask, steps=1)  # the first stage-2 step
    assert loop.opts["generator"][0].param_groups[0]["lr"] == pytest.approx(2e-3 * 0.25)
    assert int(model.stage) == 2 and model.training
    assert _changed(enc_before, _bn_state(enc)) == [False] * 4  # running stats and affine params untouched
    assert _changed(dec_before, _bn_state(dec)) == [True] * 4
    assert all(not n.training and not n.weight.requires_grad and not n.bias.requires_grad for n in enc)
    model.train()
    assert all(not n.training for n in enc) and all(n.training for n in dec)
    frozen = count_parameters(_tiny()) - count_parameters(model)
    assert frozen == sum(n.weight.numel() + n.bias.numel() for n in enc)

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = _tiny(stage1_steps=2)
    assert int(fresh.stage) == 1
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert int(fresh.stage) == 2
    assert all(not n.training and not n.weight.requires_grad for n in fresh.encoder_norms())
    fresh.eval().train()
    assert all(not n.training for n in fresh.encoder_norms())
    with torch.no_grad():
        torch.testing.assert_close(fresh(image, mask), model(image, mask), rtol=0, atol=0)


def test_active_groups_enters_stage_two_before_the_trainer_collects_parameters():
    model = _tiny(stage1_steps=5)
    assert model.active_groups(4) == ("generator",) and int(model.stage) == 1
    assert model.active_groups(5) == ("generator",) and int(model.stage) == 2
    assert not any(n.weight.requires_grad for n in model.encoder_norms())


@pytest.mark.slow
def test_tiny_config_overfits_one_batch(astronaut):
    """The hole L1 on one fixed batch of photo crops falls by at least half within a few dozen steps."""
    image = torch.from_numpy(astronaut).permute(2, 0, 1)[None].float()
    crops = [image[..., y:y + 256, x:x + 256] for y, x in ((0, 0), (0, 256), (256, 0), (256, 256))]
    image = torch.nn.functional.interpolate(torch.cat(crops), size=32, mode="area")
    mask = make_masks("L2", 4, size=32, seed=0).float()
    model = _tiny(stage1_steps=10**9)

    def hole_l1():
        model.eval()
        with torch.no_grad():
            value = ((model(image * (1 - mask), mask) - image).abs() * mask).sum() / (3 * mask.sum())
        model.train()
        return value.item()

    start = hole_l1()
    _Loop(model).run(image, mask, steps=60)
    assert hole_l1() < 0.5 * start


@pytest.mark.slow
def test_trainer_resumes_exactly_across_the_stage_boundary(sample32, tmp_path):
    from inpaintbench.models import train_model
    from inpaintbench.models.resume import load_state

    common = dict(model_options={"stage1_steps": 3}, batch_size=4, lr=1e-3, seed=4,
                  checkpoint_every=2, keep_state=True)

    def state(out, steps):
        train_model("pconv-tiny", sample32, out=tmp_path / out, steps=steps, **common)
        return load_state(tmp_path / out / "checkpoint.pt")

    straight = state("straight", 7)
    stage1, stage2, resumed = state("resumed", 3), state("resumed", 5), state("resumed", 7)
    assert int(stage1["model"]["stage"]) == 1 and int(stage2["model"]["stage"]) == 2
    for key in straight["model"]:
        assert torch.equal(straight["model"][key], resumed["model"][key]), key
    for key in stage1["model"]:  # the encoder's BatchNorm (layers 2..L) did not move in stage 2
        if key.startswith("unet.encoder.") and ".norm." in key:
            assert torch.equal(stage1["model"][key], resumed["model"][key]), key
        elif key.startswith("unet.decoder.") and key.endswith(".norm.running_mean"):
            assert not torch.equal(stage1["model"][key], resumed["model"][key]), key
