import pytest
import torch
import torch.nn.functional as F
from torch import nn

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.models import checkpoints
from inpaintbench.models.base import count_generator_parameters
from inpaintbench.models.dmfn import center_loss, feature_centroids, self_guided_error_map
from inpaintbench.models.store import import_checkpoint, load_stored
from tests.models.gan_fit import fit, hole_l1, masks, photos

# --------------------------------------------------------------------------------------------------
# an independent re-statement of the official generator (Zheng222/DMFN models/architecture.py, block.py),
# with its module names, so that its state dict has the official keys and shapes


class _OfficialConvBlock(nn.Module):
    """block.conv_block: zero pad, conv (bias), optional IN (no affine), activation."""

    def __init__(self, c_in, c_out, k, stride=1, padding=0, norm="in", act="relu"):
        super().__init__()
        self.pad = nn.ZeroPad2d(padding)
        self.conv = nn.Conv2d(c_in, c_out, k, stride, 0)
        self.norm = nn.InstanceNorm2d(c_out, affine=False) if norm == "in" else None
        self.act = {"relu": nn.ReLU(), "tanh": nn.Tanh()}[act]

    def forward(self, x):
        x = self.conv(self.pad(x))
        return self.act(self.norm(x) if self.norm is not None else x)


class _OfficialUpconv(nn.Module):
    """block.upconv_block: deconv4x4 s2, IN, ReLU, then a conv_block 3x3."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)
        self.norm = nn.InstanceNorm2d(c_out, affine=False)
        self.conv = _OfficialConvBlock(c_out, c_out, 3, padding=1)

    def forward(self, x):
        return self.conv(torch.relu(self.norm(self.deconv(x))))


class _OfficialDMFB(nn.Module):
    """block.ResBlock_new, written out from the paper's equations."""

    def __init__(self, nc):
        super().__init__()
        self.c1 = nn.Conv2d(nc, nc // 4, 3, 1, 1)
        for i, rate in enumerate((1, 2, 4, 8), start=1):
            setattr(self, f"d{i}", nn.Conv2d(nc // 4, nc // 4, 3, 1, rate, dilation=rate))
        self.c2 = nn.Conv2d(nc, nc, 3, 1, 1)

    def forward(self, x):
        inorm = lambda t: F.instance_norm(t)  # noqa: E731
        h = torch.relu(inorm(self.c1(x)))
        k1, k2, k3, k4 = self.d1(h), self.d2(h), self.d3(h), self.d4(h)
        combined = torch.cat([k1, k1 + k2, k1 + k2 + k3, k1 + k2 + k3 + k4], 1)
        return x + inorm(self.c2(torch.relu(inorm(combined))))


class _OfficialGenerator(nn.Module):
    def __init__(self, nf=64, n_res=8):
        super().__init__()
        self.encoder = nn.Sequential(_OfficialConvBlock(4, nf, 5, padding=2, norm="none"),
                                     _OfficialConvBlock(nf, 2 * nf, 3, stride=2, padding=1),
                                     _OfficialConvBlock(2 * nf, 2 * nf, 3, padding=1),
                                     _OfficialConvBlock(2 * nf, 4 * nf, 3, stride=2, padding=1))
        self.blocks = nn.Sequential(*[_OfficialDMFB(4 * nf) for _ in range(n_res)])
        self.decoder = nn.Sequential(_OfficialConvBlock(4 * nf, 4 * nf, 3, padding=1),
                                     _OfficialUpconv(4 * nf, 2 * nf), _OfficialUpconv(2 * nf, nf),
                                     _OfficialConvBlock(nf, 3, 3, padding=1, norm="none", act="tanh"))

    def forward(self, x):
        return self.decoder(self.blocks(self.encoder(x)))


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return module


# --------------------------------------------------------------------------------------------------
# architecture and the official checkpoint


def test_generator_has_the_official_parameter_count_and_key_count():
    model = ib.create_model("dmfn")
    official = _OfficialGenerator()
    assert count_generator_parameters(model) == sum(p.numel() for p in official.parameters()) == 9_037_443
    assert len(model.inference_state_dict()) == len(official.state_dict()) == 116


def _hand_mapped(official_state):
    """Our generator's state dict, each official tensor placed by hand (no regular expressions)."""
    ours = {}
    for key, value in official_state.items():
        parts = key.split(".")
        if parts[0] == "encoder":  # encoder.i.conv.w -> encoder.i.0.w
            ours[f"generator.encoder.{parts[1]}.0.{parts[3]}"] = value
        elif parts[0] == "blocks":
            name = {"c1": "reduce.0", "d1": "branches.0", "d2": "branches.1", "d3": "branches.2",
                    "d4": "branches.3", "c2": "fuse"}[parts[2]]
            ours[f"generator.blocks.{parts[1]}.{name}.{parts[3]}"] = value
        elif parts[1] in ("0", "3"):  # decoder.0/3.conv.w -> decoder.0/3.0.w
            ours[f"generator.decoder.{parts[1]}.0.{parts[3]}"] = value
        elif parts[2] == "deconv":
            ours[f"generator.decoder.{parts[1]}.deconv.{parts[3]}"] = value
        else:  # decoder.1/2.conv.conv.w -> decoder.1/2.conv.0.w
            ours[f"generator.decoder.{parts[1]}.conv.0.{parts[4]}"] = value
    return ours


def test_fabricated_official_checkpoint_imports_strictly_and_runs_as_the_official_code(tmp_path):
    """The bare state dict that base_model.save_network writes imports with no missing or unexpected key."""
    official = _randomise(_OfficialGenerator(), seed=1).eval()
    path = tmp_path / "latest_G.pth"
    torch.save({k: v.cpu() for k, v in official.state_dict().items()}, path)  # save_network: a bare state dict

    obj = checkpoints.read_checkpoint(path)
    assert [lay.key for lay in checkpoints.detect_layouts(obj)] == ["dmfn:official"]
    entry = import_checkpoint("dmfn", path, store=tmp_path / "store")
    model, card = load_stored(entry, store=tmp_path / "store")
    assert card["layout"] == "dmfn:official" and card["original_file"] == "latest_G.pth"
    model.eval()

    by_hand = ib.create_model("dmfn").eval()
    by_hand.load_inference_state_dict(_hand_mapped(obj))

    image = _randomise_image(64)
    mask = masks(64, 2)
    with torch.no_grad():
        ours = model(image * (1 - mask), mask)
        ours_by_hand = by_hand(image * (1 - mask), mask)
        x = image * 2 - 1  # official test.py: input in [-1, 1] with holes 0, the mask as a 4th channel
        reference = (official(torch.cat([x * (1 - mask), mask], dim=1)) + 1) / 2
    assert torch.equal(ours, ours_by_hand)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-5)


def _randomise_image(size, n=2):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(3))


def test_a_checkpoint_with_a_wrong_shape_or_extra_key_is_refused_by_name(tmp_path):
    official = _OfficialGenerator(nf=32)  # half width: every shape differs
    obj = dict(official.state_dict())
    model = ib.create_model("dmfn")
    with pytest.raises(checkpoints.CheckpointMismatch, match="wrong shape"):
        checkpoints.convert(type(model), "dmfn", obj, model.inference_state_dict())
    obj = dict(_OfficialGenerator().state_dict(), **{"global_model.0.conv.weight": torch.zeros(1)})
    with pytest.raises(checkpoints.CheckpointMismatch, match="1 unexpected .global_model.0.conv.weight"):
        checkpoints.convert(type(model), "dmfn", obj, model.inference_state_dict())


def test_forward_takes_sides_that_are_not_multiples_of_four():
    model = ib.create_model("dmfn-tiny").eval()
    image, mask = torch.rand(1, 3, 30, 42), torch.zeros(1, 1, 30, 42)
    mask[..., 8:20, 10:30] = 1
    with torch.no_grad():
        out = model(image * (1 - mask), mask)
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1


def test_discriminator_matches_the_official_shapes_at_256():
    model = ib.create_model("dmfn")
    d = model.discriminator
    assert d.global_fc.in_features == d.local_fc.in_features == 512 * 4 * 4
    logits, feats = d(torch.zeros(2, 3, 128, 128), torch.zeros(2, 3, 256, 256))
    assert logits.shape == (2, 1)
    assert [f.shape[1:] for f in feats] == [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8), (512, 4, 4)]


