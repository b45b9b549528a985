"""LaMa's HRF perceptual loss network (models/hrf_loss.py): the CSAIL ResNet50-dilated encoder and its file."""

import pytest
import torch

from inpaintbench._registry import InpaintbenchError
from inpaintbench._weights import WEIGHTS, weights_status
from inpaintbench.models.hrf_loss import ADE20kResNetFeatures, hrf_perceptual_loss


def _csail_keys():
    """The encoder's state-dict keys as ResnetDilated(resnet50) names them (deep stem, stages of 3, 4, 6, 3)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = [f"conv{i}.weight" for i in (1, 2, 3)] + [f"bn{i}.{k}" for i in (1, 2, 3) for k in bn]
    for stage, blocks in enumerate((3, 4, 6, 3), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            keys += [f"{p}.conv{i}.weight" for i in (1, 2, 3)] + [f"{p}.bn{i}.{k}" for i in (1, 2, 3) for k in bn]
            if b == 0:
                keys += [f"{p}.downsample.0.weight"] + [f"{p}.downsample.1.{k}" for k in bn]
    return keys


def test_encoder_has_the_csail_keys_strides_and_dilations():
    net = ADE20kResNetFeatures(random_weights=True)
    enc = net.encoder
    assert sorted(enc.state_dict()) == sorted(_csail_keys())
    assert enc.conv3.weight.shape == (128, 64, 3, 3) and enc.layer1[0].conv1.weight.shape == (64, 128, 1, 1)
    # ResnetDilated(dilate_scale=8): stages 3 and 4 keep the resolution, dilations 1 then 2 (stage 3), 2 then 4 (4)
    assert [(b.conv2.stride, b.conv2.dilation) for b in enc.layer3][:2] == [((1, 1), (1, 1)), ((1, 1), (2, 2))]
    assert [(b.conv2.stride, b.conv2.dilation) for b in enc.layer4][:2] == [((1, 1), (2, 2)), ((1, 1), (4, 4))]
    assert enc.layer3[0].downsample[0].stride == (1, 1) and enc.layer2[0].conv2.stride == (2, 2)
    feats = net(torch.rand(1, 3, 64, 48))
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 16, 12), (512, 8, 6), (1024, 8, 6), (2048, 8, 6)]


def test_weights_load_from_the_file_and_stay_frozen(tmp_path):
    """A file with CSAIL's keys (here under DataParallel's module. prefix) is loaded, checked and frozen."""
    source = ADE20kResNetFeatures(random_weights=True)
    with torch.no_grad():
        for p in source.encoder.parameters():
            p.mul_(0.5)
    torch.save({f"module.{k}": v for k, v in source.encoder.state_dict().items()}, tmp_path / "encoder_epoch_20.pth")
    net = ADE20kResNetFeatures(weights_dir=tmp_path, random_weights=False)
    for a, b in zip(net.encoder.state_dict().values(), source.encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training and not net.encoder.layer1[0].bn1.training


def test_a_wrong_file_is_refused_by_name(tmp_path):
    """A torchvision ResNet50 (7x7 stem) is not CSAIL's encoder (three 3x3 stem convolutions)."""
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "encoder_epoch_20.pth")
    with pytest.raises(InpaintbenchError, match="not the ADE20k ResNet50-dilated encoder: conv1.weight missing or of "
                                                "the wrong shape"):
        ADE20kResNetFeatures(weights_dir=tmp_path, random_weights=False)


def test_missing_file_names_the_file_and_the_ways_to_provide_it(empty_hub):
    with pytest.raises(InpaintbenchError) as err:
        ADE20kResNetFeatures()
    message = str(err.value)
    assert "encoder_epoch_20.pth" in message and "sceneparsing.csail.mit.edu" in message and "\n" not in message


def test_the_weights_registry_lists_it_without_a_checksum_claim(tmp_path):
    entry = WEIGHTS.get("ade20k-resnet50dilated")
    assert entry.filename == "encoder_epoch_20.pth" and entry.sha256_prefix == ""
    (tmp_path / "encoder_epoch_20.pth").write_bytes(b"x")
    rows = {r["name"]: r["status"] for r in weights_status(tmp_path)}
    assert rows["ade20k-resnet50dilated"] == "present (no published checksum)"


def test_hrf_loss_is_zero_on_the_truth_and_differentiable():
    torch.manual_seed(0)
    net = ADE20kResNetFeatures(random_weights=True)
    target = torch.rand(2, 3, 32, 32)
    assert hrf_perceptual_loss(net, target.clone(), target) == 0
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss = hrf_perceptual_loss(net, pred, target)
    loss.backward()
    assert loss > 0 and pred.grad.abs().sum() > 0
