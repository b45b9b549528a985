"""The command line: ``inpaintbench <stage> <verb>``. Each command calls one public function."""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import click

import inpaintbench as ib

from ._registry import InpaintbenchError


def _options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs; values are read as JSON when they parse (numbers, lists, booleans), else as text."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InpaintbenchError(f"option {pair!r} must be KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@click.version_option(ib.__version__, prog_name="inpaintbench")
def cli(debug: bool) -> None:
    """inpaintbench: inpainting datasets, masks, models and benchmarks."""


@cli.command()
@click.option("--suite", default="benchmarks/demo.toml", show_default=True, help="Demo suite file.")
@click.option("--no-resume", is_flag=True, help="Recompute every run.")
def demo(suite: str, no_resume: bool) -> None:
    """Build the sample dataset if missing, then run the demo benchmark into reports/demo/."""
    click.echo(f"report: {ib.run_demo(suite, resume=not no_resume)}")


@cli.group()
def data() -> None:
    """Build and inspect datasets."""


@data.command("build")
@click.argument("source")
@click.option("--out", type=click.Path(file_okay=False), help="Dataset folder [default: datasets/<source>].")
@click.option("--size", type=int, help="Image side in pixels.")
@click.option("--seed", type=int, help="Seed of the build's random choices.")
@click.option("--format", "image_format", type=click.Choice(["jpg", "png"]), help="Image member format.")
@click.option("--source", "files", type=click.Path(), help="Folder of the official files (celeba, places2) or of "
              "the images (folder).")
@click.option("--list", "list_file", type=click.Path(dir_okay=False),
              help="File naming the images to take, in order, e.g. LaMa's val_shuffled.flist (folder).")
@click.option("--split", help="Split the images form [default: test] (folder).")
@click.option("--limit", type=int, help="Keep the first N images of each split (celeba, folder).")
@click.option("--download", is_flag=True, default=None, help="Fetch the official files into --source first (celeba).")
@click.option("--categories", help="Comma-separated categories to keep, e.g. a/airfield,b/beach (places2).")
@click.option("--per-class", type=int,
              help="Images per class (inat); at most N training images per category (places2).")
@click.option("--val-per-class", type=int,
              help="Training images per category held out as the val split [default: 10] (places2).")
@click.option("--workers", type=int, help="Decoding processes (threads for inat).")
@click.option("--recipe", type=click.Path(),
              help="Recipe TOML [default: datasets/inat-cats-dogs-birds.toml] (inat).")
@click.option("--api-url", help="iNaturalist API root, e.g. a local test server (inat).")
@click.option("--limit-per-class", type=int, help="List at most N observations per class (inat).")
@click.option("--contact", help="Your e-mail or URL, sent in the User-Agent (inat).")
@click.option("--concurrency", type=int, help="Photo downloads in flight (inat).")
def data_build(source: str, out: str | None, size: int | None, seed: int | None, image_format: str | None,
               files: str | None, limit: int | None, download: bool | None, categories: str | None,
               per_class: int | None, workers: int | None, recipe: str | None, api_url: str | None,
               limit_per_class: int | None, contact: str | None, concurrency: int | None, list_file: str | None,
               split: str | None, val_per_class: int | None) -> None:
    """Build dataset SOURCE (sample, celeba, places2, inat, folder) into webdataset shards.

    --per-class is the images per class for inat, the training images per category for places2.
    """
    options = {k: v for k, v in {"size": size, "seed": seed, "image_format": image_format, "source_dir": files,
                                 "limit": limit, "download": download, "categories": categories,
                                 "per_class": per_class, "workers": workers, "recipe": recipe,
                                 "api_url": api_url, "limit_per_class": limit_per_class, "contact": contact,
                                 "concurrency": concurrency, "list_file": list_file,
                                 "split": split, "val_per_class": val_per_class}.items() if v is not None}
    info = ib.build_dataset(source, out or f"datasets/{source}", **options)
    for name, missing in info.get("shortfall", {}).items():
        click.echo(f"warning: class {name} is {missing} images short: the source ran out", err=True)
    click.echo(json.dumps(info["totals"]))


