"""inpaintbench: image-inpainting datasets, graded masks, models and reproducible benchmarks.

The public API::

    import inpaintbench as ib
    ib.list_models("*"); ib.create_model(name, **overrides)
    ib.list_levels(); ib.make_masks(level_or_spec, n, size=None, seed=0)  # torch uint8 N x 1 x H x W, 1 = hole
    ib.build_dataset(source, out, **options); ib.open_dataset(path, split)
    ib.metrics.psnr(pred, target, mask=None); ib.metrics.ssim(pred, target)
    ib.metrics.lpips(pred, target); ib.metrics.fid(pred, real); ib.metrics.kid(pred, real)  # tensors or folders
    ib.run_suite(path, resume=True); ib.write_report(results, out)
    ib.import_checkpoint(model, file, layout=None); ib.list_checkpoints(); ib.load_stored(name)
    ib.inpaint(image, mask, model=..., checkpoint=None, guide=None)    # one photo, any size
    ib.replace_object(image, mask, reference, sketch=None, checkpoint=...)  # EdgeConnect + borrowed edges
    ib.serve(port=7860, host="127.0.0.1")   # the web page: paint a hole, pick a model, compare (extra [serve])
"""

__version__ = "0.1.0"

from ._registry import InpaintbenchError

# The public API, imported on first use (PEP 562): `inpaintbench data build` then starts without loading
# torch, which costs seconds of CPU that the scraper and builders do not need.
_LAZY = {
    # the subpackages, so that the README's dotted paths (ib.datasets.read_info) work after `import inpaintbench`
    **{package: (package, None) for package in ("apps", "benchmarks", "datasets", "masks", "models", "reports")},
    "metrics": ("benchmarks.metrics", None),
    "inpaint": ("apps", "inpaint"),
    "run_suite": ("bench", "run_suite"),
    "evaluate_checkpoint": ("benchmarks", "evaluate_checkpoint"),
    "build_dataset": ("datasets", "build_dataset"),
    "open_dataset": ("datasets", "open_dataset"),
    "run_demo": ("demo", "run_demo"),
    "MaskSpec": ("masks", "MaskSpec"),
    "import_masks": ("masks", "import_masks"),
    "list_levels": ("masks", "list_levels"),
    "make_mask_set": ("masks", "make_mask_set"),
    "make_masks": ("masks", "make_masks"),
    "preview_masks": ("masks", "preview_masks"),
    "write_masks_readme": ("masks", "write_masks_readme"),
    "create_model": ("models", "create_model"),
    "import_checkpoint": ("models", "import_checkpoint"),
    "list_checkpoints": ("models", "list_checkpoints"),
    "load_stored": ("models", "load_stored"),
    "list_models": ("models", "list_models"),
    "train_model": ("models", "train_model"),
    "replace_object": ("apps", "replace_object"),
    "serve": ("apps.serve", "serve"),
    "write_report": ("reports", "write_report"),
}


def __getattr__(name: str):
    """Import a public name on first use."""
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'inpaintbench' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["InpaintbenchError", *sorted(_LAZY)]
