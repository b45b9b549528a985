"""DeepFill v1 / v2 (models/deepfill/): official layouts, conventions, sketch guidance, losses, bad input."""

import pytest
import torch
import torch.nn.functional as F

import inpaintbench as ib
from inpaintbench import InpaintbenchError
from inpaintbench.masks import make_masks
from inpaintbench.models import checkpoints
from inpaintbench.models.base import count_generator_parameters
from inpaintbench.models.deepfill import spatial_discount

from .deepfill_reference import fabricate, mmagic_discriminator, official_layers, reference_forward


def _photos(astronaut, size, n=2):
    photo = torch.from_numpy(astronaut).permute(2, 0, 1).float()
    crops = [photo[:, y:y + 256, x:x + 256] for y, x in [(0, 0), (256, 256), (128, 128)][:n]]
    return F.interpolate(torch.stack(crops), size=(size, size), mode="bilinear", antialias=True).clamp(0, 1)


def _masks(size, n=2, seed=0):
    return make_masks("L2", n, size=size, seed=seed).float()


def _save_official(variant, path):
    """The file as its authors save it: mmagic's {'meta', 'state_dict'} (legacy pickle) or the port's {'G': ...}."""
    generator = fabricate(variant)
    if variant == "port":
        torch.save({"G": generator}, path)
    else:
        state = {f"generator.{k}": v for k, v in generator.items()} | mmagic_discriminator(variant)
        meta = {"mmedit_version": "0.4.0", "config": "model = dict(type='DeepFillv1Inpaintor', ...)", "iter": 3500000}
        torch.save({"meta": meta, "state_dict": state}, path, _use_new_zipfile_serialization=False)
    return generator


_VARIANTS = {"mmagic-v1": ("deepfill-v1", "mmagic", 80), "mmagic-v2": ("deepfill-v2", "mmagic", 80),
             "port": ("deepfill-v2", "nipponjo", 64)}


@pytest.mark.parametrize("variant", list(_VARIANTS))
def test_official_files_import_strictly_and_run_as_their_authors_ran_them(variant, astronaut, tmp_path):
    """A fabricated official file (official names, shapes, container) imports with no missing or unexpected key,
    and the imported model's output equals the official forward re-stated on the file's own tensors."""
    name, layout_name, size = _VARIANTS[variant]
    path = tmp_path / "official.pth"
    generator = _save_official(variant, path)
    obj = checkpoints.read_checkpoint(path)
    layouts = checkpoints.detect_layouts(obj)
    assert [lay.key for lay in layouts] == [f"{name}:{layout_name}"]
    layout = layouts[0]
    model = ib.create_model(name, **layout.config).eval()
    state, used = checkpoints.convert(type(model), name, obj, model.inference_state_dict(), source=str(path))
    assert used is layout
    model.load_inference_state_dict(state)
    # every official generator tensor but the constant fusion kernel became one of ours
    assert len(state) == len(generator) - 1 == len(model.inference_state_dict())
    image, mask = _photos(astronaut, size), _masks(size)
    with torch.no_grad():
        ours = model(image * (1 - mask), mask)
        official = reference_forward(variant, generator, image, mask)
    assert (ours - official).abs().max() < 1e-5


def test_bgr_files_become_rgb_by_reversing_the_first_inputs_and_the_last_outputs(tmp_path):
    _save_official("mmagic-v2", tmp_path / "v2.pth")
    official = checkpoints.read_checkpoint(tmp_path / "v2.pth")["state_dict"]
    state = checkpoints.LAYOUTS.get("deepfill-v2:mmagic").convert(checkpoints.read_checkpoint(tmp_path / "v2.pth"))
    first = official["generator.stage1.encoder.enc1.conv.conv.weight"]
    assert torch.equal(state["generator.coarse.encoder.0.conv.weight"][:, :3], first[:, [2, 1, 0]])
    assert torch.equal(state["generator.coarse.encoder.0.conv.weight"][:, 3:], first[:, 3:])
    last = official["generator.stage2.decoder.dec7.conv.conv.bias"]  # 3 features, then 3 gates
    assert torch.equal(state["generator.refine.decoder.6.conv.bias"], last[[2, 1, 0, 5, 4, 3]])


