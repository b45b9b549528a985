"""Seeing masks: preview grids with area histograms, and the generated masks/README.md."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._io import atomic_write, remove_stale_partials
from .difficulty import AXES, difficulty
from .generators import count_holes, touches_border
from .levels import LADDER, LADDER_V1, NVIDIA_BINS, PRESETS, SWEEPS, draw_masks, resolve_spec
from .reference import QUANTILES, REFERENCES, AreaDistribution, measure
from .spec import MASK_FAMILIES, MaskSpec


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(name: str, spec: MaskSpec, masks: np.ndarray, path: Path, columns: int = 8) -> Path:
    plt = _pyplot()
    areas = masks.reshape(len(masks), -1).mean(axis=1)
    fig = plt.figure(figsize=(columns * 1.1, 4.2))
    grid = fig.add_gridspec(3, columns, height_ratios=[1, 1, 1.3])
    for i in range(min(2 * columns, len(masks))):
        ax = fig.add_subplot(grid[i // columns, i % columns])
        ax.imshow(1 - masks[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")  # holes black
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[2, :])
    ax.hist(areas * 100, bins=np.linspace(0, 100, 51), color="#4c72b0")
    ax.axvspan(spec.area[0] * 100, spec.area[1] * 100, color="#dd8452", alpha=0.2, label="spec range")
    ax.set_xlabel("hole area (%)")
    ax.set_ylabel("masks")
    ax.legend(loc="upper right", fontsize=8)
    holes = f"{spec.holes[0]}-{spec.holes[1]}" if spec.holes[1] < 10**6 else f">= {spec.holes[0]}"
    fig.suptitle(f"{name}: {spec.family}, area {spec.area[0]:.0%}-{spec.area[1]:.0%}, holes {holes}, "
                 f"{spec.location}; {len(masks)} masks at {masks.shape[-1]}px, mean area {areas.mean():.1%}",
                 fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    plt.close(fig)
    return path


def preview_masks(levels: list[str], out: str | Path = "masks/previews", size: int = 256, count: int = 200,
                  seed: int = 0, columns: int = 8) -> list[Path]:
    """Write ``<out>/<level>.png`` for each level or preset: two rows of masks and the area histogram.

    Args:
        levels: level or preset names.
        out: output folder.
        size: mask resolution.
        count: masks drawn for the histogram (the first ``2 * columns`` are shown).
        seed: seed of the drawn masks.
        columns: masks per row.

    Returns:
        The written PNG paths.

    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out)  # the figures of a run killed mid-write
    return [_figure(level, resolve_spec(level), draw_masks(level, max(count, 2 * columns), size=size, seed=seed)[:, 0],
                    out / f"{level}.png", columns) for level in levels]


def mask_statistics(name: str, masks: np.ndarray) -> dict[str, object]:
    """Measured statistics of a set of masks (N x H x W, 1 = hole).

    ``depth`` and ``context`` are the ladder's graded axes (masks/difficulty.py): the mean distance from a hole
    pixel to the nearest known pixel as a fraction of the side (thin strokes are shallow, a large box is deep),
    and the mean share of known pixels in the quarter-side window around a hole pixel (what is left to copy from).
    """
    axes = difficulty(masks)
    holes = np.array([count_holes(m) for m in masks])
    border = np.array([touches_border(m) for m in masks])
    return {"name": name, "mean area": axes["area"].mean(), "min area": axes["area"].min(),
            "max area": axes["area"].max(), "mean holes": holes.mean(), "min holes": holes.min(),
            "max holes": holes.max(), "touch border": border.mean(), "depth": float(np.nanmean(axes["depth"])),
            "context": float(np.nanmean(axes["context"]))}


def graded(values: list[float], harder: str = "higher") -> bool:
    """Whether a level-by-level sequence gets harder at every step (rises, or falls for ``harder="lower"``)."""
    steps = np.diff(np.asarray(values, dtype=float))
    return bool(np.all(steps > 0) if harder == "higher" else np.all(steps < 0))


METHODS_BEGIN, METHODS_END = "<!-- ladder-methods:begin -->", "<!-- ladder-methods:end -->"


def methods_block(path: str | Path) -> list[str]:
    """The methods-per-level table that benchmarks/ladder.py wrote into ``path``, with its markers.

    The markers stay in masks/README.md, so that benchmarks/ladder.py refreshes the table there too
    (:func:`replace_methods_block`) without redrawing every spec.
    """
    path = Path(path)
    text = path.read_text() if path.is_file() else ""
    if METHODS_BEGIN not in text or METHODS_END not in text:
        body = [f"(No measured table yet: run `python benchmarks/ladder.py`, which writes {path}.)"]
    else:
        body = _trimmed(text.split(METHODS_BEGIN, 1)[1].split(METHODS_END, 1)[0].splitlines())
    return [METHODS_BEGIN, *body, METHODS_END]


