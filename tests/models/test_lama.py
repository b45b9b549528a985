"""LaMa (models/lama.py): the official Lightning checkpoint, the prediction convention and the losses."""

import sys
import types

import numpy as np
import pytest
import torch

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.models import checkpoints
from inpaintbench.models.lama import LaMa, pad_symmetric
from inpaintbench.models.store import import_checkpoint, load_stored
from tests.models import official_lama

# --------------------------------------------------------------------------------------------------
# a checkpoint as Lightning 1.2.9 saves LaMa's best.ckpt


@pytest.fixture
def fake_lightning(monkeypatch):
    """A stand-in ``pytorch_lightning`` package, so that the callback state can be keyed by its class (as Lightning
    keys it) and pickled by reference, the way the real best.ckpt refers to it."""
    names = ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"]
    modules = {name: types.ModuleType(name) for name in names}
    cls = type("ModelCheckpoint", (), {"__module__": names[-1]})
    modules[names[-1]].ModelCheckpoint = cls
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return cls


def _hyper_parameters(n_blocks):
    """An OmegaConf DictConfig like the one save_hyperparameters(config) stores (part of big-lama.yaml)."""
    from omegaconf import OmegaConf

    return OmegaConf.create({
        "run_title": "",
        "training_model": {"kind": "default", "visualize_each_iters": 1000, "concat_mask": True},
        "losses": {"l1": {"weight_missing": 0, "weight_known": 10}, "perceptual": {"weight": 0},
                   "adversarial": {"kind": "r1", "weight": 10, "gp_coef": 0.001, "mask_as_fake_target": True},
                   "feature_matching": {"weight": 100},
                   "resnet_pl": {"weight": 30, "weights_path": "${env:TORCH_HOME}"}},
        "generator": {"kind": "ffc_resnet", "input_nc": 4, "output_nc": 3, "ngf": 64, "n_downsampling": 3,
                      "n_blocks": n_blocks, "add_out_act": "sigmoid",
                      "init_conv_kwargs": {"ratio_gin": 0, "ratio_gout": 0, "enable_lfu": False},
                      "downsample_conv_kwargs": {"ratio_gin": "${generator.init_conv_kwargs.ratio_gout}",
                                                 "ratio_gout": "${generator.downsample_conv_kwargs.ratio_gin}",
                                                 "enable_lfu": False},
                      "resnet_conv_kwargs": {"ratio_gin": 0.75,
                                             "ratio_gout": "${generator.resnet_conv_kwargs.ratio_gin}",
                                             "enable_lfu": False}},
        "discriminator": {"kind": "pix2pixhd_nlayer", "input_nc": 3, "ndf": 64, "n_layers": 4},
        "optimizers": {"generator": {"kind": "adam", "lr": 0.001}, "discriminator": {"kind": "adam", "lr": 0.0001}},
        "trainer": {"kwargs": {"gpus": -1, "max_epochs": 40, "gradient_clip_val": 1, "precision": 32}},
        "data": {"batch_size": 10, "train": {"out_size": 256}},
    })


def _save_lightning(path, generator_state, checkpoint_cls, n_blocks, ndf=64, seed=1):
    """torch.save of the dict Lightning 1.2.9 writes: generator, discriminator and loss-network weights under their
    module prefixes, the callback state keyed by its class, optimiser states and the OmegaConf hyper-parameters."""
    state = {f"generator.{k}": v for k, v in generator_state.items()}
    disc = official_lama.random_state(official_lama.discriminator_shapes(ndf), seed=seed)
    state.update({f"discriminator.{k}": v for k, v in disc.items()})
    g = torch.Generator().manual_seed(seed)
    state["loss_resnet_pl.impl.conv1.weight"] = torch.randn(64, 3, 3, 3, generator=g)  # part of the loss network
    state["loss_resnet_pl.impl.bn1.running_var"] = torch.rand(64, generator=g)
    param = torch.nn.Parameter(torch.zeros(3))
    adam = torch.optim.Adam([param], lr=1e-3)
    param.grad = torch.ones(3)
    adam.step()
    torch.save({
        "epoch": 39, "global_step": 1_000_000, "pytorch-lightning_version": "1.2.9",
        "callbacks": {checkpoint_cls: {"monitor": "val_ssim_fid100_f1_total_mean",
                                       "best_model_score": torch.tensor(0.9),
                                       "best_model_path": "/experiments/big-lama/models/epoch=39.ckpt"}},
        "optimizer_states": [adam.state_dict(), adam.state_dict()], "lr_schedulers": [],
        "state_dict": state, "hparams_name": "config", "hyper_parameters": _hyper_parameters(n_blocks),
    }, path)


