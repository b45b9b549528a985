"""inpaintbench: image-inpainting datasets, graded masks, models and reproducible benchmarks.

The public API::

    import inpaintbench as ib
    ib.list_models("*"); ib.create_model(name, **overrides)
    ib.list_levels(); ib.make_masks(level_or_spec, n, size=None, seed=0)
    ib.build_dataset(source, out, **options); ib.open_dataset(path, split)
    ib.metrics.psnr(pred, target, mask=None); ib.metrics.ssim(pred, target)
    ib.run_suite(path, resume=True); ib.write_report(results, out)
"""

__version__ = "0.1.0"

from ._registry import InpaintbenchError
from .benchmarks import metrics, run_suite
from .datasets import build_dataset, open_dataset
from .demo import run_demo
from .masks import MaskSpec, import_masks, list_levels, make_mask_set, make_masks, preview_masks, write_masks_readme
from .models import create_model, list_models, train_model
from .reports import write_report

__all__ = ["InpaintbenchError", "MaskSpec", "build_dataset", "create_model", "import_masks", "list_levels",
           "list_models", "make_mask_set", "make_masks", "metrics", "open_dataset", "preview_masks", "run_demo",
           "run_suite", "train_model", "write_masks_readme", "write_report"]