def _trimmed(lines: list[str]) -> list[str]:
    """``lines`` without blank lines at either end (both writers of the block give the same bytes)."""
    return "\n".join(lines).strip("\n").splitlines()


def replace_methods_block(path: str | Path, block: list[str]) -> bool:
    """Replace the methods table between the markers of ``path`` by ``block`` (with its markers); False if absent."""
    path = Path(path)
    text = path.read_text() if path.is_file() else ""
    if METHODS_BEGIN not in text or METHODS_END not in text:
        return False
    head, rest = text.split(METHODS_BEGIN, 1)
    block = [block[0], *_trimmed(block[1:-1]), block[-1]]
    atomic_write(path, lambda tmp: tmp.write_text(head + "\n".join(block) + rest.split(METHODS_END, 1)[1]))
    return True


def ladder_section(seed: int = 0, count: int = 1000, sizes: tuple[int, ...] = (64, 256),
                   methods: str | Path = "benchmarks/results/ladder.md") -> list[str]:
    """The README's ladder section: the graded axes of both ladders at each size, and the methods' errors."""
    from tabulate import tabulate

    def axes_table(ladder: dict[str, MaskSpec]) -> tuple[str, dict[str, bool]]:
        measured = {size: [mask_statistics(name, draw_masks(name, count, size=size, seed=seed)[:, 0])
                           for name in ladder] for size in sizes}
        body = [[name, f"{ladder[name].version}",
                 *[f"{measured[size][i][axis]:.{1 if axis == 'depth' else 0}%}" if axis != "context"
                   else f"{measured[size][i][axis]:.2f}" for axis in ("mean area", "depth", "context")
                   for size in sizes]]
                for i, name in enumerate(ladder)]
        headers = ["level", "version", *[f"{label} at {size}" for label in ("area", "depth", "context")
                                         for size in sizes]]
        ok = {axis: all(graded([r[key] for r in measured[size]], "lower" if axis == "context" else "higher")
                        for size in sizes)
              for axis, key in (("area", "mean area"), ("depth", "depth"), ("context", "context"))}
        return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ok

    table, ok = axes_table(LADDER)
    table_v1, ok_v1 = axes_table(LADDER_V1)

    def verdict(flags: dict[str, bool]) -> str:
        return (f"area rises **{'yes' if flags['area'] else 'no'}**, depth rises **{'yes' if flags['depth'] else 'no'}"
                f"**, context falls **{'yes' if flags['context'] else 'no'}**")

    sizes_text = " and ".join(f"{s}x{s}" for s in sizes)
    return [
        "## The ladder",
        "",
        "L1-L6 grade three axes together, and each level is at least as hard as the one before on every one of "
        "them (masks/difficulty.py measures them on the masks themselves):",
        "",
        *[f"- **{axis}**: {text}." for axis, text in AXES.items()],
        "",
        "The area ranges do not overlap; the depth rises with the stroke width and then with compact shapes "
        "(thin strokes inside the image, wider strokes, thick strokes with boxes, boxes with blobs, blobs, one or "
        "two large blobs on the border); the context falls with both and at the border. Resolution and classes "
        "are separate axes that suites combine with the ladder. The levels' drawing version (2) is in their "
        "frozen sets' names (`L1-v2-64px-n128-seed0`) and set.json, so sets of the first ladder are never "
        "taken for these.",
        "",
        f"Each level drawn {count:,} times at {sizes_text} (seed {seed}), means over masks; depth is a fraction "
        "of the side (at 64 px a 2-px stroke is already 1/64 = 1.6% deep, so thin strokes read deeper there):",
        "",
        table,
        "",
        f"At every step from L1 to L6, at every size: {verdict(ok)}.",
        "",
        "### Each method's error per level",
        "",
        "Measured by `benchmarks/ladder.py` (its full output, with the paired step-by-step differences, is "
        "[benchmarks/results/ladder.md](../benchmarks/results/ladder.md)):",
        "",
        *methods_block(methods),
        "",
        "### The first ladder (version 1), for old results",
        "",
        "The ladder before issue 22 stays registered as `L1-v1` ... `L6-v1` (the same masks as then, frozen sets "
        "named `L1-v1-...`), so results made with it can be read and repeated. Its area rose at every step but "
        "its depth did not: L3's thin strokes are shallower than L1's centred box, so it was harder only for "
        "mean fill, while biharmonic's PSNR rose from L1 to L3.",
        "",
        table_v1,
        "",
        f"At every step from L1-v1 to L6-v1: {verdict(ok_v1)}.",
        "",
    ]