def test_official_key_and_parameter_counts():
    """The fabricated files hold the official code's keys; our counts match them."""
    counts = {v: len(fabricate(v)) for v in _VARIANTS}
    assert counts == {"mmagic-v1": 85, "mmagic-v2": 85, "port": 85}  # 42 convs (weight, bias) + the fusion kernel
    assert len(mmagic_discriminator("mmagic-v1")) == 20 and len(mmagic_discriminator("mmagic-v2")) == 24
    params = {v: sum(t.numel() for k, t in fabricate(v).items() if "fuse" not in k) for v in _VARIANTS}
    assert params["port"] == count_generator_parameters(ib.create_model("deepfill-v2")) == 4_052_478
    assert params["mmagic-v1"] == count_generator_parameters(ib.create_model("deepfill-v1")) == 3_601_542
    mmagic_v2 = ib.create_model("deepfill-v2", **checkpoints.LAYOUTS.get("deepfill-v2:mmagic").config)
    assert params["mmagic-v2"] == count_generator_parameters(mmagic_v2) == 4_414_908
    assert len(official_layers("port")) == 42


def test_a_file_of_another_layout_is_refused_by_name(tmp_path):
    torch.save({"G": {"conv1.conv.weight": torch.zeros(48, 5, 5, 5)}}, tmp_path / "tf_port.pth")
    obj = checkpoints.read_checkpoint(tmp_path / "tf_port.pth")
    model = ib.create_model("deepfill-v2")
    with pytest.raises(InpaintbenchError, match="matches no checkpoint layout of deepfill-v2"):
        checkpoints.convert(type(model), "deepfill-v2", obj, model.inference_state_dict())
    v1 = ib.create_model("deepfill-v1")
    _save_official("port", tmp_path / "port.pth")
    with pytest.raises(InpaintbenchError, match="is a deepfill-v2 checkpoint"):
        checkpoints.convert(type(v1), "deepfill-v1", checkpoints.read_checkpoint(tmp_path / "port.pth"),
                            v1.inference_state_dict())


def test_sizes_not_multiples_of_8_and_sketches_without_the_channel_are_refused():
    model = ib.create_model("deepfill-v2-tiny")
    with pytest.raises(InpaintbenchError, match="multiples of 8, got 60x64"):
        model(torch.rand(1, 3, 60, 64), torch.zeros(1, 1, 60, 64))
    with pytest.raises(InpaintbenchError, match="no sketch channel"):
        model(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32), guide=torch.zeros(1, 1, 32, 32))
    with pytest.raises(InpaintbenchError, match="multiples of 8"):
        model.prepare_training(36)
    with pytest.raises(InpaintbenchError, match="-O size=64"):
        ib.create_model("deepfill-v1-tiny").prepare_training(64)
    mmagic = ib.create_model("deepfill-v2-tiny", padding="reflect")
    with pytest.raises(InpaintbenchError, match="at least 72"):
        mmagic(torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64))
    assert model.guidance == "" and ib.create_model("deepfill-v2-tiny", sketch=True).guidance == "sketch"


def test_the_sketch_reaches_the_output_and_training_sketches_are_the_truths_edges_in_the_hole(astronaut):
    torch.manual_seed(0)
    model = ib.create_model("deepfill-v2-tiny", sketch=True).eval()
    image, mask = _photos(astronaut, 64), _masks(64)
    sketch = torch.zeros(2, 1, 64, 64)
    sketch[..., 20:44, 30:32] = 1
    seen = []
    model.generator.coarse.encoder[0].register_forward_hook(lambda module, args, out: seen.append(args[0]))
    with torch.no_grad():
        plain = model(image * (1 - mask), mask)
        assert torch.equal(plain, model(image * (1 - mask), mask, guide=torch.zeros_like(sketch)))
        guided = model(image * (1 - mask), mask, guide=sketch)
        # strokes outside the hole are ignored: the channel is sketch * mask, after the image, before ones and mask
        assert torch.equal(plain, model(image * (1 - mask), mask, guide=sketch * (1 - mask)))
    assert (guided != plain).any()
    assert torch.equal(seen[2][:, 3:4], sketch * mask) and seen[2][:, 3:4].sum() > 0
    assert torch.equal(seen[2][:, 4:], torch.cat([torch.ones_like(mask), mask], 1))
    cache = {}
    model.train()
    losses = model.training_losses("discriminator", image, mask, 0, cache)
    assert set(losses) == {"d_hinge"}
    edges = cache["sketch"]
    assert edges[mask == 0].abs().max() == 0 and edges[mask == 1].sum() > 0
    assert model.discriminator.layers[0][0].weight_orig.shape[1] == 5  # image, mask, sketch


