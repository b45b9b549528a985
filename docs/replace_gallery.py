"""Regenerate docs/gallery/: object replacements on scikit-image's bundled photos (see docs/replace.md).

    python docs/replace_gallery.py --checkpoint RUN

Each example writes ``<name>.png``, the panel of ``inpaintbench replace`` (the photo with its hole, the reference,
the composite edge map, the result), and, for the first, the plain EdgeConnect result for comparison.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw
from skimage.transform import resize

import inpaintbench as ib
from inpaintbench.apps import load_model, replace_object
from inpaintbench.apps.images import write_image
from inpaintbench.models.edges import canny_edges, gray_image

OUT = Path(__file__).parent / "gallery"


def photo(name: str, height: int) -> np.ndarray:
    """A bundled photo resized to ``height`` (aspect kept), uint8."""
    image = getattr(skimage.data, name)()
    width = round(image.shape[1] * height / image.shape[0])
    return (resize(image, (height, width), anti_aliasing=True) * 255).round().astype(np.uint8)


def edges_of(image: np.ndarray) -> np.ndarray:
    """Canny's edges as EdgeConnect computes them (sigma 2), bool."""
    import torch

    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return canny_edges(gray_image(x), 2.0)[0, 0].numpy() > 0.5


def box(shape: tuple[int, int], top: int, left: int, height: int, width: int) -> np.ndarray:
    """A rectangular hole."""
    hole = np.zeros(shape, bool)
    hole[top:top + height, left:left + width] = True
    return hole


def main() -> None:
    """Write the gallery."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    args = parser.parse_args()
    model = load_model(checkpoint=args.checkpoint, device="cpu")
    OUT.mkdir(parents=True, exist_ok=True)

    # 1. the photo as its own reference: the hole's own edges come back (and plain EdgeConnect for comparison)
    cat = photo("chelsea", 128)
    hole = box(cat.shape[:2], 30, 95, 36, 44)  # the cat's left eye
    write_image(replace_object(cat, hole, cat, model=model).panel, OUT / "own-reference.png")
    plain = ib.inpaint(cat, hole, model=model)
    write_image(np.concatenate([np.where(hole[..., None], 255, cat).astype(np.uint8), plain], axis=1),
                OUT / "own-reference-plain.png")

    # 2. a traced sketch (the cat's eyes and nose) puts the cat's face where the astronaut's was
    astronaut = photo("astronaut", 160)
    small_cat = photo("chelsea", 90)
    hole = box(astronaut.shape[:2], 22, 50, 40, 64)
    sketch = np.zeros(astronaut.shape[:2], np.uint8)
    sketch[22:62, 50:114] = edges_of(small_cat)[24:64, 38:102] * 255
    write_image(replace_object(astronaut, hole, small_cat, sketch=sketch, model=model).panel, OUT / "sketch-cat.png")

    # 3. a hand-drawn ellipse puts the coffee cup on the cat's back
    coffee = photo("coffee", 128)
    hole = box(cat.shape[:2], 4, 10, 56, 72)
    drawing = Image.new("L", cat.shape[1::-1], 0)
    ImageDraw.Draw(drawing).ellipse((20, 14, 72, 40), outline=255)
    write_image(replace_object(cat, hole, coffee, sketch=np.asarray(drawing), model=model).panel,
                OUT / "sketch-cup.png")
    for path in sorted(OUT.glob("*.png")):
        print(path, Image.open(path).size)


if __name__ == "__main__":
    main()