def _distribution_cells(d: AreaDistribution) -> list[str]:
    return [f"{d.size}", f"{d.count:,}", f"{d.mean:.4f}", f"{d.std:.4f}", *[f"{q:.4f}" for q in d.quantiles],
            f"{d.components:.2f}"]


def lama_protocol(spec: MaskSpec) -> str:
    """How a lama preset draws: LaMa's evaluation on a square or a photo, or its training masks."""
    aspect = spec.param("aspect", 1.0)
    if spec.area[1] >= 1.0:
        return "training: one draw on the square crop, no area cut"
    canvas = "square image" if aspect == 1.0 else f"photo {aspect:.3g}:1 at short side {spec.size}, square crop"
    return f"evaluation, {canvas}, <= {spec.area[1]:.0%} kept"


def fidelity_section(seed: int = 0, count: int = 2000, size: int = 256) -> list[str]:
    """The side-by-side tables of the paper presets against the papers' own generators (markdown lines)."""
    from tabulate import tabulate

    from .sets import area_bin

    headers = ["preset", "drawn by", "size", "masks", "mean", "std", *[f"q{round(q * 100)}" for q in QUANTILES],
               "components"]
    rows: dict[str, list[list[str]]] = {"lama": [], "deepfill": []}
    for name, reference in REFERENCES.items():
        ours = measure(draw_masks(name, count, size=reference.size, seed=seed)[:, 0])
        family = resolve_spec(name).family
        rows[family].append([name, "official code", *_distribution_cells(reference)])
        rows[family].append(["", f"inpaintbench v{resolve_spec(name).version}", *_distribution_cells(ours)])
    protocols = tabulate([[name, lama_protocol(spec), str(spec.version)] for name, spec in PRESETS.items()
                          if spec.family == "lama"], headers=["preset", "protocol", "version"], tablefmt="github")
    nvidia = []
    for k, (lo, hi) in enumerate(NVIDIA_BINS):
        masks = draw_masks(f"nvidia-bin{k + 1}", count, size=size, seed=seed)[:, 0]
        areas = masks.reshape(len(masks), -1).mean(axis=1)
        inside = np.mean([area_bin(a) == k + 1 for a in areas])
        border = np.mean([touches_border(m) for m in masks])
        nvidia.append([f"nvidia-bin{k + 1}", f"({lo:.0%}, {hi:.0%}]", "2,000 (1,000 with border, 1,000 without)",
                       f"{areas.mean():.4f}", f"{areas.std():.4f}",
                       *[f"{q:.4f}" for q in np.quantile(areas, QUANTILES)], f"{inside:.1%}", f"{border:.0%}"])

    def table(body: list[list[str]]) -> str:
        return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)

    return [
        "## Fidelity to the papers' generators",
        "",
        f"Each paper preset drawn {count:,} times (seed {seed}, at {size}x{size} unless said) beside the "
        "distribution of the "
        "official generator, measured by running the official code (`inpaintbench.masks.reference` says how; "
        "`benchmarks/mask_fidelity.py` repeats it from checkouts of the official repositories). Hole area is "
        f"the fraction of the image; components are 8-connected holes. Between draws of 2,000 masks the mean "
        "varies by 0.001-0.005 and most quantiles by 0.001-0.01; medium's q25 lies in the gap between its box "
        "masks (23% of them, small) and its stroke masks and jumps by 0.023, and the training masks' q95 (a "
        "flat tail) by 0.010. Fed the same random stream, the LaMa and DeepFill "
        "drawers give byte-identical masks to the official code "
        "([benchmarks/results/mask_fidelity.md](../benchmarks/results/mask_fidelity.md)).",
        "",
        "### LaMa",
        "",
        "LaMa draws its strokes with `cv2.line(mask, p0, p1, 1, thickness)`: a stroke thickness + 1 px wide for "
        "an even thickness and thickness + 2 for an odd one, with round caps at both ends, between end points "
        "truncated to int and clipped to [0, size]; its generator passes `max_times + 1` to `randint(min_times, "
        "max_times + 1)`, so the stroke count reaches max_times + 1, and `bbox_max_size + 1` as the exclusive "
        "bound of the box sides. inpaintbench draws with `cv2.line` too (OpenCV is a dependency for this: a "
        "Pillow line of the same width covers 1.2-1.47x less on these strokes, which made version 1 of thin "
        "and medium draw 3.8 points less hole area than LaMa). LaMa's evaluation sets draw 5 variants per "
        "image, drop those over 50% and keep one at random; inpaintbench redraws until a mask is at most 50%. "
        "A uniform pick among independent survivors is a draw from the distribution cut at 50%, so the kept "
        "masks have the same distribution; only an image whose 5 variants all fail (0.35^5 = 0.5% for thick) "
        "gets no mask in LaMa's set and one here. LaMa draws on the image resized to short side 256 and then "
        "crops the square, which shrinks the areas on non-square photos: the `-4x3` presets do that on a 4:3 "
        "photo (a MaskSpec with `params={..., \"aspect\": width / height}` does it for another shape); on a "
        "square image the crop is the whole image.",
        "",
        protocols,
        "",
        table(rows["lama"]),
        "",
        "### DeepFill v2",
        "",
        "`brush_stroke_mask` (inpaint_ops.py): 1-3 strokes of 4-11 segments, turns of 2π/5 -+ U(0, 2π/15) "
        "mirrored on even segments, segment lengths N(r, r // 2) clipped to [0, 2r] with r = diagonal / 8, "
        "vertices truncated to int and clipped to [0, size], one Pillow polyline of width int(U(12, 40)) and a "
        "disc of width // 2 radius at every vertex. Its random flips are discarded by the official code "
        "(`transpose` returns a copy), so none is applied. Version 1 rounded instead of truncating, drew a "
        "disc of the full width at each joint, scaled lengths by r / 2 and flipped.",
        "",
        table(rows["deepfill"]),
        "",
        "### NVIDIA irregular masks",
        "",
        "Published: 12,000 test masks at 512x512, six hole-area bins (lo, hi] of 2,000 each, 1,000 \"with "
        "border\" and 1,000 \"no border\" (files 00000-11999 in that order). The distribution inside a bin "
        "is not published, and the masks are not downloadable here, so only the bins can be compared: the "
        "synthetic `nvidia-bin*` presets below are steered to a uniform area inside their bin. Their ranges are "
        "closed, so a mask of exactly 50% (a whole number of pixels at 256 and 512) would be accepted by "
        "nvidia-bin6 though NVIDIA's bins put it in bin 5; the \"in the bin\" column counts the masks inside "
        "the published bin. They touch the border far more often than NVIDIA's \"no border\" half can (if "
        "that label means what it says, at most half of each published bin touches it); the "
        "`area-*-interior` sweeps are the no-border counterpart. "
        "`inpaintbench masks import test_mask.zip --holes white --size 256` brings in the real "
        "ones (state the polarity of your copy): on NVIDIA's file layout the manifest gets each file's "
        "published bin and border label (`nvidia_bin`, `nvidia_border`, from its number) next to `area_bin`, "
        "the bin of its measured area after the nearest-neighbour resize, which can differ near the bin edges.",
        "",
        tabulate(nvidia, headers=["preset", "published bin", "published masks", "mean", "std",
                                  *[f"q{round(q * 100)}" for q in QUANTILES], "in the bin", "touch border"],
                 tablefmt="github", disable_numparse=True),
        "",
    ]


