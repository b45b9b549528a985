"""Independent re-statements of the official DeepFill code for the tests (not imported by the package).

* :func:`reference_attention`: contextual attention image by image, written as the official code and
  nipponjo's port write it (normalised patches as conv filters, the identity-kernel fusion over the reshaped
  score matrix, softmax, ``conv_transpose2d``), with mmagic's two conventions as switches;
* :func:`official_layers` / :func:`fabricate`: the layer names and shapes of mmagic's DeepFill v1 / v2 files
  (``DeepFillEncoderDecoder``: ``DeepFillEncoder``, ``GLDilationNeck``, ``ContextualAttentionNeck``,
  ``DeepFillDecoder``, ``SimpleGatedConvModule``; ``MultiLayerDiscriminator`` / ``DeepFillv1Discriminators``)
  and of nipponjo's ``model/networks.py`` ``Generator`` / ``Discriminator``, read from that code;
* :func:`reference_forward`: the official forward on such a state dict (BGR for mmagic, reflect padding,
  5-channel refinement input, gated output layers; RGB, zero padding and the TF attention for the port).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reference_attention(f, b, mask, rate=2, ksize=3, fuse_k=3, scale=10.0, masked_softmax=False,
                        normalize_overlap=False):
    """Contextual attention, one image at a time (same-size foreground and background)."""
    outputs = []
    for i in range(f.shape[0]):
        bi, fi = b[i:i + 1], f[i:i + 1]
        c, h, w = bi.shape[1:]
        raw = F.unfold(bi, 2 * rate, stride=rate, padding=rate // 2)  # 1 x C*k*k x L
        raw = raw.view(c, 2 * rate, 2 * rate, -1).permute(3, 0, 1, 2)  # L x C x k x k
        fs = F.interpolate(fi, scale_factor=1 / rate, mode="nearest")
        bs = F.interpolate(bi, scale_factor=1 / rate, mode="nearest")
        hs, ws = bs.shape[2:]
        wi = F.unfold(bs, ksize, padding=ksize // 2).view(c, ksize, ksize, -1).permute(3, 0, 1, 2)
        wi = wi / wi.pow(2).sum(dim=[1, 2, 3], keepdim=True).sqrt().clamp_min(1e-4)
        yi = F.conv2d(fs, wi, padding=ksize // 2)  # 1 x L x hs x ws
        if fuse_k > 1:
            eye = torch.eye(fuse_k, dtype=f.dtype).view(1, 1, fuse_k, fuse_k)
            yi = yi.view(1, 1, hs * ws, hs * ws)
            yi = F.conv2d(yi, eye, padding=fuse_k // 2)
            yi = yi.contiguous().view(1, hs, ws, hs, ws).permute(0, 2, 1, 4, 3)
            yi = yi.contiguous().view(1, 1, hs * ws, hs * ws)
            yi = F.conv2d(yi, eye, padding=fuse_k // 2)
            yi = yi.contiguous().view(1, ws, hs, ws, hs).permute(0, 2, 1, 4, 3).contiguous()
        yi = yi.view(1, hs * ws, hs, ws)
        mi = F.interpolate(mask[i:i + 1], scale_factor=1 / rate, mode="nearest")
        m = F.unfold(mi, ksize, padding=ksize // 2)  # 1 x k*k x L
        mm = (m.mean(dim=1) == 0).float().view(1, -1, 1, 1)  # 1 = available
        if masked_softmax:
            yi = yi.masked_fill(mm == 0, float("-inf"))
            yi = F.softmax(yi * scale, dim=1)
        else:
            yi = F.softmax(yi * mm * scale, dim=1) * mm
        out = F.conv_transpose2d(yi, raw, stride=rate, padding=rate // 2)
        if normalize_overlap:
            ones = torch.ones(1, 1, hs, ws, dtype=f.dtype)
            overlap = F.conv_transpose2d(ones, torch.ones(1, 1, 2 * rate, 2 * rate, dtype=f.dtype), stride=rate,
                                         padding=rate // 2)
            out = out / overlap
        else:
            out = out / 4.0
        outputs.append(out)
    return torch.cat(outputs)


# ---------------------------------------------------------------------------------------------
# layer lists: (official name, in channels, out channels (after gating), kernel, stride, dilation, activation,
# gated, upsample before)


def _mmagic(gated):
    f = 0.75 if gated else 1.0

    def ch(values):
        return [int(v * f) for v in values]

    layers = []

    def encoder(prefix, c_in, widths, last_act="elu"):
        for i, (c, k, s) in enumerate(zip(widths, [5, 3, 3, 3, 3, 3], [1, 2, 1, 2, 1, 1], strict=True)):
            layers.append((f"{prefix}.enc{i + 1}", c_in, c, k, s, 1, "elu" if i < 5 else last_act, gated, False))
            c_in = c

    def neck(prefix, c):
        for i in range(4):
            layers.append((f"{prefix}.dilation_convs.{i}", c, c, 3, 1, 2 ** (i + 1), "elu", gated, False))

    def decoder(prefix, c_in, widths):
        widths = widths[:-1] + [3]
        for i, c in enumerate(widths):
            act = "none" if i == 6 else "elu"
            # mmagic's dec7 is gated too in v2 (feat_act_cfg None); upsampling after dec2 and dec4
            layers.append((f"{prefix}.dec{i + 1}", c_in, c, 3, 1, 1, act, gated, i in (2, 4)))
            c_in = c

    encoder("stage1.encoder", 5, ch([32, 64, 64, 128, 128, 128]))
    neck("stage1.dilation_neck", ch([128])[0])
    decoder("stage1.decoder", ch([128])[0], ch([128, 128, 64, 64, 32, 16, 3]))
    encoder("stage2.encoder_conv", 5, ch([32, 32, 64, 64, 128, 128]))
    neck("stage2.dilation_neck", ch([128])[0])
    encoder("stage2.encoder_attention", 5, ch([32, 32, 64, 128, 128, 128]))
    c = ch([128])[0]
    layers.append(("stage2.contextual_attention_neck.conv1", c, c, 3, 1, 1, "elu", gated, False))
    layers.append(("stage2.contextual_attention_neck.conv2", c, c, 3, 1, 1, "elu", gated, False))
    # base_deepfillv2.py gives the refinement decoder no channel_factor: 128, 128, 64, ... from 192 channels
    decoder("stage2.decoder", 2 * c, [128, 128, 64, 64, 32, 16, 3])
    return layers


def _port(cnum=48, cnum_in=5):
    layers = []

    def add(name, c_in, c_out, k=3, s=1, d=1, act="elu", gated=True, up=False):
        layers.append((name, c_in, c_out, k, s, d, act, gated, up))

    add("stage1.conv1", cnum_in, cnum // 2, 5)
    add("stage1.down_block1.conv1_downsample", cnum // 2, cnum, s=2)
    add("stage1.down_block1.conv2", cnum, cnum)
    add("stage1.down_block2.conv1_downsample", cnum, 2 * cnum, s=2)
    add("stage1.down_block2.conv2", 2 * cnum, 2 * cnum)
    add("stage1.conv_bn1", 2 * cnum, 2 * cnum)
    for i, rate in enumerate((2, 4, 8, 16)):
        add(f"stage1.conv_bn{i + 2}", 2 * cnum, 2 * cnum, d=rate)
    add("stage1.conv_bn6", 2 * cnum, 2 * cnum)
    add("stage1.conv_bn7", 2 * cnum, 2 * cnum)
    add("stage1.up_block1.conv1_upsample.conv", 2 * cnum, cnum, up=True)
    add("stage1.up_block1.conv2", cnum, cnum)
    add("stage1.up_block2.conv1_upsample.conv", cnum, cnum // 2, up=True)
    add("stage1.up_block2.conv2", cnum // 2, cnum // 4)
    add("stage1.conv_to_rgb", cnum // 4, 3, act="none", gated=False)
    add("stage2.conv_conv1", 3, cnum // 2, 5)
    add("stage2.conv_down_block1.conv1_downsample", cnum // 2, cnum // 2, s=2)
    add("stage2.conv_down_block1.conv2", cnum // 2, cnum)
    add("stage2.conv_down_block2.conv1_downsample", cnum, cnum, s=2)
    add("stage2.conv_down_block2.conv2", cnum, 2 * cnum)
    add("stage2.conv_conv_bn1", 2 * cnum, 2 * cnum)
    for i, rate in enumerate((2, 4, 8, 16)):
        add(f"stage2.conv_conv_bn{i + 2}", 2 * cnum, 2 * cnum, d=rate)
    add("stage2.ca_conv1", 3, cnum // 2, 5)
    add("stage2.ca_down_block1.conv1_downsample", cnum // 2, cnum // 2, s=2)
    add("stage2.ca_down_block1.conv2", cnum // 2, cnum)
    add("stage2.ca_down_block2.conv1_downsample", cnum, 2 * cnum, s=2)
    add("stage2.ca_down_block2.conv2", 2 * cnum, 2 * cnum)
    add("stage2.ca_conv_bn1", 2 * cnum, 2 * cnum, act="relu")
    add("stage2.ca_conv_bn4", 2 * cnum, 2 * cnum)
    add("stage2.ca_conv_bn5", 2 * cnum, 2 * cnum)
    add("stage2.conv_bn6", 4 * cnum, 2 * cnum)
    add("stage2.conv_bn7", 2 * cnum, 2 * cnum)
    add("stage2.up_block1.conv1_upsample.conv", 2 * cnum, cnum, up=True)
    add("stage2.up_block1.conv2", cnum, cnum)
    add("stage2.up_block2.conv1_upsample.conv", cnum, cnum // 2, up=True)
    add("stage2.up_block2.conv2", cnum // 2, cnum // 4)
    add("stage2.conv_to_rgb", cnum // 4, 3, act="none", gated=False)
    return layers


def official_layers(variant):
    """The generator layers of ``mmagic-v1``, ``mmagic-v2`` or ``port``, in forward order."""
    return {"mmagic-v1": lambda: _mmagic(False), "mmagic-v2": lambda: _mmagic(True), "port": _port}[variant]()


def _suffix(variant, gated):
    if variant == "port":
        return "conv."
    return "conv.conv." if gated else "conv."


def fabricate(variant, seed=0):
    """The generator state dict of ``variant`` (official names and shapes) with random values, and its extras."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, c_in, c_out, k, _, _, _, gated, _ in official_layers(variant):
        filters = 2 * c_out if gated else c_out
        bound = 1 / (c_in * k * k) ** 0.5
        weight = (torch.rand(filters, c_in, k, k, generator=g) * 2 - 1) * bound
        state[f"{name}.{_suffix(variant, gated)}weight"] = weight
        state[f"{name}.{_suffix(variant, gated)}bias"] = (torch.rand(filters, generator=g) * 2 - 1) * bound
    eye = torch.eye(3).view(1, 1, 3, 3)
    if variant == "port":
        state["stage2.contextual_attention.fuse_weight"] = eye
    else:
        state["stage2.contextual_attention_neck.contextual_attention.fuse_kernel"] = eye
    return state


