"""An independent statement of advimman/lama's FFCResNetGenerator for the layout tests: keys, shapes, forward.

Written from saicinpainting/training/modules/ffc.py (FFC, FFC_BN_ACT, SpectralTransform, FourierUnit,
FFCResnetBlock, FFCResNetGenerator) with the big-lama / ffc_resnet_075 kwargs (ratio_gin = ratio_gout = 0.75 in
the blocks, 0 before, enable_lfu off, BatchNorm + ReLU, reflect padding). The state dict is what
``generator.state_dict()`` gives, index by index of ``self.model``; the forward reads that dict directly
(functional ops, eval-mode BatchNorm), following the official code's layout conventions step by step.
"""

import torch
import torch.nn.functional as F

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix, c):
    return {f"{prefix}.{k}": (c,) if k != "num_batches_tracked" else () for k in BN_KEYS}


def _ffc_bn_act(prefix, c_in, c_out, k, r_in, r_out):
    """Key -> shape of one FFC_BN_ACT (official module names)."""
    in_g, out_g = int(c_in * r_in), int(c_out * r_out)
    in_l, out_l = c_in - in_g, c_out - out_g
    shapes = {}
    if in_l and out_l:
        shapes[f"{prefix}.ffc.convl2l.weight"] = (out_l, in_l, k, k)
    if in_l and out_g:
        shapes[f"{prefix}.ffc.convl2g.weight"] = (out_g, in_l, k, k)
    if in_g and out_l:
        shapes[f"{prefix}.ffc.convg2l.weight"] = (out_l, in_g, k, k)
    if in_g and out_g:
        g = f"{prefix}.ffc.convg2g"
        shapes[f"{g}.conv1.0.weight"] = (out_g // 2, in_g, 1, 1)
        shapes.update(_bn(f"{g}.conv1.1", out_g // 2))
        shapes[f"{g}.fu.conv_layer.weight"] = (out_g, out_g, 1, 1)  # 2 * (out_g // 2) both ways
        shapes.update(_bn(f"{g}.fu.bn", out_g))
        shapes[f"{g}.conv2.weight"] = (out_g, out_g // 2, 1, 1)
    if r_out != 1:
        shapes.update(_bn(f"{prefix}.bn_l", out_l))
    if r_out != 0:
        shapes.update(_bn(f"{prefix}.bn_g", out_g))
    return shapes


def generator_shapes(n_blocks, ngf=64, ratio=0.75):
    """Key -> shape of ``FFCResNetGenerator(4, 3, ngf, 3, n_blocks, ...)`` as in big-lama.yaml."""
    shapes = _ffc_bn_act("model.1", 4, ngf, 7, 0, 0)
    for i in range(3):
        c = ngf * 2**i
        shapes.update(_ffc_bn_act(f"model.{2 + i}", c, 2 * c, 3, 0, ratio if i == 2 else 0))
    c = ngf * 8
    for b in range(n_blocks):
        for conv in ("conv1", "conv2"):
            shapes.update(_ffc_bn_act(f"model.{5 + b}.{conv}", c, c, 3, ratio, ratio))
    index = 5 + n_blocks + 1  # after ConcatTupleLayer
    for _ in range(3):
        shapes[f"model.{index}.weight"] = (c, c // 2, 3, 3)  # ConvTranspose2d: in x out
        shapes[f"model.{index}.bias"] = (c // 2,)
        shapes.update(_bn(f"model.{index + 1}", c // 2))
        index += 3
        c //= 2
    shapes[f"model.{index + 1}.weight"] = (3, ngf, 7, 7)  # after ReflectionPad2d(3)
    shapes[f"model.{index + 1}.bias"] = (3,)
    return shapes


def random_state(shapes, seed=0):
    """Random values for every key: small weights, positive variances, integer batch counters."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = torch.randn(shape, generator=g) * 0.1
        elif len(shape) == 1:  # BatchNorm weight
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) / fan_in**0.5
    return state


def _batchnorm(sd, prefix, x):
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"],
                        sd[f"{prefix}.bias"], False, 0.0, 1e-5)


def _fourier_unit(sd, prefix, x):
    batch = x.shape[0]
    ffted = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
    ffted = torch.stack((ffted.real, ffted.imag), dim=-1)
    ffted = ffted.permute(0, 1, 4, 2, 3).contiguous()
    ffted = ffted.view((batch, -1) + ffted.size()[3:])
    ffted = F.relu(_batchnorm(sd, f"{prefix}.bn", F.conv2d(ffted, sd[f"{prefix}.conv_layer.weight"])))
    ffted = ffted.view((batch, -1, 2) + ffted.size()[2:]).permute(0, 1, 3, 4, 2).contiguous()
    ffted = torch.complex(ffted[..., 0], ffted[..., 1])
    return torch.fft.irfftn(ffted, s=x.shape[-2:], dim=(-2, -1), norm="ortho")


def _spectral(sd, prefix, x):
    x = F.relu(_batchnorm(sd, f"{prefix}.conv1.1", F.conv2d(x, sd[f"{prefix}.conv1.0.weight"])))
    return F.conv2d(x + _fourier_unit(sd, f"{prefix}.fu", x), sd[f"{prefix}.conv2.weight"])


def _ffc_bn_act_forward(sd, prefix, x_l, x_g, stride=1, padding=0):
    def conv(name, x):
        key = f"{prefix}.ffc.{name}.weight"
        if key not in sd or x is None:
            return 0
        if padding:
            x = F.pad(x, (padding,) * 4, mode="reflect")
        return F.conv2d(x, sd[key], stride=stride)

    out_l = conv("convl2l", x_l) + conv("convg2l", x_g)
    g2g = f"{prefix}.ffc.convg2g.conv1.0.weight"
    out_g = conv("convl2g", x_l) + (_spectral(sd, f"{prefix}.ffc.convg2g", x_g) if g2g in sd else 0)
    out_l = F.relu(_batchnorm(sd, f"{prefix}.bn_l", out_l)) if f"{prefix}.bn_l.weight" in sd else None
    out_g = F.relu(_batchnorm(sd, f"{prefix}.bn_g", out_g)) if f"{prefix}.bn_g.weight" in sd else None
    return out_l, out_g


def generator_forward(sd, x, n_blocks):
    """The official generator's output for a 4-channel input (eval mode), straight from its state dict."""
    x_l, x_g = _ffc_bn_act_forward(sd, "model.1", F.pad(x, (3,) * 4, mode="reflect"), None)
    for i in range(3):
        x_l, x_g = _ffc_bn_act_forward(sd, f"model.{2 + i}", x_l, x_g, stride=2, padding=1)
    for b in range(n_blocks):
        id_l, id_g = x_l, x_g
        x_l, x_g = _ffc_bn_act_forward(sd, f"model.{5 + b}.conv1", x_l, x_g, padding=1)
        x_l, x_g = _ffc_bn_act_forward(sd, f"model.{5 + b}.conv2", x_l, x_g, padding=1)
        x_l, x_g = id_l + x_l, id_g + x_g
    h = torch.cat([x_l, x_g], dim=1) if x_g is not None else x_l
    index = 5 + n_blocks + 1
    for _ in range(3):
        h = F.conv_transpose2d(h, sd[f"model.{index}.weight"], sd[f"model.{index}.bias"], stride=2, padding=1,
                               output_padding=1)
        h = F.relu(_batchnorm(sd, f"model.{index + 1}", h))
        index += 3
    h = F.conv2d(F.pad(h, (3,) * 4, mode="reflect"), sd[f"model.{index + 1}.weight"], sd[f"model.{index + 1}.bias"])
    return torch.sigmoid(h)


def discriminator_shapes(ndf=64, n_layers=4):
    """Key -> shape of pix2pixHD's NLayerDiscriminator(3, ndf, n_layers) (model0 ... model{n_layers + 1})."""
    shapes = {"model0.0.weight": (ndf, 3, 4, 4), "model0.0.bias": (ndf,)}
    nf = ndf
    for n in range(1, n_layers + 1):
        prev, nf = nf, min(nf * 2, 512)
        shapes[f"model{n}.0.weight"] = (nf, prev, 4, 4)
        shapes[f"model{n}.0.bias"] = (nf,)
        shapes.update(_bn(f"model{n}.1", nf))
    shapes[f"model{n_layers + 1}.0.weight"] = (1, nf, 4, 4)
    shapes[f"model{n_layers + 1}.0.bias"] = (1,)
    return shapes
