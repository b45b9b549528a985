"""The application layer: what a person runs on their own photos (after models, before nothing).

* :mod:`.images`: reading photos, masks and strokes with one-line errors, writing results atomically;
* :mod:`.inpaint`: :func:`inpaint` (any registered model on one photo of any size) and :func:`inpaint_files`
  (``inpaintbench inpaint``: a photo or a folder);
* :mod:`.replace`: :func:`replace_object` (EdgeConnect + contextual attention: put a reference image's object
  into the hole) and :func:`replace_files` (``inpaintbench replace``).
"""

from .inpaint import inpaint, inpaint_files, load_model
from .replace import Replacement, replace_files, replace_object

__all__ = ["Replacement", "inpaint", "inpaint_files", "load_model", "replace_files", "replace_object"]
