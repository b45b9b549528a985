"""Official checkpoints: safe reading, the PConv and GLCIC layouts, strict import into the store."""

from __future__ import annotations

import collections
import json
import os

import pytest
import torch
import torch.nn.functional as F

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.masks import make_masks
from inpaintbench.models.checkpoints import Opaque, read_checkpoint
from inpaintbench.models.store import import_checkpoint, list_checkpoints, load_stored

IMAGENET = (torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))


def _batch(size, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g)
    mask = make_masks("L3", n, size=size, seed=seed).float()
    return image, mask


def _bn(prefix, c, g):
    return {f"{prefix}.weight": torch.rand(c, generator=g) + 0.5, f"{prefix}.bias": torch.randn(c, generator=g) * 0.1,
            f"{prefix}.running_mean": torch.randn(c, generator=g) * 0.1,
            f"{prefix}.running_var": torch.rand(c, generator=g) + 0.5, f"{prefix}.num_batches_tracked": torch.tensor(7)}


# --------------------------------------------------------------------------------------------------
# PConv, naoto0804's layout (net.py: PConvUNet(layer_size=7) of PCBActiv(PartialConv(input_conv, mask_conv), bn))


def _naoto_layers(layers=7):
    """(name, c_in, c_out, kernel, bn, bias) of naoto0804's PConvUNet, read off its net.py."""
    enc = [("enc_1", 3, 64, 7, False, False), ("enc_2", 64, 128, 5, True, False), ("enc_3", 128, 256, 5, True, False),
           ("enc_4", 256, 512, 3, True, False)] + [(f"enc_{i + 1}", 512, 512, 3, True, False) for i in range(4, layers)]
    dec = [(f"dec_{i + 1}", 1024, 512, 3, True, False) for i in range(4, layers)]
    dec += [("dec_4", 768, 256, 3, True, False), ("dec_3", 384, 128, 3, True, False),
            ("dec_2", 192, 64, 3, True, False), ("dec_1", 67, 3, 3, False, True)]
    return enc + dec


def naoto_state_dict(layers=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = collections.OrderedDict()
    for name, c_in, c_out, k, bn, bias in _naoto_layers(layers):
        fan = c_in * k * k
        state[f"{name}.conv.input_conv.weight"] = torch.randn(c_out, c_in, k, k, generator=g) * (2 / fan) ** 0.5
        if bias:
            state[f"{name}.conv.input_conv.bias"] = torch.randn(c_out, generator=g) * 0.1
        state[f"{name}.conv.mask_conv.weight"] = torch.ones(c_out, c_in, k, k)
        if bn:
            state.update(_bn(f"{name}.bn", c_out, g))
    return state


def save_naoto(path, state):
    """As naoto's save_ckpt: {'n_iter': n, 'model': state_dict, 'optimizer': optimizer.state_dict()}."""
    optimizer = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
                 "param_groups": [{"lr": 2e-4, "betas": (0.9, 0.999), "params": [0]}]}
    torch.save({"n_iter": 1000, "model": state, "optimizer": optimizer}, path)


