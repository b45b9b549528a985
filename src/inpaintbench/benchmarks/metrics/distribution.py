"""FID and KID through torch-fidelity (inception-v3-compat, 2048 pool features), from uint8 images."""

from __future__ import annotations

from pathlib import Path

import torch

from ..._weights import locate, sha256

# A FID on fewer images than feature dimensions has a rank-deficient covariance: not comparable to papers.
FID_MIN_COMPARABLE = 2048


class _Uint8Images(torch.utils.data.Dataset):
    """A torch-fidelity input: items are 3 x H x W uint8 tensors."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def fid_kid(fake: torch.Tensor, real: torch.Tensor, weights_dir: str | Path | None = None, verify: bool = True,
            real_cache_name: str | None = None, kid_subset_size: int = 1000, kid_subsets: int = 100) -> dict:
    """FID and KID of uint8 ``fake`` against uint8 ``real`` images (N x 3 x H x W).

    torch-fidelity resizes to 299 with its TensorFlow-1 compatible bilinear filter. KID's subset size is
    never larger than the sets. With ``real_cache_name``, the real images' features are cached by
    torch-fidelity under that name (callers make it unique per dataset, split, size and weights).

    Returns:
        ``fid``, ``kid``, ``kid_std``, ``n_fake``, ``n_real`` and ``comparable`` (False below 2,048 images).

    Raises:
        WeightsUnavailable: the Inception file is missing or fails its checksum.

    """
    import torch_fidelity

    path = locate("inception", weights_dir, verify)
    # torch-fidelity unpickles the file (weights_only=False); loading it first with weights_only=True
    # proves that it holds nothing but tensors.
    torch.load(path, map_location="cpu", weights_only=True)
    subset = min(kid_subset_size, len(fake), len(real))
    result = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(fake), input2=_Uint8Images(real), fid=True, kid=True, cuda=torch.cuda.is_available(),
        feature_extractor_weights_path=str(path), kid_subset_size=subset, kid_subsets=kid_subsets,
        verbose=False, save_cpu_ram=True, cache=real_cache_name is not None, input2_cache_name=real_cache_name)
    return {"fid": float(result["frechet_inception_distance"]),
            "kid": float(result["kernel_inception_distance_mean"]),
            "kid_std": float(result["kernel_inception_distance_std"]),
            "n_fake": len(fake), "n_real": len(real), "comparable": min(len(fake), len(real)) >= FID_MIN_COMPARABLE}


def weights_tag(weights_dir: str | Path | None = None, verify: bool = True) -> str:
    """A short tag of the Inception file's content, for cache names."""
    return sha256(locate("inception", weights_dir, verify))[:8]


@torch.no_grad()
def inception_features(images: torch.Tensor, weights_dir: str | Path | None = None, verify: bool = True,
                       batch_size: int = 64) -> torch.Tensor:
    """torch-fidelity's inception-v3-compat 2048-d pool features of uint8 images (N x 3 x H x W)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = locate("inception", weights_dir, verify)
    torch.load(path, map_location="cpu", weights_only=True)  # proves the file holds only tensors
    extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    extractor.to(device)
    return torch.cat([extractor(images[i:i + batch_size].to(device))[0].double().cpu()
                      for i in range(0, len(images), batch_size)])


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