def _copy_bn(bn, sd, prefix, used):
    for name in official_lama.BN_KEYS:
        getattr(bn, name).copy_(sd[f"{prefix}.{name}"])
        used.add(f"{prefix}.{name}")


def _hand_mapped(model, sd, n_blocks):
    """Copy the official values into ``model`` module by module (not through the layout's key map)."""
    used = set()

    def copy(param, key):
        param.copy_(sd[key])
        used.add(key)

    def ffc(ours, p):
        for branch, name in ((ours.ffc.local_to_local, "convl2l"), (ours.ffc.local_to_global, "convl2g"),
                             (ours.ffc.global_to_local, "convg2l")):
            if branch is not None:
                copy(branch.weight, f"{p}.ffc.{name}.weight")
        spectral = ours.ffc.global_to_global
        if spectral is not None:
            copy(spectral.reduce[0].weight, f"{p}.ffc.convg2g.conv1.0.weight")
            _copy_bn(spectral.reduce[1], sd, f"{p}.ffc.convg2g.conv1.1", used)
            copy(spectral.fourier.conv.weight, f"{p}.ffc.convg2g.fu.conv_layer.weight")
            _copy_bn(spectral.fourier.norm, sd, f"{p}.ffc.convg2g.fu.bn", used)
            copy(spectral.expand.weight, f"{p}.ffc.convg2g.conv2.weight")
        if ours.norm_local is not None:
            _copy_bn(ours.norm_local, sd, f"{p}.bn_l", used)
        if ours.norm_global is not None:
            _copy_bn(ours.norm_global, sd, f"{p}.bn_g", used)

    gen = model.generator
    with torch.no_grad():
        ffc(gen.stem, "model.1")
        for i, layer in enumerate(gen.down):
            ffc(layer, f"model.{2 + i}")
        for b, block in enumerate(gen.blocks):
            ffc(block.conv1, f"model.{5 + b}.conv1")
            ffc(block.conv2, f"model.{5 + b}.conv2")
        index = 5 + n_blocks + 1
        for up in gen.up:
            copy(up[0].weight, f"model.{index}.weight")
            copy(up[0].bias, f"model.{index}.bias")
            _copy_bn(up[1], sd, f"model.{index + 1}", used)
            index += 3
        copy(gen.head.weight, f"model.{index + 1}.weight")
        copy(gen.head.bias, f"model.{index + 1}.bias")
    assert used == set(sd), sorted(set(sd) - used)[:5]
    return model.eval()


def _import(name, path):
    """Through the checkpoint store: import_checkpoint (safe read, detected layout, strict) then load_stored."""
    entry = import_checkpoint(name, path, store=path.parent / "store")
    model, card = load_stored(entry)
    assert isinstance(model, LaMa) and card["model"] == name
    return model, checkpoints.LAYOUTS.get(card["layout"])


def _photo_batch(h, w, seed=0):
    from skimage.data import astronaut
    from skimage.transform import resize

    from inpaintbench.masks import make_masks

    image = torch.from_numpy(resize(astronaut(), (h, w), anti_aliasing=True)).permute(2, 0, 1)[None].float()
    mask = make_masks("L3", 1, size=max(h, w), seed=seed)[..., :h, :w].float()
    return image, mask


