import pytest
import torch

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.models.base import count_generator_parameters
from inpaintbench.models.layers import PicnetResidualBlock
from tests.models.gan_fit import fit, hole_l1, masks, photos


def _storages(module):
    return {p.data_ptr() for p in module.parameters()}


# --------------------------------------------------------------------------------------------------
# WGAN-GP


def _direct_penalty(critic, real, fake, lam=10.0):
    """Gulrajani et al. (2017), written out: x_hat = a real + (1 - a) fake, lambda (||grad D(x_hat)||_2 - 1)^2."""
    alpha = torch.rand(real.shape[0], 1, 1, 1)
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    grad = torch.autograd.grad(critic(x_hat).sum(), x_hat)[0]
    return lam * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def test_gradient_penalties_equal_a_direct_autograd_computation(astronaut):
    torch.manual_seed(0)
    model = ib.create_model("dual-path-gan-tiny")
    image, mask = photos(astronaut, 64, n=2), masks(64, 2)
    cache = {}
    torch.manual_seed(123)
    losses = model.training_losses("discriminator", image, mask, 0, cache)
    assert set(losses) == {"d_rec", "d_rec_gp", "d_gen", "d_gen_gp"}
    out = cache["dual"]
    real, rec = image * 2 - 1, out["rec"].detach()
    fakes = torch.cat([out["gen"], mask * out["gen"] + (1 - mask) * real]).detach()
    torch.manual_seed(123)  # the model draws D1's interpolation weights first, then D2's
    expected_rec = _direct_penalty(model.d_rec, real, rec)
    expected_gen = _direct_penalty(model.d_gen, torch.cat([real, real]), fakes)
    torch.testing.assert_close(losses["d_rec_gp"], expected_rec)
    torch.testing.assert_close(losses["d_gen_gp"], expected_gen)
    assert losses["d_gen_gp"] > 0
    torch.testing.assert_close(losses["d_gen"], model.d_gen(fakes).mean() - model.d_gen(real).mean())
    # the penalty trains the critic: it has a gradient in the critic's weights
    grads = torch.autograd.grad(losses["d_gen_gp"], list(model.d_gen.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


class _UnitCritic(torch.nn.Module):
    """A linear critic whose input gradient has norm exactly 1 everywhere."""

    def __init__(self):
        super().__init__()
        direction = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        self.register_buffer("direction", direction / direction.norm())

    def forward(self, x):
        return (x * self.direction).flatten(1).sum(1, keepdim=True)


def test_a_critic_with_unit_gradients_has_no_penalty():
    model = ib.create_model("dual-path-gan-tiny", reconstruction_path=False)
    model.d_gen = _UnitCritic()
    terms = model.critic_losses(torch.rand(2, 3, 8, 8), torch.rand(4, 3, 8, 8), None)
    assert terms["d_gen_gp"].abs() < 1e-8


# --------------------------------------------------------------------------------------------------
# the two paths: which weights they share


def test_encoders_and_critics_are_separate_and_the_generator_is_shared_by_default():
    model = ib.create_model("dual-path-gan")
    assert not _storages(model.encoder_rec) & _storages(model.encoder_gen)
    assert not _storages(model.d_rec) & _storages(model.d_gen)
    assert model.decoder_rec is model.generator and not hasattr(model, "generator_rec")
    state = model.state_dict()
    assert not any(k.startswith("generator_rec.") for k in state)  # G1 is G2: stored once
    groups = {g.name: g for g in model.optimizer_groups()}
    assert set(groups["generator"].modules) == {"encoder_gen", "generator", "encoder_rec"}
    assert set(groups["discriminator"].modules) == {"d_rec", "d_gen"}
    assert groups["generator"].every == 5 and groups["discriminator"].every == 1


def test_separate_generators_share_nothing():
    model = ib.create_model("dual-path-gan", share_generator=False)
    assert model.decoder_rec is model.generator_rec
    assert not _storages(model.generator_rec) & _storages(model.generator)
    assert count_generator_parameters(model) == count_generator_parameters(ib.create_model("dual-path-gan"))


def test_the_reconstruction_loss_trains_the_shared_generator_and_e1_but_not_the_critics(astronaut):
    torch.manual_seed(0)
    model = ib.create_model("dual-path-gan-tiny")
    image, mask = photos(astronaut, 64, n=2), masks(64, 2)
    losses = model.training_losses("generator", image, mask, 0, {})
    assert set(losses) == {"gen_l1", "gen_adv", "rec_l1", "rec_adv"}
    modules = {"encoder_rec": model.encoder_rec, "generator": model.generator, "encoder_gen": model.encoder_gen}
    grads = dict(zip(modules, torch.autograd.grad(losses["rec_l1"], [next(m.parameters()) for m in modules.values()],
                                                  allow_unused=True), strict=True))
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())  # E2's features are fused in
    gen_grads = torch.autograd.grad(losses["gen_l1"], list(model.encoder_rec.parameters()), allow_unused=True)
    assert all(g is None for g in gen_grads)  # the generation path never reads E1


def test_inference_runs_the_generation_path_only():
    torch.manual_seed(0)
    model = ib.create_model("dual-path-gan-tiny").eval()
    image, mask = torch.rand(2, 3, 64, 64), masks(64, 2)
    with torch.no_grad():
        before = model(image * (1 - mask), mask)
        for p in model.encoder_rec.parameters():
            p.add_(1.0)
        after = model(image * (1 - mask), mask)
    assert torch.equal(before, after)
    assert set(model.inference_state_dict()) == {k for k in model.state_dict()
                                                 if k.startswith(("encoder_gen.", "generator."))}


def test_critic_only_steps_keep_no_graph(astronaut):
    model = ib.create_model("dual-path-gan-tiny", n_critic=5)
    image, mask = photos(astronaut, 64, n=2), masks(64, 2)
    cache = {}
    model.training_losses("discriminator", image, mask, 3, cache)  # 3 % n_critic != 0: no generator update
    assert not cache["dual"]["gen"].requires_grad
    losses = model.training_losses("generator", image, mask, 3, cache)  # a loop that asks anyway gets a graph
    assert losses["gen_l1"].requires_grad


# --------------------------------------------------------------------------------------------------
# architecture, ablations, receptive fields


def test_default_architecture_and_receptive_fields():
    model = ib.create_model("dual-path-gan")
    assert len(model.encoder_gen.blocks) == len(model.encoder_rec.blocks) == 7
    assert model.receptive_fields() == {"d_gen": 70, "d_rec": 70}
    d = model.d_gen
    assert [layer[0].kernel_size for layer in d.layers] == [(4, 4)] * 5
    feats = model.encoder_gen(torch.zeros(1, 4, 256, 256))
    assert [tuple(f.shape[1:]) for f in feats] == [(32, 128, 128), (64, 64, 64), (128, 32, 32), (128, 16, 16),
                                                   (128, 8, 8), (128, 8, 8), (128, 8, 8)]
    assert model.generator.attention is not None
    other = ib.create_model("dual-path-gan", d_strides=(2, 2, 2, 2, 1))
    assert other.receptive_fields()["d_gen"] == 94


def test_every_encoder_module_is_conv_pad1_then_reflect_pad_conv_pad0_plus_the_skip():
    block = PicnetResidualBlock(8, 8, pre_activation=False, reflect_second=True)
    convs = [m for m in block.body if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [((3, 3), (1, 1), (1, 1)),
                                                                     ((3, 3), (1, 1), (0, 0))]
    assert isinstance(block.skip, torch.nn.Identity)
    x = torch.randn(1, 8, 9, 11)
    block.eval()  # no power iteration between the two calls
    torch.testing.assert_close(block(x), block.body(x) + x)


def test_ablations_drop_the_reconstruction_path_and_the_attention(astronaut):
    base = ib.create_model("dual-path-gan")
    no_rec = ib.create_model("dual-path-gan", reconstruction_path=False)
    no_attn = ib.create_model("dual-path-gan", attention=False)
    assert not hasattr(no_rec, "encoder_rec") and not hasattr(no_rec, "d_rec")
    assert count_generator_parameters(no_rec) == count_generator_parameters(base)  # inference is the same network
    assert no_attn.generator.attention is None
    assert count_generator_parameters(no_attn) < count_generator_parameters(base)
    image, mask = photos(astronaut, 64, n=2), masks(64, 2)
    assert set(no_rec.training_losses("generator", image, mask, 0, {})) == {"gen_l1", "gen_adv"}
    assert set(no_rec.training_losses("discriminator", image, mask, 0, {})) == {"d_gen", "d_gen_gp"}


def test_bad_configs_fail_with_one_line():
    with pytest.raises(InpaintbenchError, match="downsamples >= 3"):
        ib.create_model("dual-path-gan", downsamples=2)
    with pytest.raises(InpaintbenchError, match="one discriminator stride per layer"):
        ib.create_model("dual-path-gan", d_strides=(2, 2))


def test_forward_takes_any_side():
    model = ib.create_model("dual-path-gan-tiny").eval()
    image, mask = torch.rand(1, 3, 40, 52), torch.zeros(1, 1, 40, 52)
    mask[..., 10:30, 10:30] = 1
    with torch.no_grad():
        out = model(image * (1 - mask), mask)
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1


@pytest.mark.slow
def test_tiny_dual_path_overfits_four_photos_at_64(astronaut):
    """The Trainer's order (critics, then encoders and generators): the generation path's hole L1 halves."""
    torch.manual_seed(0)
    model = ib.create_model("dual-path-gan-tiny", lr=2e-3)
    image, mask = photos(astronaut, 64), masks(64, 4)
    start = hole_l1(model, image, mask)
    fit(model, image, mask, steps=100)
    assert hole_l1(model, image, mask) < 0.5 * start
