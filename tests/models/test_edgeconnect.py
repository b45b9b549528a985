"""EdgeConnect: networks, edges, guidance, the training modes as phases, and the official checkpoint layout."""

import numpy as np
import pytest
import torch
from skimage.color import rgb2gray
from skimage.feature import canny
from skimage.transform import resize

import inpaintbench as ib
from inpaintbench import InpaintbenchError
from inpaintbench.masks import make_masks
from inpaintbench.models import checkpoints
from inpaintbench.models.base import count_parameters, parameter_breakdown
from inpaintbench.models.edgeconnect import EDGE_FILE, INPAINT_FILE, EdgeConnect
from inpaintbench.models.edges import canny_edges, gray_image

from .edgeconnect_official import OfficialGenerator, official_test_forward, randomise


def _photo(astronaut, size=64):
    img = resize(astronaut, (size, size), anti_aliasing=True)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float()


def _box_mask(size=64, top=16, left=20, side=24):
    mask = torch.zeros(1, 1, size, size)
    mask[..., top:top + side, left:left + side] = 1
    return mask


# --------------------------------------------------------------------------------------------------
# networks and counts


def test_parameter_and_key_counts_match_the_official_networks():
    """10,774,595 / 44 keys (image G) and 10,761,089 / 70 keys (edge G): the official networks.py rebuilt."""
    model = ib.create_model("edgeconnect")
    for ours, official in ((model.generator, OfficialGenerator(edge=False)),
                           (model.edge_generator, OfficialGenerator(edge=True))):
        assert count_parameters(ours) == count_parameters(official)
        assert len(ours.state_dict()) == len(official.state_dict())
    assert count_parameters(model.generator) == 10_774_595 and len(model.generator.state_dict()) == 44
    assert count_parameters(model.edge_generator) == 10_761_089 and len(model.edge_generator.state_dict()) == 70
    assert parameter_breakdown(model) == "10,774,595 generator + 10,761,089 edge_generator"


def test_discriminators_are_70x70_patchgans_with_spectral_norm_and_no_bias():
    model = ib.create_model("edgeconnect")
    for d, channels in ((model.edge_discriminator, 2), (model.discriminator, 3)):
        assert d.receptive_field() == 70
        keys = d.state_dict().keys()
        assert not any(k.endswith("bias") for k in keys)
        assert sum(k.endswith("weight_orig") for k in keys) == 5
        logits, feats = d(torch.zeros(1, channels, 256, 256), return_features=True)
        assert logits.shape == (1, 1, 30, 30) and len(feats) == 5


# --------------------------------------------------------------------------------------------------
# edges


def test_gray_and_canny_are_scikit_image_with_the_known_pixel_mask(astronaut):
    image = _photo(astronaut)
    mask = _box_mask()
    gray = gray_image(image)
    expected_gray = rgb2gray(image[0].permute(1, 2, 0).double().numpy())
    np.testing.assert_array_equal(gray[0, 0].numpy(), expected_gray)
    edges = canny_edges(gray, 2.0, where=1 - mask)
    expected = canny(expected_gray, sigma=2, mask=mask[0, 0].numpy() < 0.5)
    np.testing.assert_array_equal(edges[0, 0].numpy() > 0.5, expected)
    assert edges[0, 0][mask[0, 0] > 0].sum() == 0 and edges.sum() > 20


def test_edge_map_keeps_cannys_edges_outside_the_hole_and_adds_user_strokes_inside(astronaut):
    torch.manual_seed(0)
    model = ib.create_model("edgeconnect-tiny").eval()
    image, mask = _photo(astronaut), _box_mask()
    known = canny_edges(gray_image(image * (1 - mask)), 2.0, where=1 - mask)
    with torch.no_grad():
        plain = model.edge_map(image * (1 - mask), mask)
        guide = torch.zeros_like(mask)
        guide[..., 28, :] = 1  # a horizontal stroke across the hole and beyond it
        guided = model.edge_map(image * (1 - mask), mask, guide=guide)
    outside = mask == 0
    assert torch.equal(plain[outside], known[outside]) and torch.equal(guided[outside], plain[outside])
    stroke_in_hole = (guide > 0) & (mask > 0)
    assert torch.all(guided[stroke_in_hole] == 1)
    assert torch.equal(guided[(guide == 0) & (mask > 0)], plain[(guide == 0) & (mask > 0)])


