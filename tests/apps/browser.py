"""Driving the `inpaintbench serve` page in headless Chromium (Debian's chromium + chromium-driver, Selenium).

Used by tests/apps/test_serve.py and docs/serve_screenshot.py. `browser_missing()` says why no browser can be
driven here (None when one can), so that the test skips with that reason on a machine without Chromium.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)
# as the machine notes give them: no background traffic (the network is closed), a fresh profile each time
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1700")


def _first(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if Path(p).exists()), None)


def browser_missing() -> str | None:
    """Why the page cannot be driven here (missing package, browser or driver), or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    try:
        import gradio  # noqa: F401
    except ImportError:
        return "gradio is not installed (pip install -e '.[test]' or '.[serve]')"
    if _first(CHROMIUM) is None:
        return "no Chromium at /usr/bin/chromium (apt-get install chromium chromium-driver)"
    if _first(CHROMEDRIVER) is None:
        return "no ChromeDriver at /usr/bin/chromedriver (apt-get install chromium-driver)"
    return None


class Page:
    """The served page in a headless Chromium, with the few gestures the tests need."""

    def __init__(self, url: str, timeout: float = 30.0):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.url, self.timeout = url, timeout
        self.profile = tempfile.mkdtemp(prefix="inpaintbench-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = _first(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(_first(CHROMEDRIVER)), options=options)
        self.driver.get(url)
        self.wait_status("chelsea")  # the page loads its first bundled photo

    def close(self) -> None:
        """Quit the browser and remove its profile."""
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # ------------------------------------------------------------------ reading

    def find(self, css: str):
        """The first element matching ``css``."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def status(self) -> str:
        """The text of the status line under the Run button."""
        return self.find("#status").text

    def wait(self, condition, what: str, timeout: float | None = None):
        """Poll ``condition()`` until it is truthy; fail naming ``what`` and the status line."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            try:
                value = condition()
            except Exception:  # an element between renders
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; status: {self.status()!r}")

    def wait_status(self, text: str, timeout: float | None = None) -> str:
        """Wait until the status line contains ``text``; return it."""
        return self.wait(lambda: text in self.status() and self.status(), f"status {text!r}", timeout)

    def toasts(self) -> list[str]:
        """The texts of the notifications on screen."""
        from selenium.webdriver.common.by import By

        return [t.text for t in self.driver.find_elements(By.CSS_SELECTOR, ".toast-body")]

    def dismiss_toasts(self) -> None:
        """Close the notifications (they cover the top right of the page for 10 s)."""
        from selenium.webdriver.common.by import By

        for button in self.driver.find_elements(By.CSS_SELECTOR, "[data-testid='toast-close']"):
            button.click()
        self.wait(lambda: not self.toasts(), "the notifications to close")

    def image(self, elem_id: str, previous: str | None = None) -> tuple[np.ndarray, str]:
        """The picture shown by image component ``elem_id`` (fetched from the server), and its address.

        Args:
            elem_id: the component's id.
            previous: an address shown before: wait for another one.

        """
        def source():
            src = self.find(f"#{elem_id} img").get_attribute("src")
            return src if src and src != previous else None

        src = self.wait(source, f"a new picture in #{elem_id}")
        with urllib.request.urlopen(src, timeout=self.timeout) as response:
            return np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB")), src

    # ------------------------------------------------------------------ gestures

    def click(self, elem_id: str) -> None:
        """Click the button ``elem_id``."""
        self.find(f"#{elem_id}").click()

    def upload(self, elem_id: str, path: str | Path) -> None:
        """Give file ``path`` to the upload component ``elem_id``."""
        self.wait(lambda: self.find(f"#{elem_id} input[type=file]"), f"the file input of #{elem_id}")
        self.find(f"#{elem_id} input[type=file]").send_keys(str(Path(path).resolve()))

    def choose(self, elem_id: str, label_start: str) -> None:
        """Pick the option of dropdown ``elem_id`` whose label starts with ``label_start``."""
        box = self.find(f"#{elem_id} input")
        box.click()
        listbox = box.get_attribute("aria-controls")
        option = self.wait(lambda: next(o for o in self.driver.find_elements("css selector", f"#{listbox} li")
                                        if (o.get_attribute("aria-label") or "").startswith(label_start)),
                           f"option {label_start!r} of #{elem_id}")
        option.click()
        self.wait(lambda: box.get_attribute("value").startswith(label_start), f"{label_start!r} chosen")

    def paint_stroke(self, elem_id: str = "editor", start: tuple[int, int] = (-90, 0),
                     end: tuple[int, int] = (90, 0)) -> None:
        """Drag the brush from ``start`` to ``end`` (offsets in screen pixels from the canvas's centre)."""
        from selenium.webdriver.common.action_chains import ActionChains

        self.find(f"#{elem_id} button[aria-label='Brush']").click()
        canvas = self.driver.find_elements("css selector", f"#{elem_id} canvas")[-1]
        steps = 2
        chain = ActionChains(self.driver).move_to_element_with_offset(canvas, *start).click_and_hold()
        for i in range(1, steps + 1):
            x = round(start[0] + (end[0] - start[0]) * i / steps)
            y = round(start[1] + (end[1] - start[1]) * i / steps)
            chain = chain.move_to_element_with_offset(canvas, x, y)
        chain.release().perform()

    def screenshot(self, path: str | Path) -> Path:
        """Save the whole page as PNG."""
        for _ in range(3):  # the page reflows at the new size
            height, chrome = self.driver.execute_script(
                "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
            self.driver.set_window_size(1400, max(900, int(height) + int(chrome) + 20))
            time.sleep(0.5)
        self.driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
        time.sleep(0.3)
        self.driver.save_screenshot(str(path))
        return Path(path)