def mmagic_discriminator(variant, seed=1):
    """``disc.*`` keys of mmagic's files (training-only, to be dropped by the import)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    if variant == "mmagic-v1":
        for which, widths, fc in (("global_disc", (64, 128, 256, 256), 256 * 16 * 16),
                                  ("local_disc", (64, 128, 256, 512), 512 * 8 * 8)):
            c_in = 3
            for i, c in enumerate(widths):
                state[f"disc.{which}.conv{i + 1}.conv.weight"] = torch.randn(c, c_in, 5, 5, generator=g)
                state[f"disc.{which}.conv{i + 1}.conv.bias"] = torch.randn(c, generator=g)
                c_in = c
            state[f"disc.{which}.fc.linear.weight"] = torch.randn(1, fc, generator=g)
            state[f"disc.{which}.fc.linear.bias"] = torch.randn(1, generator=g)
    else:
        c_in = 4
        for i, c in enumerate((64, 128, 256, 256, 256, 256)):
            prefix = f"disc.conv{i + 1}.conv."
            state[prefix + "weight_orig"] = torch.randn(c, c_in, 5, 5, generator=g)
            state[prefix + "weight_u"] = torch.randn(c, generator=g)
            state[prefix + "weight_v"] = torch.randn(c_in * 25, generator=g)
            state[prefix + "bias"] = torch.randn(c, generator=g)
            c_in = c
    return state


def _layer(state, variant, spec, x, padding):
    name, _, c_out, k, stride, dilation, act, gated, up = spec
    if up:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
    prefix = f"{name}.{_suffix(variant, gated)}"
    pad = dilation * (k - 1) // 2
    if padding == "reflect":  # mmcv ConvModule: a ReflectionPad2d, then the conv without padding
        x = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), state[prefix + "weight"], state[prefix + "bias"], stride,
                     0, dilation)
    else:
        x = F.conv2d(x, state[prefix + "weight"], state[prefix + "bias"], stride, pad, dilation)
    if gated:
        x, gate = x.split(c_out, dim=1)
    x = {"elu": F.elu, "relu": F.relu, "none": lambda t: t}[act](x)
    return x * torch.sigmoid(gate) if gated else x


def reference_forward(variant, state, image, mask):
    """The official generator's second-stage output for RGB ``image`` in [0, 1]; returns RGB in [0, 1]."""
    mmagic = variant.startswith("mmagic")
    padding = "reflect" if mmagic else "zeros"
    layers = official_layers(variant)
    x = image * 2 - 1
    if mmagic:
        x = x.flip(1)  # LoadImageFromFile(channel_order='bgr')
    x = x * (1 - mask)  # GetMaskedImage(zero_value=127.5) then (x - 127.5) / 127.5: holes are 0
    ones = torch.ones_like(mask)
    out_act = torch.tanh if variant != "mmagic-v1" else (lambda t: t.clamp(-1, 1))

    def run(prefix, h):
        for spec in layers:
            if spec[0].startswith(prefix):
                h = _layer(state, variant, spec, h, padding)
        return h

    if mmagic:
        coarse = out_act(run("stage1.", torch.cat([x, ones, mask], 1)))
        stage2 = torch.cat([coarse * mask + x * (1 - mask), ones, mask], 1)
        conv_x = run("stage2.dilation_neck", run("stage2.encoder_conv", stage2))
        att = run("stage2.encoder_attention", stage2)
        small = F.interpolate(mask, size=att.shape[-2:])
        att = reference_attention(att, att, small, masked_softmax=True, normalize_overlap=True)
        att = run("stage2.contextual_attention_neck", att)
        out = out_act(run("stage2.decoder", torch.cat([conv_x, att], 1)))
        out = out.flip(1)
    else:
        stage1 = [s for s in layers if s[0].startswith("stage1.")]
        h = torch.cat([x, ones, ones * mask], 1)
        for spec in stage1:
            h = _layer(state, variant, spec, h, padding)
        coarse = torch.tanh(h)
        xnow = coarse * mask + x * (1 - mask)
        conv_names = [s for s in layers if s[0].startswith(("stage2.conv_conv", "stage2.conv_down"))]
        ca_names = [s for s in layers if s[0].startswith("stage2.ca_")]
        rest = [s for s in layers if s[0].startswith(("stage2.conv_bn", "stage2.up_", "stage2.conv_to"))]
        h = xnow
        for spec in conv_names:
            h = _layer(state, variant, spec, h, padding)
        a = xnow
        for spec in ca_names[:6]:
            a = _layer(state, variant, spec, a, padding)
        small = F.interpolate(mask, scale_factor=1 / 8, mode="nearest")  # ContextualAttention(n_down=2, rate=2)
        a = reference_attention(a, a, F.interpolate(small, scale_factor=2, mode="nearest"))
        for spec in ca_names[6:]:
            a = _layer(state, variant, spec, a, padding)
        h = torch.cat([h, a], 1)
        for spec in rest:
            h = _layer(state, variant, spec, h, padding)
        out = torch.tanh(h)
    return (out + 1) / 2