def test_user_edges_change_the_painting_and_hole_values_do_not(astronaut):
    torch.manual_seed(0)
    model = ib.create_model("edgeconnect-tiny").eval()
    image, mask = _photo(astronaut), _box_mask()
    guide = torch.zeros_like(mask)
    guide[..., 20:40, 30] = 1
    with torch.no_grad():
        plain = model(image * (1 - mask), mask)
        noisy_hole = model(image * (1 - mask) + mask * torch.rand_like(image), mask)
        guided = model(image * (1 - mask), mask, guide=guide)
    assert torch.allclose(plain, noisy_hole, atol=1e-6)  # the hole's values are never read
    assert not torch.allclose(plain, guided)


def test_oracle_paints_from_the_true_edges_and_needs_them():
    model = ib.create_model("edgeconnect-tiny", edges="oracle").eval()
    image = torch.rand(1, 3, 32, 32)
    mask = _box_mask(32, 8, 8, 12)
    with pytest.raises(InpaintbenchError, match="oracle"):
        model(image * (1 - mask), mask)
    truth = model.oracle_guide(image)
    assert torch.equal(truth, canny_edges(gray_image(image), 2.0))
    with torch.no_grad():
        assert torch.equal(model(image * (1 - mask), mask, guide=truth), model.paint(image, mask, truth))
    assert ib.create_model("edgeconnect-tiny").oracle_guide(image) is None


def test_sides_must_be_multiples_of_four():
    model = ib.create_model("edgeconnect-tiny")
    with pytest.raises(InpaintbenchError, match="multiples of 4"):
        model(torch.rand(1, 3, 30, 32), torch.zeros(1, 1, 30, 32))


# --------------------------------------------------------------------------------------------------
# training modes


def test_phases_select_the_official_modes_and_the_discriminators_learn_ten_times_slower():
    model = ib.create_model("edgeconnect", phase_steps=(10, 20))
    assert model.active_groups(0) == ("edge_discriminator", "edge_generator")
    assert model.active_groups(10) == ("discriminator", "generator")
    assert model.active_groups(30) == ("edge_discriminator", "discriminator", "edge_generator", "generator")
    m3 = ib.create_model("edgeconnect", phases=("edge+inpaint", "edge_inpaint"), phase_steps=(5,))
    assert m3.active_groups(0) == ("edge_discriminator", "discriminator", "edge_generator", "generator")
    assert m3.active_groups(5) == ("discriminator", "generator")
    groups = {g.name: g for g in model.optimizer_groups()}
    assert groups["generator"].lr == groups["edge_generator"].lr == 1e-4
    assert groups["discriminator"].lr == groups["edge_discriminator"].lr == pytest.approx(1e-5)
    assert all(g.betas == (0.0, 0.9) for g in groups.values())
    with pytest.raises(InpaintbenchError, match="phase_steps"):
        ib.create_model("edgeconnect", phase_steps=(10,))
    with pytest.raises(InpaintbenchError, match="phases"):
        ib.create_model("edgeconnect", phases=("edge", "sideways"), phase_steps=(1,))


VGG_LOSSES = {"perceptual_weight": 0.1, "style_weight": 250.0}  # the official weights (edgeconnect-tiny has none)


def _grads(model, group, image, mask, step, cache, module=None, keys=None):
    losses = model.training_losses(group, image, mask, step, cache)
    params = list(getattr(model, module or group).parameters())
    total = sum(v for k, v in losses.items() if keys is None or k in keys)
    grads = torch.autograd.grad(total, params, allow_unused=True, retain_graph=True)
    return losses, sum(float(g.abs().sum()) for g in grads if g is not None)


@pytest.mark.parametrize("phase", ["inpaint", "edge_inpaint", "joint"])
def test_the_image_generator_paints_from_the_edges_of_its_mode(phase):
    torch.manual_seed(0)
    model = ib.create_model("edgeconnect-tiny", phases=(phase,), phase_steps=(), **VGG_LOSSES)
    image = torch.rand(2, 3, 32, 32)
    mask = make_masks("L2", 2, size=32, seed=1).float()
    cache = {}
    losses, g2 = _grads(model, "generator", image, mask, 0, cache)
    assert set(losses) == {"l1", "g_adv", "perceptual", "style"} and g2 > 0
    truth = canny_edges(gray_image(image), 2.0)
    if phase == "inpaint":  # mode 2: the true edges, hole included
        assert torch.equal(cache["ec_g2_edges"], truth)
    else:  # modes 3 and 4: G1's edges in the hole, the true ones outside
        outside = mask.expand_as(truth) == 0
        assert torch.equal(cache["ec_g2_edges"][outside], truth[outside])
        assert not torch.equal(cache["ec_g2_edges"], truth)


