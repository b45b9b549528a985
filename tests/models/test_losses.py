import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from inpaintbench import InpaintbenchError
from inpaintbench.models import adversarial as A
from inpaintbench.models import losses as L


def sp(v: float) -> float:
    """softplus."""
    return math.log1p(math.exp(v))


# --------------------------------------------------------------------------------------------------
# reconstruction and TV


def test_l1_hole_valid_averages_over_all_pixels():
    pred, target = torch.ones(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[..., :2, :] = 1  # half the pixels are hole
    assert L.l1_hole_valid(pred, target, mask).item() == pytest.approx(6 * 0.5 + 1 * 0.5)
    assert L.l1_hole_valid(pred, target, mask, hole_weight=0, valid_weight=10).item() == pytest.approx(5.0)


def test_total_variation_on_dilated_hole():
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    image = (xs + 10 * ys).view(1, 1, 4, 4).clone()
    image[..., 3, 3] = 100.0  # outside the dilated hole: must not count
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1, 1] = 1  # dilated by 1 px (3x3) -> rows 0..2, cols 0..2
    # 6 horizontal pairs with |dx| = 1 and 6 vertical pairs with |dy| = 10, divided by C*H*W = 16
    assert L.total_variation(image, mask).item() == pytest.approx((6 * 1 + 6 * 10) / 16)
    whole = ((image[..., 1:] - image[..., :-1]).abs().sum() + (image[..., 1:, :] - image[..., :-1, :]).abs().sum())
    assert L.total_variation(image).item() == pytest.approx(whole.item() / 16)
    assert L.total_variation(image, torch.zeros(1, 1, 4, 4)).item() == 0
    # a batch of two identical images gives the same batch mean; channels are averaged the same way
    assert L.total_variation(image.expand(2, 3, 4, 4), mask.expand(2, 1, 4, 4)).item() == pytest.approx(66 / 16)


# --------------------------------------------------------------------------------------------------
# gram, style and perceptual losses


def test_gram_matrix_normalised_by_chw():
    feat = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]]])  # 1 x 2 x 2 x 2
    expected = torch.tensor([[[30.0, 5.0], [5.0, 2.0]]]) / 8
    torch.testing.assert_close(L.gram_matrix(feat), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert L.gram_matrix(feat).dtype == torch.float32


def test_style_and_perceptual_losses():
    a = {"x": torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]]]), "y": torch.ones(1, 1, 2, 2)}
    b = {"x": torch.zeros(1, 2, 2, 2), "y": torch.ones(1, 1, 2, 2)}
    # |G(a) - 0| averaged over the 2 x 2 entries: (30 + 5 + 5 + 2) / 8 / 4
    assert L.style_loss(a, b).item() == pytest.approx(42 / 32)
    assert L.style_loss(a, b, {"x": 2.0, "y": 5.0}).item() == pytest.approx(2 * 42 / 32)
    assert L.perceptual_loss(a, b).item() == pytest.approx((1 + 2 + 3 + 4 + 1 + 1) / 8)
    assert L.perceptual_loss(a, b, [0.5, 3.0]).item() == pytest.approx(0.5 * 12 / 8)
    with pytest.raises(InpaintbenchError, match="layer weights"):
        L.perceptual_loss(a, b, [1.0])


# --------------------------------------------------------------------------------------------------
# adversarial losses on hand-computed logits

REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([-1.0, 1.0])


def test_nsgan():
    d = (sp(0) + sp(-2)) / 2 + (sp(-1) + sp(1)) / 2
    assert A.nsgan_d_loss(REAL, FAKE).item() == pytest.approx(d)
    assert A.nsgan_g_loss(FAKE).item() == pytest.approx((sp(1) + sp(-1)) / 2)
    bce = F.binary_cross_entropy_with_logits
    expected = bce(REAL, torch.ones(2)) + bce(FAKE, torch.zeros(2))
    assert A.nsgan_d_loss(REAL, FAKE).item() == pytest.approx(expected.item())