def test_lightning_checkpoint_imports_the_generator_and_matches_the_official_forward(tmp_path, fake_lightning):
    """lama-tiny's shapes in the official layout: read safely (OmegaConf and the callback class as inert stand-ins),
    converted with no missing or unexpected key, equal to the hand-mapped model, and equal to the official
    prediction path (numpy 'symmetric' padding to 8 of image and mask, official generator, crop) on a photo."""
    cfg = ib.models.MODELS.get("lama-tiny").config
    official = official_lama.random_state(official_lama.generator_shapes(cfg.blocks, cfg.width))
    path = tmp_path / "best.ckpt"
    _save_lightning(path, official, fake_lightning, cfg.blocks, ndf=8)
    obj = checkpoints.read_checkpoint(path)
    assert isinstance(obj["hyper_parameters"], checkpoints.Opaque)
    [callback] = obj["callbacks"]  # the key is the class: an inert stand-in named after it
    assert issubclass(callback, checkpoints.Opaque) and callback.__name__ == "ModelCheckpoint"
    model, layout = _import("lama-tiny", path)
    assert layout.key == "lama:official"
    hand = _hand_mapped(ib.create_model("lama-tiny"), official, cfg.blocks)

    image, mask = _photo_batch(37, 50)  # neither side a multiple of 8
    with torch.no_grad():
        ours = model(image * (1 - mask), mask)
        assert torch.equal(ours, hand(image * (1 - mask), mask))
        img = np.pad(image[0].numpy(), ((0, 0), (0, 3), (0, 6)), mode="symmetric")  # pad_img_to_modulo(img, 8)
        msk = np.pad(mask[0].numpy(), ((0, 0), (0, 3), (0, 6)), mode="symmetric")
        img, msk = torch.from_numpy(img)[None], torch.from_numpy(msk)[None]
        reference = official_lama.generator_forward(official, torch.cat([img * (1 - msk), msk], 1), cfg.blocks)
    assert ours.shape == image.shape
    torch.testing.assert_close(ours, reference[..., :37, :50], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name, n_keys", [("big-lama", 989), ("lama-fourier", 521)])
def test_full_size_lightning_checkpoints_import_strictly(name, n_keys, tmp_path, fake_lightning):
    """The official shapes of big-lama (18 blocks) and lama-fourier (9): the key counts of the official
    generator, a strict import, and the hand-mapped model's output."""
    blocks = ib.models.MODELS.get(name).config.blocks
    official = official_lama.random_state(official_lama.generator_shapes(blocks))
    assert len(official) == n_keys
    path = tmp_path / "best.ckpt"
    _save_lightning(path, official, fake_lightning, blocks)
    model, _ = _import(name, path)
    assert len(model.inference_state_dict()) == n_keys
    image, mask = _photo_batch(32, 32)
    with torch.no_grad():
        assert torch.equal(model(image, mask), _hand_mapped(ib.create_model(name), official, blocks)(image, mask))


def test_a_checkpoint_with_other_block_counts_is_refused_by_name(tmp_path, fake_lightning):
    official = official_lama.random_state(official_lama.generator_shapes(3, 8))
    path = tmp_path / "best.ckpt"
    _save_lightning(path, official, fake_lightning, 3, ndf=8)
    with pytest.raises(checkpoints.CheckpointMismatch, match=r"unexpected \(generator\.blocks\.2\."):
        _import("lama-tiny", path)


# --------------------------------------------------------------------------------------------------
# inference convention


@pytest.mark.parametrize("h, w", [(37, 50), (8, 13), (3, 5), (16, 16)])
def test_pad_symmetric_is_numpys_symmetric_pad(h, w):
    x = torch.randn(1, 2, h, w)
    ours = pad_symmetric(x, 8)
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (0, -h % 8), (0, -w % 8)), mode="symmetric")
    np.testing.assert_array_equal(ours.numpy(), ref)


def test_any_size_runs_and_known_pixels_do_not_leak_through_holes():
    """Output of the input's size; what lies under the hole does not change the prediction (holes are zeroed)."""
    model = ib.create_model("lama-tiny").eval()
    image, mask = _photo_batch(45, 61)
    other = image.clone()
    other[mask.expand_as(other) > 0] = 0.3
    with torch.no_grad():
        a, b = model(image, mask), model(other, mask)
    assert a.shape == image.shape and torch.equal(a, b)