def test_in_the_joint_mode_the_image_losses_reach_the_edge_generator():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 32, 32)
    mask = make_masks("L2", 2, size=32, seed=1).float()
    joint = ib.create_model("edgeconnect-tiny", phases=("joint",), phase_steps=(), **VGG_LOSSES)
    losses, through_g2 = _grads(joint, "edge_generator", image, mask, 0, {}, keys={"image_l1", "image_style"})
    assert {"g_adv", "fm", "image_l1", "image_perceptual"} <= set(losses) and through_g2 > 0
    fixed = ib.create_model("edgeconnect-tiny", phases=("edge_inpaint",), phase_steps=())
    assert "edge_generator" not in fixed.active_groups(0)
    fixed.training_losses("generator", image, mask, 0, cache := {})
    assert not cache["ec_edge_pred"].requires_grad  # G1 is fixed in mode 3


def test_the_edge_losses_are_adversarial_and_feature_matching():
    torch.manual_seed(0)
    model = ib.create_model("edgeconnect-tiny", phases=("edge",), phase_steps=())
    with torch.no_grad():
        for _ in range(30):  # power iterations settle the spectral norms; eval mode then keeps them fixed
            model.edge_discriminator(torch.rand(2, 2, 32, 32))
    model.eval()
    image = torch.rand(2, 3, 32, 32)
    mask = make_masks("L2", 2, size=32, seed=1).float()
    cache = {}
    d = model.training_losses("edge_discriminator", image, mask, 0, cache)
    g = model.training_losses("edge_generator", image, mask, 0, cache)
    assert set(d) == {"d_adv"} and set(g) == {"g_adv", "fm"}
    # the nsgan D loss is (BCE(real, 1) + BCE(fake, 0)) / 2, as the official process()
    gray, edges = cache["ec_gray"], cache["ec_edges"]
    real = torch.sigmoid(model.edge_discriminator(torch.cat([gray, edges], 1)))
    fake = torch.sigmoid(model.edge_discriminator(torch.cat([gray, cache["ec_edge_pred"]], 1)))
    bce = torch.nn.functional.binary_cross_entropy
    expected = (bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))) / 2
    assert d["d_adv"].item() == pytest.approx(expected.item(), rel=1e-4)


def _fixed_batch(sample32, n=8):
    from inpaintbench.datasets.loader import InpaintDataset

    dataset = InpaintDataset(sample32, "train", masks=["L2"], seed=0)
    fixed = [dataset.draw_mask(i) for i in range(n)]
    dataset.keys = dataset.keys[:n]
    dataset.draw_mask = lambda index, epoch=None: fixed[index]
    return dataset, dataset.images_at(range(n)).float() / 255, torch.stack(fixed)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["edge", "inpaint", "edge_inpaint"])
def test_each_mode_overfits_one_batch_with_the_trainer(phase, sample32, tmp_path):
    """Through the Trainer: G1's hole L1 to the true edges (edge), G2's hole L1 (the others) fall by half.

    (The joint mode is the last phase of edgeconnect-tiny: tests/models/test_models.py overfits it.)
    """
    from inpaintbench.models.train import TrainConfig, train

    dataset, image, mask = _fixed_batch(sample32)
    torch.manual_seed(0)
    model = ib.create_model("edgeconnect-tiny", phases=(phase,), phase_steps=())
    truth_edges = canny_edges(gray_image(image), 2.0)

    def error():
        model.eval()
        with torch.no_grad():
            if phase == "edge":
                return ((model._edge_pred({"ec_gray": gray_image(image).float(), "ec_edges": truth_edges}, image,
                                          mask, grad=False) - truth_edges).abs() * mask).mean().item()
            edges = truth_edges if phase == "inpaint" else None
            pred = model.paint(image, mask, edges) if edges is not None else model(image * (1 - mask), mask)
            return ib.metrics.l1_hole(pred, image, mask).mean().item()

    start = error()
    train(model, dataset, tmp_path / "run", TrainConfig(steps=200, batch_size=8, checkpoint_every=1000,
                                                        log_every=100))
    assert error() < 0.5 * start