# --------------------------------------------------------------------------------------------------
# losses


def test_self_guided_error_map_is_the_normalised_squared_error():
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.tensor([[[[0.0, 1.0], [2.0, 0.0]]]]).expand(1, 3, 2, 2)
    e = self_guided_error_map(pred, target)
    assert torch.equal(e, torch.tensor([[[[0.0, 0.25], [1.0, 0.0]]]]))
    assert torch.isfinite(self_guided_error_map(target, target)).all()  # exact output: no NaN


def test_feature_centroids_read_both_axes_on_the_official_grid():
    feat = torch.zeros(1, 2, 4, 8)
    feat[0, 0, 1, 6] = 1.0  # row 1, column 6
    feat[0, 1, 3, 0] = 1.0
    centres = feature_centroids(feat, eps=0.0)
    # the grid is k / n * 2 - 1: x = 6 / 8 * 2 - 1 = 0.5, y = 1 / 4 * 2 - 1 = -0.5
    torch.testing.assert_close(centres, torch.tensor([[[0.5, -0.5], [-1.0, 0.5]]]))
    assert center_loss(feat, feat) == 0
    moved = torch.roll(feat, shifts=1, dims=2)  # one row down: only y changes
    assert center_loss(moved, feat) > 0


def test_generator_adversarial_term_is_the_official_halved_ragan(astronaut):
    torch.manual_seed(0)
    model = ib.create_model("dmfn-tiny")
    image, mask = photos(astronaut, 64, n=2), masks(64, 2)
    cache = {}
    losses = model.training_losses("generator", image, mask, 0, cache)
    assert set(losses) == {"pixel", "vgg", "center", "dis_feature", "g_adv"}
    out, origins = cache["out"], cache["dmfn_origins"]
    real, _ = model._discriminate(image * 2 - 1, origins)
    fake, _ = model._discriminate(out, origins)
    bce = F.binary_cross_entropy_with_logits
    zeros, ones = torch.zeros_like(real), torch.ones_like(real)
    expected = 0.003 * (bce(real - fake.mean(), zeros) + bce(fake - real.mean(), ones)) / 2
    torch.testing.assert_close(losses["g_adv"], expected)
    torch.testing.assert_close(losses["pixel"], F.l1_loss(out, image * 2 - 1))
    d_losses = model.training_losses("discriminator", image, mask, 0, cache)
    expected_d = (bce(real - fake.mean(), ones) + bce(fake - real.mean(), zeros)) / 2
    torch.testing.assert_close(d_losses["d_adv"], expected_d)