def naoto_forward(state, image, mask, layers=7):
    """naoto0804's PConvUNet.forward, restated functionally on its own state dict (eval mode)."""
    spec = {name: (k, bn) for name, _, _, k, bn, _ in _naoto_layers(layers)}
    strides = {"enc_1": 2, **{f"enc_{i}": 2 for i in range(2, layers + 1)}}

    def pconv(name, x, m):
        k, bn = spec[name]
        w, b = state[f"{name}.conv.input_conv.weight"], state.get(f"{name}.conv.input_conv.bias")
        stride = strides.get(name, 1)
        out = F.conv2d(x * m, w, b, stride, k // 2)
        bias = b.view(1, -1, 1, 1) if b is not None else torch.zeros_like(out)
        msum = F.conv2d(m, state[f"{name}.conv.mask_conv.weight"], None, stride, k // 2)
        holes = msum == 0
        out = ((out - bias) / msum.masked_fill(holes, 1.0) + bias).masked_fill(holes, 0.0)
        new = torch.ones_like(out).masked_fill(holes, 0.0)
        if bn:
            out = F.batch_norm(out, state[f"{name}.bn.running_mean"], state[f"{name}.bn.running_var"],
                               state[f"{name}.bn.weight"], state[f"{name}.bn.bias"], False)
        return out, new

    mean, std = IMAGENET
    h, m = (image - mean) / std, (1 - mask).expand(-1, 3, -1, -1)
    hs, ms = {0: h}, {0: m}
    for i in range(1, layers + 1):
        h, m = pconv(f"enc_{i}", h, m)
        h = F.relu(h)
        hs[i], ms[i] = h, m
    for i in range(layers, 0, -1):
        h = torch.cat([F.interpolate(h, scale_factor=2), hs[i - 1]], 1)
        m = torch.cat([F.interpolate(m, scale_factor=2), ms[i - 1]], 1)
        h, m = pconv(f"dec_{i}", h, m)
        if i > 1:
            h = F.leaky_relu(h, 0.2)
    return (h * std + mean).clamp(0, 1)


def naoto_by_hand(state, layers=7):
    """Our pconv-256 with naoto's values mapped by hand: enc_i -> encoder[i-1], dec_j -> decoder[L-j]."""
    model = ib.create_model("pconv-256", input_norm="imagenet").eval()
    mapped = {}
    for name, *_ in _naoto_layers(layers):
        kind, n = name.split("_")
        ours = f"unet.encoder.{int(n) - 1}" if kind == "enc" else f"unet.decoder.{layers - int(n)}"
        w = state[f"{name}.conv.input_conv.weight"]
        mapped[f"{ours}.conv.weight"] = w / (w.shape[1] * w.shape[2] * w.shape[3])
        if f"{name}.conv.input_conv.bias" in state:
            mapped[f"{ours}.conv.bias"] = state[f"{name}.conv.input_conv.bias"]
        for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            if f"{name}.bn.{leaf}" in state:
                mapped[f"{ours}.norm.{leaf}"] = state[f"{name}.bn.{leaf}"]
    mapped["unet.encoder.0.conv.bias"] = torch.zeros(64)
    model.load_state_dict(mapped, strict=False)
    return model


def test_naoto_pconv_imports_and_runs_as_naoto_ran_it(tmp_path):
    state = naoto_state_dict()
    assert len(state) == 89  # the official key count (model_anchors.md section 14), with its 14 all-ones mask kernels
    save_naoto(tmp_path / "pconv.pth", state)
    entry = import_checkpoint("pconv-256", tmp_path / "pconv.pth", license="MIT (naoto0804)", store=tmp_path / "store")
    model, card = load_stored(entry.name, store=tmp_path / "store")
    assert card["layout"] == "pconv:naoto0804" and card["config"]["input_norm"] == "imagenet"
    assert card["license"] == "MIT (naoto0804)" and card["original_file"] == "pconv.pth"
    image, mask = _batch(128)
    with torch.no_grad():
        ours = model(image * (1 - mask), mask)
        assert torch.equal(ours, naoto_by_hand(state)(image * (1 - mask), mask))
        torch.testing.assert_close(ours, naoto_forward(state, image * (1 - mask), mask), atol=1e-4, rtol=0)


def test_glcic_mmagic_imports_and_runs_as_mmagic_ran_it(tmp_path):
    state, spec = mmagic_gl_state_dict()
    meta = {"mmedit_version": "0.x", "config": "model = dict(type='GLInpaintor')", "iter": 500000}
    # older zoo files are legacy (non-zip) pickles
    torch.save({"meta": meta, "state_dict": state}, tmp_path / "gl.pth", _use_new_zipfile_serialization=False)
    entry = import_checkpoint("glcic", tmp_path / "gl.pth", store=tmp_path / "store")
    model, card = load_stored(entry, store=tmp_path / "store")
    assert card["layout"] == "glcic:mmagic"
    assert not any(k.startswith("discriminator") for k in model.inference_state_dict())
    image, mask = _batch(64)
    with torch.no_grad():
        ours = model(image * (1 - mask), mask)
        by_hand = glcic_by_hand(state, spec)(image * (1 - mask), mask)
        assert torch.equal(ours, by_hand)
        torch.testing.assert_close(ours, mmagic_gl_forward(state, spec, image, mask), atol=1e-4, rtol=0)


def mmagic_gl_state_dict(seed=0):
    """generator.* of MMagic's GLEncoderDecoder (ConvModule conv + SyncBN 'bn') and a few disc.* keys."""
    g = torch.Generator().manual_seed(seed)
    spec = []  # (name, c_in, c_out, kernel, stride, dilation, transposed, bn)
    enc = [(64, 5, 1), (128, 3, 2), (128, 3, 1), (256, 3, 2), (256, 3, 1), (256, 3, 1)]
    c = 4
    for i, (out, k, s) in enumerate(enc, start=1):
        spec.append((f"encoder.enc{i}", c, out, k, s, 1, False, True))
        c = out
    spec += [(f"dilation_neck.dilation_convs.{i}", 256, 256, 3, 1, 2 ** (i + 1), False, True) for i in range(4)]
    dec = [(256, 256, 3, False), (256, 128, 4, True), (128, 128, 3, False), (128, 64, 4, True), (64, 32, 3, False),
           (32, 3, 3, False)]
    spec.append(("decoder.dec1", 256, 256, 3, 1, 1, False, True))
    for i, (cin, out, k, t) in enumerate(dec, start=2):
        spec.append((f"decoder.dec{i}", cin, out, k, 2 if t else 1, 1, t, i < 7))
    state = collections.OrderedDict()
    for name, cin, out, k, _, _, t, bn in spec:
        shape = (cin, out, k, k) if t else (out, cin, k, k)
        state[f"generator.{name}.conv.weight"] = torch.randn(*shape, generator=g) * (2 / (cin * k * k)) ** 0.5
        if not bn:
            state[f"generator.{name}.conv.bias"] = torch.randn(out, generator=g) * 0.1
        else:
            state.update(_bn(f"generator.{name}.bn", out, g))
    state["disc.fc.weight"] = torch.randn(1, 2048, generator=g)
    state["disc.fc.bias"] = torch.zeros(1)
    state["disc.global_disc.conv1.conv.weight"] = torch.randn(64, 3, 5, 5, generator=g)
    return state, spec


def mmagic_gl_forward(state, spec, image, mask):
    """MMagic's inference: BGR, (x - 127.5) / 127.5 with holes at 127.5, cat mask, 17 ConvModules, clip."""
    bgr = image.flip(1)
    x = torch.cat([(bgr * (1 - mask) + 0.5 * mask) * 2 - 1, mask], 1)
    for name, _, _, k, s, d, t, bn in spec:
        w, b = state[f"generator.{name}.conv.weight"], state.get(f"generator.{name}.conv.bias")
        x = F.conv_transpose2d(x, w, b, s, 1) if t else F.conv2d(x, w, b, s, d * (k - 1) // 2, d)
        if bn:
            p = f"generator.{name}.bn"
            x = F.relu(F.batch_norm(x, state[f"{p}.running_mean"], state[f"{p}.running_var"], state[f"{p}.weight"],
                                    state[f"{p}.bias"], False))
    return ((x.clamp(-1, 1) + 1) / 2).flip(1)


def glcic_by_hand(state, spec):
    model = ib.create_model("glcic", value_range="symmetric", output="clip", fill=0.5).eval()
    mapped = {}
    for i, (name, *_rest) in enumerate(spec):
        for key, value in state.items():
            if key.startswith(f"generator.{name}.conv."):
                mapped[f"generator.{i}.0.{key.rsplit('.', 1)[1]}"] = value
            elif key.startswith(f"generator.{name}.bn."):
                mapped[f"generator.{i}.1.{key.rsplit('.', 1)[1]}"] = value
    mapped["generator.0.0.weight"] = mapped["generator.0.0.weight"][:, [2, 1, 0, 3]]  # BGR -> RGB
    mapped["generator.16.0.weight"] = mapped["generator.16.0.weight"][[2, 1, 0]]
    mapped["generator.16.0.bias"] = mapped["generator.16.0.bias"][[2, 1, 0]]
    model.load_state_dict(mapped, strict=False)
    return model


# --------------------------------------------------------------------------------------------------
# safety and clear errors


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_a_command_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {"w": torch.ones(1)}, "payload": _RunsACommand(marker)}, tmp_path / "evil.pth")
    with pytest.raises(InpaintbenchError) as err:
        import_checkpoint("pconv-256", tmp_path / "evil.pth", store=tmp_path / "store")
    message = str(err.value)
    assert "system" in message and "refused" in message and "\n" not in message
    assert not marker.exists() and not (tmp_path / "store").exists()


def test_a_lightning_checkpoint_with_omegaconf_reads_without_omegaconf_code(tmp_path):
    import omegaconf  # in the test extra: a missing one is a failure, not a skip
    hparams = omegaconf.OmegaConf.create({"generator": {"kind": "ffc_resnet", "n_blocks": 18}, "lr": 1e-3})
    torch.save({"epoch": 3, "global_step": 100, "pytorch-lightning_version": "1.2.9",
                "state_dict": collections.OrderedDict(w=torch.ones(2)), "hyper_parameters": hparams,
                "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3, "params": []}]}]},
               tmp_path / "best.ckpt")
    obj = read_checkpoint(tmp_path / "best.ckpt")
    assert torch.equal(obj["state_dict"]["w"], torch.ones(2))
    assert isinstance(obj["hyper_parameters"], Opaque) and type(obj["hyper_parameters"]).__name__ == "DictConfig"


def test_truncated_other_model_and_wrong_shape_each_give_one_clear_line(tmp_path):
    state = naoto_state_dict()
    save_naoto(tmp_path / "good.pth", state)
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    gl, _ = mmagic_gl_state_dict()
    torch.save({"meta": {}, "state_dict": gl}, tmp_path / "gl.pth")
    bad = dict(state)
    bad["enc_3.conv.input_conv.weight"] = torch.zeros(256, 128, 3, 3)
    save_naoto(tmp_path / "shape.pth", bad)
    store = tmp_path / "store"
    cases = {"cut.pth": r"cut\.pth is not a readable checkpoint \(truncated or corrupt\)",
             "gl.pth": r"gl\.pth is a glcic checkpoint \(mmagic layout\), not pconv-256",
             "shape.pth": r"shape\.pth does not fit pconv-256: 1 of the wrong shape "
                          r"\(unet\.encoder\.2\.conv\.weight is 256x128x3x3 in the file, 256x128x5x5 in the model\)"}
    for name, expected in cases.items():
        with pytest.raises(InpaintbenchError, match=expected) as err:
            import_checkpoint("pconv-256", tmp_path / name, store=store)
        assert "\n" not in str(err.value)
    missing = {k: v for k, v in state.items() if not k.startswith("dec_1.")}
    save_naoto(tmp_path / "missing.pth", missing)
    expected = r"2 missing \(unet\.decoder\.6\.conv\.bias, unet\.decoder\.6\.conv\.weight\)"
    with pytest.raises(InpaintbenchError, match=expected):
        import_checkpoint("pconv-256", tmp_path / "missing.pth", store=store)
    known = "has no checkpoint layout 'tf1'; known: inpaintbench, naoto0804, mmagic"
    with pytest.raises(InpaintbenchError, match=known):
        import_checkpoint("pconv-256", tmp_path / "good.pth", layout="tf1", store=store)
    with pytest.raises(InpaintbenchError, match="does not fit pconv-256: 76 missing"):  # forced, and wrong
        import_checkpoint("pconv-256", tmp_path / "good.pth", layout="mmagic", store=store)
    assert not store.exists() or not any(store.iterdir())  # nothing written by any failed import


def test_store_entries_are_verified_and_listed(tmp_path, sample32):
    save_naoto(tmp_path / "pconv.pth", naoto_state_dict())
    store = tmp_path / "store"
    entry = import_checkpoint("pconv-256", tmp_path / "pconv.pth", name="naoto", store=store)
    assert import_checkpoint("pconv-256", tmp_path / "pconv.pth", name="naoto", store=store) == entry  # idempotent
    cards = list_checkpoints(store)
    assert [c["name"] for c in cards] == ["naoto"] and cards[0]["parameters"] == 25_779_860
    with pytest.raises(InpaintbenchError, match="is a pconv-256 checkpoint, not glcic"):
        load_stored("naoto", store=store, model="glcic")
    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(InpaintbenchError, match="changed after it was stored"):
        load_stored("naoto", store=store)
    with pytest.raises(InpaintbenchError, match="no checkpoint 'nope'.*stored: naoto"):
        load_stored("nope", store=store)


def test_our_own_weights_import_too(tmp_path):
    model = ib.create_model("cnn-tiny")
    torch.save(model.state_dict(), tmp_path / "own.pt")
    entry = import_checkpoint("cnn-tiny", tmp_path / "own.pt", store=tmp_path / "store")
    loaded, card = load_stored(entry)
    assert card["layout"] == "inpaintbench"
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_cli_import_model_and_list(tmp_path, monkeypatch, capsys):
    from inpaintbench.cli import main

    monkeypatch.chdir(tmp_path)
    save_naoto(tmp_path / "pconv.pth", naoto_state_dict())
    assert main(["weights", "import-model", "pconv-256", "pconv.pth", "--name", "naoto", "--license", "MIT"]) == 0
    assert "models/checkpoints/naoto" in capsys.readouterr().out
    assert main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    assert "naoto" in listing and "pconv:naoto0804" in listing and "25,779,860" in listing
    card = json.loads((tmp_path / "models/checkpoints/naoto/card.json").read_text())
    assert card["license"] == "MIT"
    assert main(["weights", "import-model", "glcic", "pconv.pth"]) == 2
    assert "not glcic" in capsys.readouterr().err


def mmagic_pconv_state_dict(layers=7, seed=0):
    """generator.* of MMagic's PConvEncoderDecoder: MaskConvModule(PartialConv2d + 'bn') per layer."""
    g = torch.Generator().manual_seed(seed)
    state = collections.OrderedDict()
    for name, c_in, c_out, k, bn, _ in _naoto_layers(layers):  # same network; names enc<i> / dec<j>
        prefix = f"generator.{'encoder.enc' if name.startswith('enc') else 'decoder.dec'}{name.split('_')[1]}"
        state[f"{prefix}.conv.weight"] = torch.randn(c_out, c_in, k, k, generator=g) * (2 / (c_in * k * k)) ** 0.5
        if not bn:
            state[f"{prefix}.conv.bias"] = torch.randn(c_out, generator=g) * 0.1
        state[f"{prefix}.conv.weight_mask_updater"] = torch.ones(c_out, c_in, k, k)
        if bn:
            state.update(_bn(f"{prefix}.bn", c_out, g))
    return state


def mmagic_pconv_forward(state, image, mask, layers=7):
    """MMagic's PConv inference restated: BGR in [-1, 1], NVIDIA's mask ratio, output (y + 1) / 2."""
    def pconv(prefix, x, m, k, stride):
        w, b = state[f"{prefix}.conv.weight"], state.get(f"{prefix}.conv.bias")
        upd = F.conv2d(m, state[f"{prefix}.conv.weight_mask_updater"], None, stride, k // 2)
        ratio = (w[0].numel() / (upd + 1e-8)) * upd.clamp(0, 1)
        raw = F.conv2d(x * m, w, b, stride, k // 2)
        if b is None:
            out = raw * ratio
        else:
            out = ((raw - b.view(1, -1, 1, 1)) * ratio + b.view(1, -1, 1, 1)) * upd.clamp(0, 1)
        if f"{prefix}.bn.weight" in state:
            p = f"{prefix}.bn"
            out = F.batch_norm(out, state[f"{p}.running_mean"], state[f"{p}.running_var"], state[f"{p}.weight"],
                               state[f"{p}.bias"], False)
        return out, upd.clamp(0, 1)

    kernels = {name: k for name, _, _, k, _, _ in _naoto_layers(layers)}
    h, m = image.flip(1) * 2 - 1, (1 - mask).expand(-1, 3, -1, -1)
    hs, ms = {0: h}, {0: m}
    for i in range(1, layers + 1):
        h, m = pconv(f"generator.encoder.enc{i}", h, m, kernels[f"enc_{i}"], 2)
        h = F.relu(h)
        hs[i], ms[i] = h, m
    for i in range(layers, 0, -1):
        h = torch.cat([F.interpolate(h, scale_factor=2), hs[i - 1]], 1)
        m = torch.cat([F.interpolate(m, scale_factor=2), ms[i - 1]], 1)
        h, m = pconv(f"generator.decoder.dec{i}", h, m, kernels[f"dec_{i}"], 1)
        if i > 1:
            h = F.leaky_relu(h, 0.2)
    return ((h + 1) / 2).clamp(0, 1).flip(1)


def test_mmagic_pconv_imports_and_runs_as_mmagic_ran_it(tmp_path):
    state = mmagic_pconv_state_dict()
    torch.save({"meta": {"iter": 500000}, "state_dict": state}, tmp_path / "pconv_mmagic.pth")
    entry = import_checkpoint("pconv-256", tmp_path / "pconv_mmagic.pth", store=tmp_path / "store")
    model, card = load_stored(entry)
    assert card["layout"] == "pconv:mmagic"
    image, mask = _batch(128)
    # in float64: in float32 the two sums of 14 layers differed by up to 1.1e-4 on 4 of 98,304 values on one CPU
    # (the tolerance was 1e-4); in float64 they differ by 2.4e-6 at most, the two formulas' own difference
    image, mask, state = image.double(), mask.double(), {k: v.double() for k, v in state.items()}
    with torch.no_grad():
        torch.testing.assert_close(model.double()(image * (1 - mask), mask), mmagic_pconv_forward(state, image, mask),
                                   atol=1e-5, rtol=0)