# --------------------------------------------------------------------------------------------------
# the official checkpoint layout


def _official_release(folder):
    """The two official generator files with random values, saved as the official BaseModel.save() does."""
    edge_g, inpaint_g = randomise(OfficialGenerator(edge=True), 1), randomise(OfficialGenerator(edge=False), 2)
    folder.mkdir()
    torch.save({"iteration": 1000, "generator": edge_g.state_dict()}, folder / EDGE_FILE)
    torch.save({"iteration": 2000, "generator": inpaint_g.state_dict()}, folder / INPAINT_FILE)
    return edge_g, inpaint_g


def _load_by_hand(model, edge_g, inpaint_g):
    """Copy the official values into ours module by module, in order (convolutions and their parametrisation)."""
    def convs(net):
        return [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]

    with torch.no_grad():
        for ours, theirs in ((model.edge_generator, edge_g), (model.generator, inpaint_g)):
            pairs = list(zip(convs(ours), convs(theirs), strict=True))
            for a, b in pairs:
                for name, tensor in b.state_dict().items():
                    a.state_dict()[name].copy_(tensor)
    return model.eval()


def test_an_official_release_imports_strictly_and_runs_as_the_official_test(tmp_path, astronaut):
    edge_g, inpaint_g = _official_release(tmp_path / "places2")
    obj = checkpoints.read_checkpoint(tmp_path / "places2")
    assert len(obj[EDGE_FILE]["generator"]) == 70 and len(obj[INPAINT_FILE]["generator"]) == 44
    assert sum(k.endswith(("weight_orig", "weight_u", "weight_v")) for k in obj[EDGE_FILE]["generator"]) == 63
    probe = ib.create_model("edgeconnect")
    state, layout = checkpoints.convert(EdgeConnect, "edgeconnect", obj, probe.inference_state_dict())
    assert layout.key == "edgeconnect:official" and dict(layout.config) == {"merge_edges": False}
    imported = ib.create_model("edgeconnect", **layout.config)
    imported.load_inference_state_dict(state, model_name="edgeconnect")  # strict: no missing or unexpected key
    imported.eval()
    by_hand = _load_by_hand(ib.create_model("edgeconnect", merge_edges=False), edge_g, inpaint_g)

    image, mask = _photo(astronaut, 64), _box_mask()
    with torch.no_grad():
        ours = imported(image * (1 - mask), mask)
        assert torch.equal(ours, by_hand(image * (1 - mask), mask))
    gray = gray_image(image).float()
    edges = canny_edges(gray_image(image), 2.0, where=1 - mask)  # test mode: Canny of the known pixels
    official = official_test_forward(edge_g, inpaint_g, image, gray, edges, mask)
    torch.testing.assert_close(ours, official, atol=1e-5, rtol=0)
    # through the store: `inpaintbench weights import-model edgeconnect checkpoints/places2`
    entry = ib.import_checkpoint("edgeconnect", tmp_path / "places2", store=tmp_path / "store")
    stored, card = ib.load_stored(entry)
    assert card["layout"] == "edgeconnect:official" and stored.config.merge_edges is False
    with torch.no_grad():
        assert torch.equal(stored(image * (1 - mask), mask), ours)


def test_one_official_file_alone_and_a_foreign_file_are_refused_by_name(tmp_path):
    _official_release(tmp_path / "release")
    probe = ib.create_model("edgeconnect").inference_state_dict()
    single = checkpoints.read_checkpoint(tmp_path / "release" / INPAINT_FILE)
    with pytest.raises(InpaintbenchError, match="InpaintingModel_gen.pth alone.*EdgeModel_gen.pth"):
        checkpoints.convert(EdgeConnect, "edgeconnect", single, probe)
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(InpaintbenchError, match="matches no checkpoint layout of edgeconnect"):
        checkpoints.convert(EdgeConnect, "edgeconnect", checkpoints.read_checkpoint(tmp_path / "other.pth"), probe)
    with pytest.raises(InpaintbenchError, match="holds no checkpoint file"):
        (tmp_path / "empty").mkdir()
        checkpoints.read_checkpoint(tmp_path / "empty")