def test_inpaint_command_runs_lama_at_the_photos_own_size_as_predict_py(tmp_path):
    """`inpaintbench inpaint` with a stored LaMa: a photo whose sides are not multiples of 8 comes back at its size,
    painted as predict.py without refinement (symmetric pad to 8, eval-mode BatchNorm, crop), known pixels kept.

    (The pad itself is pinned to numpy's in test_pad_symmetric_is_numpys_symmetric_pad: on this tiny random network
    a reflect pad would change the output by less than a grey level.)
    """
    from PIL import Image

    from inpaintbench.cli import main
    from inpaintbench.models.store import write_entry

    torch.manual_seed(0)
    model = ib.create_model("lama-tiny")
    for m in model.generator.modules():  # running statistics away from (0, 1), so eval mode is visible
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    write_entry(tmp_path / "entry", model, "lama-tiny", {"source": "test"})
    image, mask = _photo_batch(45, 61)
    photo = (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    hole = mask[0, 0].numpy() > 0
    Image.fromarray(photo).save(tmp_path / "photo.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    assert main(["inpaint", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"), "--out",
                 str(tmp_path / "out.png"), "--checkpoint", str(tmp_path / "entry"), "--device", "cpu"]) in (0, None)
    out = np.asarray(Image.open(tmp_path / "out.png"))
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(hole.astype(np.float32))[None, None]
    padded = pad_symmetric(torch.cat([x * (1 - m), m], dim=1), 8)
    with torch.no_grad():
        expected = model.eval().generator(padded)[..., :45, :61]
    painted = (expected[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
    assert out.shape == photo.shape and np.array_equal(out[~hole], photo[~hole])
    assert np.abs(out[hole].astype(int) - painted[hole].astype(int)).max() <= 1


# --------------------------------------------------------------------------------------------------
# losses


def _losses(name, group, image, mask, **options):
    model = ib.create_model(name, **options)
    return model, model.training_losses(group, image, mask, 0, {})


def test_mask_as_fake_target_treats_known_pixels_of_a_prediction_as_real():
    """With an empty mask the fake term is softplus(-D(fake)) (all real); with a full mask softplus(D(fake))."""
    torch.manual_seed(0)
    model = ib.create_model("lama-tiny")
    image = torch.rand(2, 3, 32, 32)
    pred = torch.rand(2, 3, 32, 32)
    for fill, sign in ((0.0, -1), (1.0, 1)):
        mask = torch.full((2, 1, 32, 32), fill)
        model.eval()  # fixed BatchNorm statistics: the same logits in both calls
        losses = model.training_losses("discriminator", image, mask, 0, {"pred": pred})
        logits = model.discriminator(pred).float()
        torch.testing.assert_close(losses["d_fake"], torch.nn.functional.softplus(sign * logits).mean())


def test_the_l1_term_only_sees_known_pixels():
    torch.manual_seed(0)
    model = ib.create_model("lama-tiny")
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    pred = image.clone()
    pred[mask.expand_as(pred) > 0] = 1 - pred[mask.expand_as(pred) > 0]  # wrong only inside the hole
    losses = model.training_losses("generator", image, mask, 0, {"pred": pred})
    assert losses["l1_known"].item() == 0
    assert losses["feature_matching"].item() > 0


@pytest.mark.parametrize("perceptual", ["hrf", "vgg"])
def test_perceptual_options_give_a_differentiable_term(perceptual):
    torch.manual_seed(0)
    image = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 4:20, 4:20] = 1
    model, losses = _losses("lama-tiny", "generator", image, mask, perceptual=perceptual)
    assert losses["perceptual"].requires_grad and losses["perceptual"].item() > 0
    expected = 30.0 if perceptual == "hrf" else 0.3
    assert model.config.perceptual_scale == expected


def test_missing_loss_network_files_fail_before_training(empty_hub):
    with pytest.raises(InpaintbenchError, match=r"encoder_epoch_20\.pth.*weights import.*perceptual=vgg"):
        ib.create_model("big-lama").prepare_training(256)
    with pytest.raises(InpaintbenchError, match="vgg19"):
        ib.create_model("big-lama", perceptual="vgg").prepare_training(256)
    ib.create_model("big-lama", perceptual="none").prepare_training(256)


def test_optimisers_follow_the_official_config():
    groups = {g.name: g for g in ib.create_model("big-lama").optimizer_groups()}
    assert list(groups) == ["generator", "discriminator"]  # Lightning's optimizer order
    assert (groups["generator"].lr, groups["discriminator"].lr) == (1e-3, 1e-4)
    assert groups["generator"].clip_norm == groups["discriminator"].clip_norm == 1.0


def test_the_regular_convolution_ablation_has_no_spectral_branch():
    model = ib.create_model("lama-regular")
    assert not any("global" in k for k in model.inference_state_dict())
    assert len(model.generator.blocks) == 9