@data.command("info")
@click.argument("path", type=click.Path())
def data_info(path: str) -> None:
    """Print the dataset.json of the dataset at PATH."""
    from .datasets import read_info

    click.echo(json.dumps(read_info(path), indent=2))


@cli.group()
def masks() -> None:
    """Mask levels, frozen sets and previews."""


@masks.command("levels")
def masks_levels() -> None:
    """List the ladder levels, the paper presets and the sweeps with their specs."""
    from tabulate import tabulate

    from .masks import list_presets, list_sweeps, resolve_spec

    groups = [("ladder", ib.list_levels()), ("ladder v1", ib.list_levels(1)), ("preset", list_presets()),
              ("sweep", list_sweeps())]
    rows = [[name, group, s.family, f"{s.area[0]:.0%}-{s.area[1]:.0%}",
             f"{s.holes[0]}-{s.holes[1]}" if s.holes[1] < 10**6 else f">= {s.holes[0]}", s.location, s.version]
            for group, names in groups for name in names for s in [resolve_spec(name)]]
    click.echo(tabulate(rows, headers=["name", "kind", "shape", "hole area", "holes", "location", "version"],
                        tablefmt="github"))


@masks.command("make")
@click.argument("level")
@click.option("--size", type=int, default=256, show_default=True)
@click.option("--count", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Set folder [default: masks/sets/<name>].")
@click.option("--workers", type=int, default=1, show_default=True)
def masks_make(level: str, size: int, count: int, seed: int, out: str | None, workers: int) -> None:
    """Generate and freeze a mask set of LEVEL (PNG + manifest.parquet)."""
    click.echo(ib.make_mask_set(level, count=count, size=size, seed=seed, out=out, workers=workers))


@masks.command("preview")
@click.argument("levels", nargs=-1)
@click.option("--out", default="masks/previews", show_default=True, type=click.Path(file_okay=False))
@click.option("--size", type=int, default=256, show_default=True)
@click.option("--count", type=int, default=200, show_default=True, help="Masks in the area histogram.")
def masks_preview(levels: tuple[str, ...], out: str, size: int, count: int) -> None:
    """Write a PNG grid with the area histogram for each of LEVELS (default: the whole ladder)."""
    for path in ib.preview_masks(list(levels) or ib.list_levels(), out=out, size=size, count=count):
        click.echo(path)


@masks.command("readme")
@click.option("--out", default="masks", show_default=True, type=click.Path(file_okay=False))
@click.option("--size", type=int, default=256, show_default=True)
@click.option("--count", type=int, default=1000, show_default=True, help="Masks measured per spec.")
@click.option("--methods", default="benchmarks/results/ladder.md", show_default=True,
              help="The methods-per-level table written by benchmarks/ladder.py.")
def masks_readme(out: str, size: int, count: int, methods: str) -> None:
    """Regenerate masks/README.md: every level, preset and sweep with previews and measured statistics."""
    click.echo(ib.write_masks_readme(out=out, size=size, count=count, methods=methods))


@masks.command("import")
@click.argument("source", type=click.Path())
@click.option("--holes", required=True, type=click.Choice(["white", "black"]), help="Polarity of the source masks.")
@click.option("--size", type=int, help="Resize (nearest neighbour) to SIZE x SIZE.")
@click.option("--out", type=click.Path(file_okay=False), help="Set folder [default: masks/sets/imported-...].")
@click.option("--threshold", type=int, default=127, show_default=True, help="Grey level between the classes.")
@click.option("--nvidia-bin", type=int, help="Keep one published NVIDIA area bin (1-6) of test_mask.zip.")
@click.option("--nvidia-border", type=click.Choice(["with", "no"]), help="Keep NVIDIA's 'with' or 'no' border half.")
def masks_import(source: str, holes: str, size: int | None, out: str | None, threshold: int,
                 nvidia_bin: int | None, nvidia_border: str | None) -> None:
    """Import an external mask set (a folder or zip of images) as a frozen set, measured and binned."""
    click.echo(ib.import_masks(source, holes=holes, out=out, size=size, threshold=threshold, nvidia_bin=nvidia_bin,
                               nvidia_border=nvidia_border))


@cli.group()
def models() -> None:
    """The model registry."""


@models.command("list")
@click.argument("pattern", default="*")
def models_list(pattern: str) -> None:
    """List registered models matching PATTERN, with parameter counts."""
    from tabulate import tabulate

    from .models import MODELS, count_parameters
    from .models.base import parameter_breakdown

    rows = [[name, parameter_breakdown(model), f"{count_parameters(model):,}",
             entry.reference_params or "-", "yes" if entry.model_cls.trainable else "no", entry.description,
             entry.paper]
            for name in ib.list_models(pattern) for entry in [MODELS.get(name)] for model in [ib.create_model(name)]]
    click.echo(tabulate(rows, headers=["model", "inference parameters", "all parameters", "published count",
                                       "trainable", "what", "reference"], tablefmt="github"))


@cli.command()
@click.argument("model")
@click.option("--data", "data_path", required=True, type=click.Path(), help="Dataset folder.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder [default: models/checkpoints/...].")
@click.option("--steps", type=int, default=1000, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, help="The generator's learning rate [default: the model's own, else 2e-4]; the "
              "model's other groups keep their ratio to it.")
@click.option("--masks", "mask_levels", default="L1,L2,L3", show_default=True, help="Comma-separated levels.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=-1, show_default=True,
              help="DataLoader workers (-1: one per spare core on CUDA, 0 on CPU).")
@click.option("-O", "--option", "model_options", multiple=True, help="Model option KEY=VALUE (repeatable).")
@click.option("-T", "--train-option", "train_options", multiple=True,
              help="Other TrainConfig option KEY=VALUE, e.g. accumulate=2, ema=0.999, compile=true (repeatable).")
def train(model: str, data_path: str, out: str | None, steps: int, batch_size: int, lr: float | None,
          mask_levels: str, seed: int, workers: int, model_options: tuple[str, ...],
          train_options: tuple[str, ...]) -> None:
    """Train MODEL on the train split of a shard dataset; resumes from the run folder's checkpoint.

    Under torchrun (torchrun --nproc_per_node N -m inpaintbench.cli train ...) every process trains on its
    part of each batch.
    """
    checkpoint = ib.train_model(model, data_path, out=out, model_options=_options(model_options), steps=steps,
                                batch_size=batch_size, lr=lr, masks=tuple(mask_levels.split(",")), seed=seed,
                                workers=workers, **_options(train_options))
    click.echo(f"checkpoint: {checkpoint}")


@cli.command("eval")
@click.argument("checkpoint")  # a run folder, its model.safetensors or checkpoint.pt, or a stored name
@click.option("--data", "data_path", required=True, type=click.Path(), help="Dataset folder.")
@click.option("--masks", "mask_set", required=True, help="Frozen mask set folder, or a level or preset name.")
@click.option("--split", default="test", show_default=True)
@click.option("--count", type=int, help="At most N images [default: the whole split].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the mask set when --masks is a name.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the per-image metrics to this parquet file.")
def eval_checkpoint(checkpoint: str, data_path: str, mask_set: str, split: str, count: int | None, seed: int,
                    out: str | None) -> None:
    """Evaluate a training run's CHECKPOINT on a frozen mask set and print mean and 95% CI per metric."""
    from tabulate import tabulate

    from .reports.tables import mean_ci

    frame = ib.evaluate_checkpoint(checkpoint, data_path, mask_set, split=split, count=count, seed=seed, out=out)
    metrics = [c for c in frame.columns if c not in ("key", "image", "model", "checkpoint", "mask_set", "area_ratio")]
    rows = [[m, *(f"{v:.4f}" for v in mean_ci(frame[m].to_numpy()))] for m in metrics]
    click.echo(f"{frame['model'].iloc[0]} on {len(frame)} images of {split}, masks {frame['mask_set'].iloc[0]}")
    click.echo(tabulate(rows, headers=["metric", "mean", "95% CI half-width"], tablefmt="github"))


def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)