def test_lsgan_hinge_wgan():
    assert A.lsgan_d_loss(REAL, FAKE).item() == pytest.approx((1 + 1) / 2 + (1 + 1) / 2)
    assert A.lsgan_g_loss(FAKE).item() == pytest.approx((4 + 0) / 2)
    # hinge: relu(1 - real) = [1, 0], relu(1 + fake) = [0, 2]
    assert A.hinge_d_loss(REAL, FAKE).item() == pytest.approx(0.5 + 1.0)
    assert A.hinge_g_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)
    assert A.wgan_d_loss(REAL, FAKE).item() == pytest.approx(0 - 1)
    assert A.wgan_g_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_ragan_values_and_symmetry():
    # mean(fake) = 0, mean(real) = 1
    d = (sp(-0) + sp(-2)) / 2 + (sp(-2) + sp(0)) / 2
    assert A.ragan_d_loss(REAL, FAKE).item() == pytest.approx(d)
    g = (sp(-(-1 - 1)) + sp(-(1 - 1))) / 2 + (sp(0 - 0) + sp(2 - 0)) / 2
    assert A.ragan_g_loss(FAKE, REAL).item() == pytest.approx(g)
    torch.manual_seed(0)
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    # G's loss is D's loss with the roles of real and fake swapped
    torch.testing.assert_close(A.ragan_g_loss(fake, real), A.ragan_d_loss(fake, real))
    with pytest.raises(InpaintbenchError, match="real logits"):
        A.ragan_g_loss(fake)


def test_registry():
    assert set(A.ADVERSARIAL) == {"nsgan", "lsgan", "hinge", "wgan", "ragan"}
    for name in A.ADVERSARIAL:
        d, g = A.get_adversarial(name)
        assert d(REAL, FAKE).dim() == 0 and g(FAKE, REAL).dim() == 0
    assert A.get_adversarial("hinge").g_loss is A.hinge_g_loss
    with pytest.raises(InpaintbenchError, match="unknown adversarial loss 'vanilla'"):
        A.get_adversarial("vanilla")