def write_masks_readme(out: str | Path = "masks", size: int = 256, count: int = 1000, seed: int = 0,
                       methods: str | Path = "benchmarks/results/ladder.md") -> Path:
    """Generate ``<out>/README.md`` and ``<out>/previews/*.png`` for every level, preset and sweep.

    Each spec is drawn ``count`` times at ``size`` and measured; the ladder is measured at 64 and 256 on its graded
    axes, and the table of each method's error per level is taken from ``methods`` (written by
    benchmarks/ladder.py, which trains and evaluates; this only reads it).
    """
    from tabulate import tabulate

    out = Path(out)
    previews = out / "previews"
    previews.mkdir(parents=True, exist_ok=True)
    for folder in (out, previews):
        remove_stale_partials(folder)  # the figures and README of a run killed mid-write
    groups = {"ladder": {**LADDER, **LADDER_V1}, "presets": PRESETS, "sweeps": SWEEPS}
    stats: dict[str, list[dict[str, object]]] = {g: [] for g in groups}
    for group, specs in groups.items():
        for name, spec in specs.items():
            masks = draw_masks(name, count, size=size, seed=seed)[:, 0]
            row = mask_statistics(name, masks)
            row["spec"] = spec
            stats[group].append(row)
            _figure(name, spec, masks, previews / f"{name}.png")

    def table(rows: list[dict[str, object]]) -> str:
        body = []
        for r in rows:
            spec = r["spec"]
            holes = f"{spec.holes[0]}-{spec.holes[1]}" if spec.holes[1] < 10**6 else f">= {spec.holes[0]}"
            body.append([f"[{r['name']}](previews/{r['name']}.png)", spec.family,
                         f"{spec.area[0]:.0%}-{spec.area[1]:.0%}", holes, spec.location,
                         f"{r['mean area']:.1%}", f"{r['min area']:.1%}-{r['max area']:.1%}",
                         f"{r['mean holes']:.1f} ({r['min holes']}-{r['max holes']})", f"{r['touch border']:.0%}",
                         f"{r['depth']:.1%}", f"{r['context']:.2f}"])
        headers = ["name", "family", "spec area", "spec holes", "location", "mean area", "area range",
                   "holes: mean (range)", "touch border", "depth", "context"]
        return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)

    families = tabulate([[f.name, "yes" if f.steered else "no (paper algorithm, redrawn until inside)",
                          f.description] for f in (MASK_FAMILIES.get(n) for n in MASK_FAMILIES)],
                        headers=["family", "steered to the area", "shapes"], tablefmt="github")
    lines = [
        "# masks/",
        "",
        "<!-- generated by `inpaintbench masks readme`; do not edit -->",
        "",
        "Every level, preset and sweep that inpaintbench registers, each drawn "
        f"{count:,} times at {size}x{size} (seed {seed}) and measured: the area ratio, the connected holes "
        "(8-connectivity), the share of masks touching the border, and the ladder's graded axes depth and "
        "context (defined below). Each name links to its preview: two "
        "rows of masks (holes black) and the histogram of hole areas against the spec's range. Every mask "
        "lies inside its spec (the test suite checks 1,000 per spec at 256).",
        "",
        "Frozen evaluation sets go below `masks/sets/` (git-ignored): `inpaintbench masks make NAME --size 256 "
        "--count 1000 --seed 0` writes `NNNNNN.png` (255 = hole), `manifest.parquet` (index, area ratio, "
        "components, border contact, sha256) and `set.json`. The same arguments give the same bytes on any "
        "number of workers. `inpaintbench masks import DIR_OR_ZIP --holes white|black` brings in an external "
        "set such as NVIDIA's irregular test masks.",
        "",
        *ladder_section(seed, count, methods=methods),
        f"The specs of both ladders, drawn {count:,} times at {size}x{size}:",
        "",
        table(stats["ladder"]),
        "",
        "## Paper presets",
        "",
        "`lama-*-256`, `lama-*-512`: LaMa's fixed evaluation generators "
        "(configs/data_gen/random_{thin,medium,thick}_{256,512}) with their parameters, masks over 50% dropped "
        "as LaMa does, on a square image; `lama-*-256-4x3`: the same drawn as LaMa's evaluation does on a 4:3 "
        "photo (resized to short side 256, then square-cropped); `lama-train-256`, `lama-train-thin-256`: "
        "LaMa's training masks (Big-LaMa's abl-04-256-mh-dist and the DeepFill-like abl-02-thin-bb). "
        "`deepfillv2-ff`: DeepFill v2's free-form brush strokes as published. `center-box`: the centred square "
        "of half the side (Context Encoder, GLCIC). `nvidia-bin1..6`: synthetic irregular masks (blobs and "
        "strokes) in NVIDIA's six area bins; they are not NVIDIA's masks: import those with "
        "`inpaintbench masks import`. Each preset's drawing version is in its frozen sets' folder names "
        "(`NAME-v2-256px-...` from version 2 on) and set.json, so a set drawn by an older version is never "
        "taken for a new one (the harness's run ids hash the masks themselves).",
        "",
        table(stats["presets"]),
        "",
        *fidelity_section(seed),
        "## Single-axis sweeps",
        "",
        "One axis varies, the others stay fixed: `area-*` (NVIDIA's bins, touching the border or kept 2 px "
        "away from it), `holes-*` (1 / 2-3 / 4-8 blobs at a total area of 20-30%), `shape-*` (box / stroke / "
        "blob at 20-30%), `loc-*` (centre / interior / border / side at 20-30%), and `lines-every-4` (every "
        "4th row or column, NTIRE style).",
        "",
        table(stats["sweeps"]),
        "",
        "## Shape families",
        "",
        families,
        "",
    ]
    readme = out / "README.md"
    tmp = readme.with_name("README.md.partial")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, readme)
    return readme