def test_spatial_discount_is_gamma_to_the_distance_from_the_known_pixels():
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 2:12, 3:15] = 1
    weights = spatial_discount(mask, 0.9)[0, 0]
    i, j = torch.meshgrid(torch.arange(10), torch.arange(12), indexing="ij")
    # the official box formula, made symmetric (its far edges are one step further: min(i, H - i))
    expected = 0.9 ** torch.minimum(torch.minimum(i, 9 - i), torch.minimum(j, 11 - j)).double()
    assert torch.allclose(weights[2:12, 3:15].double(), expected, atol=1e-6)
    assert weights[mask[0, 0] == 0].abs().max() == 0


def test_optimizer_groups_are_the_official_ones():
    v1, v2 = ib.create_model("deepfill-v1"), ib.create_model("deepfill-v2")
    (d1, g1), (d2, g2) = v1.optimizer_groups(), v2.optimizer_groups()
    assert (d1.modules, g1.modules, d1.every, g1.every) == (("critic_global", "critic_local"), ("generator",), 1, 5)
    assert d1.lr == g1.lr == d2.lr == g2.lr == 1e-4
    assert d1.betas == g1.betas == (0.5, 0.9) and d2.betas == g2.betas == (0.5, 0.999)
    assert g2.every == 1 and ib.create_model("deepfill-v1-tiny").optimizer_groups()[1].lr is None


def test_critic_only_steps_keep_no_graph_and_the_losses_are_on_the_minus_one_one_scale(astronaut):
    torch.manual_seed(0)
    model = ib.create_model("deepfill-v1-tiny")
    image, mask = _photos(astronaut, 32), _masks(32)
    cache = {}
    losses = model.training_losses("discriminator", image, mask, 1, cache)  # step 1: the generator does not train
    assert not cache["deepfill"][1].requires_grad
    assert set(losses) == {"d_wgan", "d_gp"} and losses["d_gp"] > 0
    cache = {}
    model.training_losses("discriminator", image, mask, 4, cache)  # critic_steps=2: the generator trains at 4
    assert cache["deepfill"][1].requires_grad
    g = model.training_losses("generator", image, mask, 4, cache)
    coarse, refined = cache["deepfill"]
    real = image * 2 - 1
    known = 1 - mask
    ae = 1.2 * (1.2 * ((coarse - real).abs().mean(1, keepdim=True) * known).sum() / known.sum()
                + ((refined - real).abs().mean(1, keepdim=True) * known).sum() / known.sum())
    assert torch.allclose(g["l1_known"], ae)


def test_attention_map_is_an_image_sized_flow_picture(astronaut):
    model = ib.create_model("deepfill-v2-tiny").eval()
    image, mask = _photos(astronaut, 64), _masks(64)
    picture = model.attention_map(image, mask)
    assert picture.shape == (2, 3, 64, 64) and picture.min() >= 0 and picture.max() <= 1


def test_the_store_imports_mmagic_v2_under_its_shape_changing_conventions(astronaut, tmp_path):
    """import_checkpoint builds the model with the layout's config before the strict key check."""
    from inpaintbench.models.store import import_checkpoint, load_stored

    generator = _save_official("mmagic-v2", tmp_path / "deepfillv2_places.pth")
    folder = import_checkpoint("deepfill-v2", tmp_path / "deepfillv2_places.pth", store=tmp_path / "store")
    model, card = load_stored(folder)
    assert card["layout"] == "deepfill-v2:mmagic" and model.config.gated_output and model.config.padding == "reflect"
    image, mask = _photos(astronaut, 80), _masks(80)
    with torch.no_grad():
        ours = model.eval()(image * (1 - mask), mask)
        official = reference_forward("mmagic-v2", generator, image, mask)
    assert (ours - official).abs().max() < 1e-5
