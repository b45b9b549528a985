"""AOT-GAN (models/aotgan.py, layers/aot.py): official and MMagic checkpoints, conventions and SM-PatchGAN losses."""

import pytest
import torch
import torch.nn.functional as F

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.models import checkpoints
from inpaintbench.models.aotgan import AOTGAN, gaussian_blur, smgan_d_loss, smgan_g_loss
from inpaintbench.models.store import import_checkpoint, load_stored

# --------------------------------------------------------------------------------------------------
# the official generator, restated from src/model/aotgan.py (InpaintGenerator, AOTBlock, UpConv, my_layer_norm)


def official_shapes(blocks=8, rates=(1, 2, 4, 8), width=64):
    """Key -> shape of ``InpaintGenerator`` (``encoder`` / ``middle`` / ``decoder`` Sequentials)."""
    w1, w2, w4 = width, 2 * width, 4 * width
    shapes = {"encoder.1.weight": (w1, 4, 7, 7), "encoder.1.bias": (w1,), "encoder.3.weight": (w2, w1, 4, 4),
              "encoder.3.bias": (w2,), "encoder.5.weight": (w4, w2, 4, 4), "encoder.5.bias": (w4,)}
    for b in range(blocks):
        for i in range(len(rates)):
            shapes[f"middle.{b}.block{str(i).zfill(2)}.1.weight"] = (w4 // len(rates), w4, 3, 3)
            shapes[f"middle.{b}.block{str(i).zfill(2)}.1.bias"] = (w4 // len(rates),)
        for name in ("fuse", "gate"):
            shapes[f"middle.{b}.{name}.1.weight"] = (w4, w4, 3, 3)
            shapes[f"middle.{b}.{name}.1.bias"] = (w4,)
    shapes.update({"decoder.0.conv.weight": (w2, w4, 3, 3), "decoder.0.conv.bias": (w2,),
                   "decoder.2.conv.weight": (w1, w2, 3, 3), "decoder.2.conv.bias": (w1,),
                   "decoder.4.weight": (3, w1, 3, 3), "decoder.4.bias": (3,)})
    return shapes


def random_state(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * (0.1 if len(s) == 1 else (s[1] * s[2] * s[3]) ** -0.5)
            for k, s in shapes.items()}


def official_forward(sd, x, mask, blocks, rates):
    """``InpaintGenerator.forward(x, mask)`` from its state dict (x in [-1, 1] with white holes)."""

    def conv(h, key, pad=0, dilation=1, stride=1, reflect=True):
        if pad:
            h = F.pad(h, (pad,) * 4, mode="reflect" if reflect else "constant")
        return F.conv2d(h, sd[f"{key}.weight"], sd[f"{key}.bias"], stride=stride, dilation=dilation)

    def my_layer_norm(feat):
        mean = feat.mean((2, 3), keepdim=True)
        std = feat.std((2, 3), keepdim=True) + 1e-9
        return 5 * (2 * (feat - mean) / std - 1)

    h = torch.cat([x, mask], dim=1)
    h = F.relu(conv(h, "encoder.1", pad=3))
    h = F.relu(conv(h, "encoder.3", pad=1, stride=2, reflect=False))
    h = F.relu(conv(h, "encoder.5", pad=1, stride=2, reflect=False))
    for b in range(blocks):
        out = torch.cat([F.relu(conv(h, f"middle.{b}.block{str(i).zfill(2)}.1", pad=r, dilation=r))
                         for i, r in enumerate(rates)], 1)
        out = conv(out, f"middle.{b}.fuse.1", pad=1)
        gate = torch.sigmoid(my_layer_norm(conv(h, f"middle.{b}.gate.1", pad=1)))
        h = h * (1 - gate) + out * gate
    for key in ("decoder.0.conv", "decoder.2.conv"):
        h = F.relu(conv(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=True), key, pad=1,
                        reflect=False))
    return torch.tanh(conv(h, "decoder.4", pad=1, reflect=False))


def official_test_py(sd, image, mask, blocks, rates):
    """src/test.py: image * 2 - 1, white holes, the generator, postprocess's clamp and (y + 1) / 2."""
    x = image * 2.0 - 1.0
    pred = official_forward(sd, x * (1 - mask) + mask, mask, blocks, rates)
    return (torch.clamp(pred, -1.0, 1.0) + 1) / 2.0


def to_mmagic(sd, rates):
    """The same values under mmagic's AOTEncoderDecoder names (ConvModule wraps each conv as ``.conv``)."""
    out = {}
    for key, value in sd.items():
        parts = key.split(".")
        if parts[0] == "encoder":
            new = f"encoder.encoder.{ {'1': 1, '3': 2, '5': 3}[parts[1]] }.conv.{parts[2]}"
        elif parts[0] == "middle" and parts[2].startswith("block"):
            new = f"dilation_neck.model.{parts[1]}.blocks.{int(parts[2][5:])}.1.conv.{parts[4]}"
        elif parts[0] == "middle":
            new = f"dilation_neck.model.{parts[1]}.{parts[2]}.1.conv.{parts[4]}"
        else:
            new = f"decoder.decoder.{ {'0': 0, '2': 1, '4': 2}[parts[1]] }.conv.{parts[-1]}"
        out[f"generator.{new}"] = value
    return out


def _hand_mapped(model, sd, blocks, rates):
    g = model.generator
    pairs = [(g.encoder[0][0], "encoder.1"), (g.encoder[1][0], "encoder.3"), (g.encoder[2][0], "encoder.5"),
             (g.decoder[0][0], "decoder.0.conv"), (g.decoder[1][0], "decoder.2.conv"), (g.head, "decoder.4")]
    for b, block in enumerate(g.blocks):
        pairs += [(block.branches[i][0], f"middle.{b}.block{str(i).zfill(2)}.1") for i in range(len(rates))]
        pairs += [(block.fuse, f"middle.{b}.fuse.1"), (block.gate, f"middle.{b}.gate.1")]
    used = set()
    with torch.no_grad():
        for conv, key in pairs:
            conv.weight.copy_(sd[f"{key}.weight"])
            conv.bias.copy_(sd[f"{key}.bias"])
            used |= {f"{key}.weight", f"{key}.bias"}
    assert used == set(sd)
    return model.eval()


def _import(name, path, layout=None):
    """Through the checkpoint store: import_checkpoint (safe read, detected or forced layout, strict), load_stored."""
    entry = import_checkpoint(name, path, layout=layout, store=path.parent / "store")
    model, card = load_stored(entry)
    assert isinstance(model, AOTGAN) and card["model"] == name
    return model, checkpoints.LAYOUTS.get(card["layout"])


def _photo(size=64, seed=0):
    from skimage.data import chelsea
    from skimage.transform import resize

    from inpaintbench.masks import make_masks

    image = torch.from_numpy(resize(chelsea(), (size, size), anti_aliasing=True)).permute(2, 0, 1)[None].float()
    return image, make_masks("L4", 1, size=size, seed=seed).float()


def test_official_g_pt_imports_and_matches_the_official_test_convention(tmp_path):
    """A bare state dict saved as trainer.save does (torch.save(netG.module.state_dict())): strict import, the
    hand-mapped model's output, and src/test.py's conventions on a photo."""
    cfg = ib.models.MODELS.get("aot-gan-tiny").config
    official = random_state(official_shapes(cfg.blocks, cfg.rates, cfg.width))
    path = tmp_path / "G0000000.pt"
    torch.save(official, path)
    model, layout = _import("aot-gan-tiny", path)
    assert layout.key == "aot-gan:official"
    image, mask = _photo()
    with torch.no_grad():
        ours = model(image * (1 - mask), mask)
        assert torch.equal(ours, _hand_mapped(ib.create_model("aot-gan-tiny"), official, cfg.blocks,
                                              cfg.rates)(image * (1 - mask), mask))
        reference = official_test_py(official, image, mask, cfg.blocks, cfg.rates)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_full_size_official_layout_has_108_keys_and_imports_strictly(tmp_path):
    official = random_state(official_shapes())
    assert len(official) == 108
    assert sum(v.numel() for v in official.values()) == ib.models.MODELS.get("aot-gan").reference_count
    path = tmp_path / "G0000000.pt"
    torch.save(official, path)
    model, _ = _import("aot-gan", path)
    image, mask = _photo(40)  # 10 x 10 at the blocks: the smallest sizes the rate-8 reflection padding allows
    with torch.no_grad():
        assert torch.equal(model(image, mask), _hand_mapped(ib.create_model("aot-gan"), official, 8,
                                                            (1, 2, 4, 8))(image, mask))


def test_mmagic_file_imports_to_the_same_model_as_the_official_one(tmp_path):
    """{'meta', 'state_dict'} with generator.* (mmagic names) and disc.* (spectral-norm keys), in the legacy
    (non-zip) torch.save format of older zoo files: disc.* is dropped, the generator equals the official one."""
    cfg = ib.models.MODELS.get("aot-gan-tiny").config
    official = random_state(official_shapes(cfg.blocks, cfg.rates, cfg.width), seed=3)
    state = to_mmagic(official, cfg.rates)
    for i, (c_out, c_in) in enumerate([(8, 3), (16, 8), (32, 16), (64, 32)]):
        state[f"disc.model.{i}.conv.weight_orig"] = torch.randn(c_out, c_in, 4, 4)
        state[f"disc.model.{i}.conv.weight_u"] = torch.randn(c_out)
        state[f"disc.model.{i}.conv.weight_v"] = torch.randn(c_in * 16)
    state["disc.model.4.weight"], state["disc.model.4.bias"] = torch.randn(1, 64, 4, 4), torch.randn(1)
    meta = {"mmedit_version": "0.14.0", "iter": 500000, "time": "Mon May  9 00:00:00 2022",
            "config": "model = dict(type='AOTInpaintor', ...)"}
    mm_path, official_path = tmp_path / "AOT-GAN_512x512_4x12_places.pth", tmp_path / "G0500000.pt"
    torch.save({"meta": meta, "state_dict": state}, mm_path, _use_new_zipfile_serialization=False)
    torch.save(official, official_path)
    mm_model, layout = _import("aot-gan-tiny", mm_path)
    assert layout.key == "aot-gan:mmagic"
    official_model, _ = _import("aot-gan-tiny", official_path)
    image, mask = _photo(seed=5)
    with torch.no_grad():
        assert torch.equal(mm_model(image, mask), official_model(image, mask))


def test_an_official_file_forced_into_the_mmagic_layout_names_its_keys(tmp_path):
    path = tmp_path / "G.pt"
    torch.save(random_state(official_shapes(2, (1, 2, 4), 6)), path)
    expected = r"does not fit aot-gan-tiny: 32 missing \(generator\.blocks\.0\."
    with pytest.raises(checkpoints.CheckpointMismatch, match=expected):
        _import("aot-gan-tiny", path, layout="mmagic")


# --------------------------------------------------------------------------------------------------
# SM-PatchGAN


def test_gaussian_blur_equals_the_official_2d_kernel():
    """src/loss/common.py: a normalised 1-D Gaussian, its outer product, conv2d with zero padding (k - 1) // 2."""
    mask = (torch.rand(2, 1, 80, 80) > 0.6).float()
    x = torch.arange(71, dtype=torch.float32)
    g = torch.exp(-((x - 35) ** 2) / (2 * 10.0**2))
    g = g / g.sum()
    kernel = torch.matmul(g.unsqueeze(-1), g.unsqueeze(-1).t())[None, None]
    torch.testing.assert_close(gaussian_blur(mask, 71, 10.0), F.conv2d(mask, kernel, padding=35), atol=1e-6,
                               rtol=1e-5)


def test_sm_patchgan_labels_paper_and_official():
    """Paper: real -> 1, fake -> 1 - blur(m), the generator scored on the hole only; official: real -> 0,
    fake -> blur(m), generator target 1 everywhere (its mask weighting of an averaged MSE cancels)."""
    torch.manual_seed(0)
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    soft = gaussian_blur(mask, 15, 3.0)
    assert smgan_d_loss(torch.ones_like(soft), 1 - soft, soft, "paper") == 0
    assert smgan_d_loss(torch.zeros_like(soft), soft, soft, "official") == 0
    fake = torch.rand(2, 1, 64, 64)
    changed = fake.clone()
    changed[mask == 0] = 5.0  # outside the hole
    assert smgan_g_loss(changed, mask, "paper") == smgan_g_loss(fake, mask, "paper")
    # the official expression, literally: (MSELoss()(g_fake, ones) * masks / torch.mean(masks)).mean()
    literal = (F.mse_loss(fake, torch.ones_like(fake)) * mask / torch.mean(mask)).mean()
    torch.testing.assert_close(smgan_g_loss(fake, mask, "official"), literal)


def test_discriminator_is_the_spectral_norm_patchgan_and_sees_the_image_size():
    model = ib.create_model("aot-gan")
    d = model.discriminator
    convs = [layer[0] for layer in d.layers]
    assert [hasattr(c, "weight_orig") for c in convs] == [True] * 4 + [False]
    assert [c.bias is not None for c in convs] == [False] * 4 + [True]
    assert d.receptive_field() == 70


@pytest.mark.parametrize("name, key", [("aot-gan", "d_adv"), ("aot-gan-patchgan", "d_adv")])
def test_both_discriminator_losses_train_on_the_composite(name, key):
    torch.manual_seed(0)
    image, mask = _photo(40)
    model = ib.create_model(name)
    cache = {}
    g = model.training_losses("generator", image, mask, 0, cache)
    d = model.training_losses("discriminator", image, mask, 0, cache)
    assert set(g) == {"l1", "style", "perceptual", "g_adv"} and set(d) == {key}
    assert torch.isfinite(torch.stack(list(g.values()))).all()


def test_optimisers_follow_the_official_options():
    groups = ib.create_model("aot-gan").optimizer_groups()
    assert [g.name for g in groups] == ["generator", "discriminator"]
    assert all(g.lr == 1e-4 and g.betas == (0.5, 0.999) for g in groups)


def test_sides_that_are_not_multiples_of_four_run_and_too_small_ones_fail_clearly():
    model = ib.create_model("aot-gan").eval()
    image, mask = _photo(64)
    with torch.no_grad():
        out = model(image[..., :33, :61], mask[..., :33, :61])
    assert out.shape == (1, 3, 33, 61) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(InpaintbenchError, match="at least 33x33"):
        model(image[..., :32, :61], mask[..., :32, :61])
