import numpy as np
import pytest
import torch

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.masks import make_masks
from inpaintbench.models import MODELS


def _batch(size, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g)
    mask = torch.from_numpy(make_masks("L2", n, size=size, seed=seed)).float()
    return image, mask


def _size(name):
    return getattr(MODELS.get(name).config, "size", 64)


@pytest.mark.parametrize("name", ib.list_models())
def test_forward_backward(name):
    model = ib.create_model(name)
    image, mask = _batch(_size(name))
    pred = model(image * (1 - mask), mask)
    assert pred.shape == image.shape and torch.isfinite(pred).all()
    assert pred.min() >= 0 and pred.max() <= 1
    if model.trainable:
        loss = sum(model.loss(pred, image, mask).values())
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", [n for n in ib.list_models() if MODELS.get(n).model_cls.trainable])
def test_tiny_config_overfits_one_batch(name, sample32):
    """The hole L1 on one fixed batch falls by at least half within a few hundred steps."""
    from inpaintbench.datasets import open_dataset

    torch.manual_seed(0)
    size = 32
    ds = open_dataset(sample32, "train", masks=["L2"], seed=0)
    image = torch.stack([ds[i]["image"] for i in range(8)])
    mask = torch.stack([ds[i]["mask"] for i in range(8)])
    overrides = {"size": size}
    if name.startswith("mlp"):
        overrides["hidden"] = (256,)
    else:
        overrides.update(width=8, bottleneck=64)
    model = ib.create_model(name, **overrides)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def hole_l1():
        model.eval()
        with torch.no_grad():
            value = ib.metrics.l1_hole(model(image * (1 - mask), mask), image, mask).mean().item()
        model.train()
        return value

    start = hole_l1()
    for _ in range(300):
        pred = model(image * (1 - mask), mask)
        loss = sum(model.loss(pred, image, mask).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert hole_l1() < 0.5 * start


def test_mean_fill_fills_holes_with_known_mean_and_keeps_the_rest():
    image = torch.zeros(1, 3, 4, 4)
    image[0, 0] = torch.arange(16.0).view(4, 4) / 16
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :2] = 1
    pred = ib.create_model("mean-fill")(image * (1 - mask), mask)
    known = image[0, 0][mask[0, 0] == 0]
    assert torch.allclose(pred[0, 0][mask[0, 0] == 1], known.mean().expand(4))
    assert torch.equal(pred[0, :, 2:, 2:], image[0, :, 2:, 2:])


def test_biharmonic_matches_scikit_image_on_a_photo(astronaut):
    from skimage.restoration import inpaint_biharmonic
    from skimage.transform import resize

    img = resize(astronaut, (48, 48), anti_aliasing=True)
    mask = make_masks("L1", 1, size=48)[0, 0].astype(bool)
    ref = inpaint_biharmonic(img, mask, channel_axis=-1)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    m = torch.from_numpy(mask)[None, None].float()
    out = ib.create_model("biharmonic")(x * (1 - m), m)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), np.clip(ref, 0, 1), atol=1e-5)


def test_create_model_rejects_unknown_options_and_names():
    with pytest.raises(InpaintbenchError, match="has no option depth"):
        ib.create_model("cnn", depth=3)
    with pytest.raises(InpaintbenchError, match="unknown model"):
        ib.create_model("gan-9000")
    with pytest.raises(InpaintbenchError, match="power of two"):
        ib.create_model("cnn", size=48)


def test_models_refuse_other_resolutions():
    model = ib.create_model("cnn-tiny")
    image, mask = _batch(64)
    with pytest.raises(InpaintbenchError, match="built for 32x32"):
        model(image, mask)
