"""FID and KID with torch-fidelity's inception-v3-compat (2048 pool features), from uint8 images.

torch-fidelity computes the features and the two metrics; it never unpickles a file of the user's. Its
extractor loads the weights it is given with ``weights_only=False``, so it gets a private copy written here
from the tensors that ``weights_only=True`` read; and its own feature cache (also unpickled) is not used: the
real images' features are cached as safetensors, which hold tensors and nothing else.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..._io import atomic_write
from ..._weights import locate, sha256

# A FID on fewer images than feature dimensions has a rank-deficient covariance (TTUR's README). Above it, a FID
# is still biased by its image count (Chong & Forsyth 2020): compare FIDs only on the same number of images.
FID_MIN_COMPARABLE = 2048
FEATURE_BATCH = 64  # torch-fidelity's default batch


def feature_cache_dir() -> Path:
    """Where the real images' features are cached: ``$TORCH_HOME/inpaintbench-features`` (torch's default home)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "inpaintbench-features"


def _extractor(weights_dir: str | Path | None, verify: bool):
    """torch-fidelity's inception-v3-compat extractor with the Inception weights, never unpickling the user's file."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = locate("inception", weights_dir, verify)
    state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only, or it raises
    with tempfile.TemporaryDirectory(prefix="inpaintbench-inception-") as tmp:  # readable by this user alone
        copy = Path(tmp) / path.name
        torch.save(state, copy)
        extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                feature_extractor_weights_path=str(copy))
    return extractor.to(torch.device("cuda" if torch.cuda.is_available() else "cpu"))


@torch.no_grad()
def _features(images: torch.Tensor, extractor) -> torch.Tensor:
    """The 2048-d float32 pool features of uint8 ``images`` (N x 3 x H x W) on the CPU, as torch-fidelity's own."""
    device = next(extractor.parameters()).device
    return torch.cat([extractor(images[i:i + FEATURE_BATCH].to(device))[0].cpu()
                      for i in range(0, len(images), FEATURE_BATCH)])


def _read_cached(path: Path, count: int) -> torch.Tensor | None:
    """The ``count`` x 2048 float32 features stored at ``path``, or None.

    None stands for a missing, damaged or foreign entry, which the caller recomputes and replaces.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        features = load_file(path)["features"]
    except (SafetensorError, KeyError, OSError):
        return None
    return features if features.shape == (count, 2048) and features.dtype == torch.float32 else None


def _cached_features(images: torch.Tensor, extractor, name: str | None) -> torch.Tensor:
    """``_features`` of ``images``, read from (or written to) the safetensors cache entry ``name`` when given."""
    from safetensors.torch import save_file

    if name is None:
        return _features(images, extractor)
    path = feature_cache_dir() / f"{name}.safetensors"
    features = _read_cached(path, len(images))
    if features is not None:
        return features
    features = _features(images, extractor)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file({"features": features.contiguous()}, str(tmp)), "caching features in")
    return features


def fid_kid(fake: torch.Tensor, real: torch.Tensor, weights_dir: str | Path | None = None, verify: bool = True,
            real_cache_name: str | None = None, kid_subset_size: int = 1000, kid_subsets: int = 100) -> dict:
    """FID and KID of uint8 ``fake`` against uint8 ``real`` images (N x 3 x H x W).

    torch-fidelity resizes to 299 with its TensorFlow-1 compatible bilinear filter. KID's subset size is
    never larger than the sets; when it is a whole set, every subset is that set in another order, so the
    spread over subsets says nothing and ``kid_std`` is NaN. With ``real_cache_name``, the real images'
    features are cached under that name in :func:`feature_cache_dir` (callers make it unique per dataset,
    split, size and weights).

    Returns:
        ``fid``, ``kid``, ``kid_std``, ``n_fake``, ``n_real`` and ``comparable``: the FID's covariance has full
        rank (2,048 images or more), so that it can be set beside a FID on as many images.

    Raises:
        WeightsUnavailable: the Inception file is missing or fails its checksum.

    """
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    extractor = _extractor(weights_dir, verify)
    fake_features = _features(fake, extractor)
    real_features = _cached_features(real, extractor, real_cache_name)
    fid = fid_statistics_to_metric(fid_features_to_statistics(fake_features),
                                   fid_features_to_statistics(real_features), verbose=False)
    subset = min(kid_subset_size, len(fake), len(real))
    kid = kid_features_to_metric(fake_features, real_features, kid_subsets=kid_subsets, kid_subset_size=subset,
                                 verbose=False)
    return {"fid": float(fid["frechet_inception_distance"]),
            "kid": float(kid["kernel_inception_distance_mean"]),
            "kid_std": float(kid["kernel_inception_distance_std"]) if subset < min(len(fake), len(real))
            else float("nan"),
            "n_fake": len(fake), "n_real": len(real), "comparable": min(len(fake), len(real)) >= FID_MIN_COMPARABLE}


def weights_tag(weights_dir: str | Path | None = None, verify: bool = True) -> str:
    """A short tag of the Inception file's content, for cache names."""
    return sha256(locate("inception", weights_dir, verify))[:8]


def inception_features(images: torch.Tensor, weights_dir: str | Path | None = None,
                       verify: bool = True) -> torch.Tensor:
    """torch-fidelity's inception-v3-compat 2048-d pool features of uint8 images (N x 3 x H x W), float64."""
    return _features(images, _extractor(weights_dir, verify)).double()


def paired_ids(fake: torch.Tensor, real: torch.Tensor) -> dict:
    """P-IDS and U-IDS (CoModGAN, Zhao et al. 2021) from paired Inception features (fake i inpaints real i).

    A linear SVM (scikit-learn ``LinearSVC(dual=False)``) is fit to tell real (1) from fake (0) features.
    U-IDS is its misclassification rate on those features; P-IDS is the share of pairs whose fake scores
    more real than its own ground truth. Needs the optional extra ``inpaintbench[ids]``.
    """
    try:
        from sklearn.svm import LinearSVC
    except ImportError:
        from ..._weights import WeightsUnavailable

        raise WeightsUnavailable("P-IDS/U-IDS need scikit-learn: pip install 'inpaintbench[ids]'") from None
    import numpy as np

    real_np, fake_np = real.numpy(), fake.numpy()
    inputs = np.concatenate([real_np, fake_np])
    targets = np.array([1] * len(real_np) + [0] * len(fake_np))
    svm = LinearSVC(dual=False)
    svm.fit(inputs, targets)
    real_out, fake_out = svm.decision_function(real_np), svm.decision_function(fake_np)
    return {"p_ids": float(np.mean(fake_out > real_out)), "u_ids": float(1 - svm.score(inputs, targets))}