def test_optimisers_and_schedule_are_the_official_config():
    groups = {g.name: g for g in ib.create_model("dmfn").optimizer_groups()}
    assert list(groups) == ["generator", "discriminator"]  # the official code updates G first
    for group in groups.values():
        assert (group.optimizer, group.lr, group.betas) == ("adam", 2e-4, (0.5, 0.999))
        assert (group.lr_milestones, group.lr_gamma) == ((100_000,), 0.5)


def test_prepare_training_names_the_fix(empty_hub):
    model = ib.create_model("dmfn")
    with pytest.raises(InpaintbenchError, match="add -O size=64"):
        model.prepare_training(64)
    with pytest.raises(InpaintbenchError, match="vgg19"):
        model.prepare_training(256)


def test_training_at_another_size_fails_with_the_option():
    model = ib.create_model("dmfn-tiny")
    with pytest.raises(InpaintbenchError, match="set size=32"):
        model.training_losses("generator", torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32), 0, {})


@pytest.mark.slow
def test_tiny_dmfn_overfits_four_photos_at_64(astronaut):
    """The generator and discriminator updates of the Trainer, in order: the hole L1 falls by half."""
    torch.manual_seed(0)
    model = ib.create_model("dmfn-tiny", lr=2e-3)
    image, mask = photos(astronaut, 64), masks(64, 4)
    start = hole_l1(model, image, mask)
    fit(model, image, mask, steps=40)
    assert hole_l1(model, image, mask) < 0.5 * start