@cli.command("inpaint")
@click.argument("image", type=click.Path())
@click.option("--mask", required=True, type=click.Path(), help="Mask (white = hole), or a folder named as the photos.")
@click.option("--out", required=True, type=click.Path(), help="Result file (a folder for a folder of photos).")
@click.option("--model", "model_name", help="Registered model [default: the checkpoint's].")
@click.option("--checkpoint", help="Weights: a training run's folder or checkpoint, or a stored checkpoint.")
@click.option("--edges", type=click.Path(), help="EdgeConnect: your edge strokes inside the hole (a file or folder).")
@click.option("--sketch", type=click.Path(), help="DeepFill v2 (sketch channel): your sketch (a file or folder).")
@click.option("--resize", is_flag=True, help="Models of one fixed size: paint the photo resized to it.")
@click.option("--tile", is_flag=True, help="Models of one fixed size: paint the photo in tiles of that size.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
def inpaint_command(image: str, mask: str, out: str, model_name: str | None, checkpoint: str | None,
                    edges: str | None, sketch: str | None, resize: bool, tile: bool, device: str) -> None:
    """Inpaint IMAGE (any size; or every photo of a folder) with a model; known pixels are kept exactly."""
    from .apps import inpaint_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = inpaint_files(image, mask, out, model=model_name, checkpoint=checkpoint, edges=edges,
                                sketch=sketch, resize=resize, tile=tile, device=device)
    _echo_warnings(caught)
    for path in written:
        click.echo(path)


@cli.command("replace")
@click.argument("image", type=click.Path())
@click.option("--mask", required=True, type=click.Path(), help="The object to replace (white = hole).")
@click.option("--reference", required=True, type=click.Path(), help="The image whose object goes in.")
@click.option("--sketch", type=click.Path(), help="Your strokes placing the object [default: the mask's box].")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Result; <stem>-edges.png and <stem>-panel.png are written beside it.")
@click.option("--model", "model_name", default="edgeconnect", show_default=True, help="An EdgeConnect model.")
@click.option("--checkpoint", help="Its weights: a training run's folder or checkpoint, or a stored checkpoint.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
def replace_command(image: str, mask: str, reference: str, sketch: str | None, out: str, model_name: str,
                    checkpoint: str | None, device: str) -> None:
    """Replace the object under the mask by the REFERENCE's: its edges borrowed into the hole, EdgeConnect paints."""
    from .apps import replace_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = replace_files(image, mask, reference, out, sketch=sketch, model=model_name, checkpoint=checkpoint,
                                device=device)
    _echo_warnings(caught)
    for path in written:
        click.echo(path)


@cli.command("serve")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (127.0.0.1: this machine only; 0.0.0.0 shares the page, with a warning).")
@click.option("--store", type=click.Path(file_okay=False), help="Checkpoint store [default: models/checkpoints].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--max-upload-mb", type=float, default=20.0, show_default=True, help="Largest file accepted.")
@click.option("--max-side", type=int, default=4096, show_default=True, help="Most pixels a side of an image.")
def serve_command(port: int, host: str, store: str | None, device: str, max_upload_mb: float, max_side: int) -> None:
    """A local web page: paint a hole on a photo, pick a model (or a stored checkpoint), compare (needs [serve])."""
    ib.serve(port=port, host=host, store=store, device=device, max_upload_mb=max_upload_mb, max_side=max_side)


@cli.command()
@click.argument("suite", type=click.Path())
@click.option("--no-resume", is_flag=True, help="Recompute every run.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder [default: the suite's output].")
@click.option("--weights-dir", type=click.Path(file_okay=False), help="Metric networks [default: torch hub cache].")
@click.option("--wait", is_flag=True, help="If another run holds the output folder, wait for it instead of stopping.")
def bench(suite: str, no_resume: bool, out: str | None, weights_dir: str | None, wait: bool) -> None:
    """Run the benchmark SUITE (a TOML file): train, evaluate on frozen masks, report.

    The output folder is locked while the suite runs; each run is recorded in one atomic step, so a suite
    stopped at any moment (Ctrl-C, SIGKILL, a full disk) resumes with the same command.
    """
    results = ib.run_suite(suite, resume=not no_resume, output=out, weights_dir=weights_dir, wait=wait)
    click.echo(f"results: {results}\nreport: {results.parent / 'README.md'}")


@cli.command()
@click.argument("results", type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), help="Report folder [default: next to RESULTS].")
def report(results: str, out: str | None) -> None:
    """Write the markdown report of a results.parquet file (or of the suite folder holding it)."""
    click.echo(ib.write_report(results, out))


@cli.group()
def weights() -> None:
    """Pretrained files: metric and loss networks (LPIPS, Inception, VGG) and model checkpoints (the store)."""


_WEIGHTS_DIR = click.option("--weights-dir", type=click.Path(file_okay=False),
                            help="Folder of weight files [default: the torch hub cache].")


@weights.command("status")
@_WEIGHTS_DIR
def weights_status(weights_dir: str | None) -> None:
    """Where each network file is looked for, whether it is there and whether its checksum matches."""
    from tabulate import tabulate

    rows = ib.metrics.weights_status(weights_dir)
    click.echo(tabulate([list(r.values()) for r in rows], headers=list(rows[0]), tablefmt="github"))


@weights.command("download")
@click.argument("names", nargs=-1)
@_WEIGHTS_DIR
def weights_download(names: tuple[str, ...], weights_dir: str | None) -> None:
    """Download network files NAMES (default: all) on a connected machine, verifying their checksums."""
    for path in ib.metrics.download_weights(list(names) or None, weights_dir):
        click.echo(path)


@weights.command("import")
@click.argument("file", type=click.Path())
@click.option("--name", help="Which network the file is (default: from its official file name).")
@_WEIGHTS_DIR
def weights_import(file: str, name: str | None, weights_dir: str | None) -> None:
    """Copy a network FILE you brought into the weights folder, after checking its checksum and content."""
    click.echo(ib.metrics.import_weights(file, weights_dir, name))


_STORE = click.option("--store", type=click.Path(file_okay=False),
                       help="Checkpoint store [default: models/checkpoints].")


@weights.command("import-model")
@click.argument("model")
@click.argument("file", type=click.Path())
@click.option("--layout", help="Force a checkpoint layout (see `weights layouts`) [default: detected].")
@click.option("--name", help="Name in the store [default: MODEL-LAYOUT-<sha256 prefix>].")
@click.option("--license", "license_", help="License line of the weights, kept in the model card.")
@_STORE
def weights_import_model(model: str, file: str, layout: str | None, name: str | None, license_: str | None,
                         store: str | None) -> None:
    """Convert an official checkpoint FILE of MODEL (strictly) into the checkpoint store."""
    click.echo(ib.import_checkpoint(model, file, layout=layout, name=name, license=license_, store=store))


@weights.command("list")
@_STORE
def weights_list(store: str | None) -> None:
    """The checkpoints in the store: trained runs and imported official weights."""
    from tabulate import tabulate

    cards = ib.list_checkpoints(store)
    if not cards:
        click.echo("the checkpoint store is empty")
        return
    rows = [[c["name"], c["model"], c.get("source", ""), c.get("layout") or "-", f"{c.get('parameters', 0):,}",
             c.get("license") or "-"] for c in cards]
    click.echo(tabulate(rows, headers=["name", "model", "source", "layout", "parameters", "license"],
                        tablefmt="github"))


@weights.command("layouts")
@click.argument("pattern", default="*")
def weights_layouts(pattern: str) -> None:
    """The official checkpoint layouts each model family imports."""
    from tabulate import tabulate

    from .models.checkpoints import LAYOUTS

    rows = [[key, LAYOUTS.get(key).description, LAYOUTS.get(key).source] for key in LAYOUTS.names(pattern)]
    click.echo(tabulate(rows, headers=["layout", "what", "source"], tablefmt="github"))


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI; user errors end with one line on stderr and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    shown = warnings.formatwarning
    if not debug:  # warnings (a set rebuilt, a run trained again) as one line each, like errors
        warnings.formatwarning = lambda message, category, *rest, **kw: f"warning: {message}\n"
    try:
        result = cli.main(args=args, prog_name="inpaintbench", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as err:
        if debug:
            raise
        click.echo(f"error: {err.format_message()}", err=True)
        return 2
    except InpaintbenchError as err:
        if debug:
            raise
        click.echo(f"error: {err}", err=True)
        return 2
    except Exception as err:  # anything unexpected: one line unless --debug
        if debug:
            raise
        click.echo(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)", err=True)
        return 1
    finally:
        warnings.formatwarning = shown


def run() -> None:
    """Console-script entry point: exits with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