class Linear(nn.Module):
    """D(x) = <w, x> per sample."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty():
    torch.manual_seed(0)
    real, fake = torch.rand(4, 3, 5, 5), torch.rand(4, 3, 5, 5)
    w = torch.randn(1, 3, 5, 5)
    unit = Linear(w / w.norm())
    assert A.gradient_penalty(unit, real, fake).item() == pytest.approx(0, abs=1e-9)
    double = Linear(2 * w / w.norm())
    gp = A.gradient_penalty(double, real, fake, weight=3.0)
    assert gp.item() == pytest.approx(3.0 * (2 - 1) ** 2, rel=1e-5)
    gp.backward()
    assert double.w.grad is not None and double.w.grad.abs().sum() > 0  # the penalty trains D
    # a non-linear critic also gets a positive penalty; a tuple output (logits, feats) is accepted
    conv = nn.Conv2d(3, 1, 3)
    gp = A.gradient_penalty(lambda x: (conv(x), [x]), real, fake, generator=torch.Generator().manual_seed(1))
    assert gp.item() > 0
    # masking the gradient: only a quarter of the pixels -> ||grad|| of the unit critic drops below 1
    mask = torch.zeros(4, 1, 5, 5)
    mask[..., :2, :2] = 1
    assert A.gradient_penalty(unit, real, fake, mask=mask).item() > 0


def test_gradient_penalty_interpolates_per_sample():
    seen = {}

    def critic(x):
        seen["x"] = x.detach()
        return x.flatten(1).sum(1)

    real, fake = torch.ones(8, 1, 2, 2), torch.zeros(8, 1, 2, 2)
    A.gradient_penalty(critic, real, fake)
    alphas = seen["x"][:, 0, 0, 0]
    assert torch.equal(seen["x"], alphas.view(8, 1, 1, 1).expand(8, 1, 2, 2))  # one alpha per sample
    assert alphas.unique().numel() == 8 and bool(((alphas >= 0) & (alphas <= 1)).all())


def test_r1_penalty():
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]]).view(2, 1, 1, 2).requires_grad_(True)
    d_out = x.square().flatten(1).sum(1)  # D(x) = sum(x^2) -> grad = 2x, ||grad||^2 = 4 sum(x^2)
    expected = (4 * (1 + 4) + 4 * (9 + 1)) / 2
    assert A.r1_penalty(d_out, x).item() == pytest.approx(expected)
    d_out = x.square().flatten(1).sum(1)
    penalty = A.r1_penalty(d_out, x, weight=0.001)
    assert penalty.item() == pytest.approx(0.001 * expected)
    assert penalty.requires_grad  # graph kept for the discriminator step
    with pytest.raises(InpaintbenchError, match="requires_grad"):
        A.r1_penalty(torch.zeros(2), torch.zeros(2, 1, 1, 2))


def test_feature_matching():
    real = [torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 1, 1)]
    fake = [torch.full((1, 2, 2, 2), 2.0, requires_grad=True), torch.full((1, 1, 1, 1), 4.0)]
    assert A.feature_matching(real, fake).item() == pytest.approx(2 + 3)
    assert A.feature_matching(real, fake, p=2).item() == pytest.approx(4 + 9)
    loss = A.feature_matching([r.requires_grad_(True) for r in real], fake)
    loss.backward()
    assert real[0].grad is None and fake[0].grad is not None  # real features are targets
    with pytest.raises(InpaintbenchError, match="layers"):
        A.feature_matching(real, fake[:1])


# --------------------------------------------------------------------------------------------------
# VGG features


def test_vgg_without_weights_names_the_file(empty_hub, tmp_path):
    with pytest.raises(InpaintbenchError) as err:
        L.VGGFeatures("vgg16", L.PCONV_LAYERS, weights_dir=tmp_path / "weights")
    message = str(err.value)
    assert "vgg16-397923af.pth" in message and str(tmp_path / "weights") in message
    assert str(empty_hub / "checkpoints") in message and "\n" not in message
    with pytest.raises(InpaintbenchError, match="vgg19-dcbb9e9d.pth"):
        L.VGGFeatures("vgg19")


def test_vgg_random_weights_shapes_frozen_eval():
    vgg = L.VGGFeatures("vgg16", L.PCONV_LAYERS, random_weights=True)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    feats = vgg(x)
    assert list(feats) == ["pool1", "pool2", "pool3"]
    assert [tuple(f.shape) for f in feats.values()] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]
    assert len(vgg.features) == 17  # stops at pool3 (torchvision index 16)
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    L.style_loss(feats, vgg(torch.rand(2, 3, 32, 32))).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0

    vgg19 = L.VGGFeatures("vgg19", L.EDGECONNECT_PERCEPTUAL_LAYERS + L.EDGECONNECT_STYLE_LAYERS, random_weights=True)
    shapes = {name: tuple(f.shape[1:]) for name, f in vgg19(torch.rand(1, 3, 32, 32)).items()}
    assert shapes == {"relu1_1": (64, 32, 32), "relu2_1": (128, 16, 16), "relu3_1": (256, 8, 8),
                      "relu4_1": (512, 4, 4), "relu5_1": (512, 2, 2), "relu2_2": (128, 16, 16),
                      "relu3_4": (256, 8, 8), "relu4_4": (512, 4, 4), "relu5_2": (512, 2, 2)}
    with pytest.raises(InpaintbenchError, match="no layer relu3_4"):
        L.VGGFeatures("vgg16", ("relu3_4",), random_weights=True)


@pytest.mark.parametrize(("arch", "cfg"), [("vgg16", "D"), ("vgg19", "E")])
def test_vgg_layers_match_torchvision(arch, cfg):
    ours = L._vgg_features(arch)
    theirs = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs[cfg])
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    names = L._vgg_layer_names(arch)
    assert len(names) == len(ours) and names.index("pool1") == 4
    assert all(isinstance(ours[names.index(n)], nn.ReLU) for n in names if n.startswith("relu"))


def test_vgg_loads_a_torchvision_state_dict(empty_hub, tmp_path):
    torch.manual_seed(0)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])  # torchvision's vgg16 features
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    # the real file also holds the 500 MB classifier; a small stand-in entry shows that it is ignored
    state["classifier.6.bias"] = torch.zeros(1000)
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(state, weights / "vgg16-397923af.pth")

    vgg = L.VGGFeatures("vgg16", ("relu3_3", "pool1"), weights_dir=weights)
    torch.testing.assert_close(vgg.features[14].weight, features[14].weight)
    x = torch.rand(1, 3, 16, 16)
    normalised = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    features.eval()
    with torch.no_grad():
        out = vgg(x)
        torch.testing.assert_close(out["relu3_3"], features[:16](normalised))
        torch.testing.assert_close(out["pool1"], features[:5](normalised))
    assert list(out) == ["relu3_3", "pool1"]

    # the torch hub cache is searched as well
    (empty_hub / "checkpoints").mkdir()
    (weights / "vgg16-397923af.pth").rename(empty_hub / "checkpoints" / "vgg16-397923af.pth")
    vgg = L.VGGFeatures("vgg16", ("pool1",))
    torch.testing.assert_close(vgg.features[0].weight, features[0].weight)


def test_vgg_rejects_bad_files(empty_hub, tmp_path):
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, path)
    with pytest.raises(InpaintbenchError, match="not a torchvision VGG state dict"):
        L.VGGFeatures("vgg19", ("relu1_1",), weights_dir=tmp_path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(InpaintbenchError, match="cannot read VGG weights"):
        L.VGGFeatures("vgg19", ("relu1_1",), weights_dir=tmp_path)
