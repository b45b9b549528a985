"""Regenerate docs/serve.png: the `inpaintbench serve` page after one run, in headless Chromium.

    python docs/serve_screenshot.py [--store STORE] [--model LABEL]

Needs the `serve` extra, Selenium and Debian's chromium + chromium-driver (as tests/apps/test_serve.py). The page
loads scikit-image's coffee photo, a stroke is painted across the cup's middle, the model whose label starts with
LABEL runs (default: telea) with an edge drawn across the hole in the edge view (used by EdgeConnect), and
the whole page is saved.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.apps.browser drives the page

from tests.apps.browser import Page, browser_missing  # noqa: E402

from inpaintbench.apps.serve import serve  # noqa: E402


def main() -> None:
    """Serve, paint, run, screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="checkpoint store [default: models/checkpoints]")
    parser.add_argument("--model", default="telea", help="the start of the model's label in the list")
    parser.add_argument("--out", default=str(ROOT / "docs" / "serve.png"))
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        sys.exit(f"cannot drive a browser here: {missing}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = serve(port=port, store=args.store, device="cpu", block=False)
    browser = Page(page.local_url.rstrip("/"))
    try:
        browser.choose("bundled", "coffee")
        browser.wait_status("coffee")
        browser.paint_stroke(start=(-60, -20), end=(60, -20))
        browser.find("#edge-accordion button.label-wrap").click()
        browser.wait(lambda: browser.find("#edges-button").is_displayed(), "the edge view")
        browser.click("edges-button")
        browser.wait_status("edge view")
        browser.paint_stroke("edge-editor", start=(-50, -26), end=(50, -14))
        browser.choose("model", args.model)
        browser.click("run")
        browser.wait_status(" by ")
        browser.image("result")
        print(browser.screenshot(args.out))
    finally:
        browser.close()
        page.close()


if __name__ == "__main__":
    main()
