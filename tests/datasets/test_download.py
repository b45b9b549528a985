"""Downloads against a local HTTP server: resume after a dropped connection, md5 and HTML refusals."""

import hashlib
import http.server
import threading

import pytest

from inpaintbench._registry import InpaintbenchError
from inpaintbench.datasets.download import download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves /archive.tar with Range support; /flaky.tar drops the first connection half-way; /quota.tar is HTML."""

    calls: list[str] = []

    def log_message(self, *args):
        """Keep the test server's request log out of the test output."""

    def do_GET(self):  # noqa: N802
        _Handler.calls.append(f"{self.path} {self.headers.get('Range', '')}")
        if self.path == "/quota.tar":
            body = b"<!DOCTYPE html><html><body>Google Drive - Quota exceeded</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/flaky.tar" and start == 0:
            self.wfile.write(body[: len(body) // 3])  # then the connection drops
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Handler.calls = []
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_interrupted_transfer_resumes_with_a_range_request(server, tmp_path):
    path = download(f"{server}/flaky.tar", tmp_path / "a.tar", md5=MD5)
    assert path.read_bytes() == PAYLOAD and not (tmp_path / "a.tar.partial").exists()
    assert _Handler.calls[0] == "/flaky.tar " and _Handler.calls[1].startswith("/flaky.tar bytes=")


def test_a_partial_file_left_by_a_killed_run_is_resumed(server, tmp_path):
    (tmp_path / "a.tar.partial").write_bytes(PAYLOAD[:1000])
    download(f"{server}/archive.tar", tmp_path / "a.tar", md5=MD5)
    assert (tmp_path / "a.tar").read_bytes() == PAYLOAD and _Handler.calls == ["/archive.tar bytes=1000-"]


def test_wrong_checksum_is_refused_and_nothing_is_left(server, tmp_path):
    with pytest.raises(InpaintbenchError, match="fails its md5 check"):
        download(f"{server}/archive.tar", tmp_path / "a.tar", md5="0" * 32)
    assert not list(tmp_path.iterdir())


def test_html_page_is_refused(server, tmp_path):
    with pytest.raises(InpaintbenchError, match="HTML page instead of img_align_celeba.zip"):
        download(f"{server}/quota.tar", tmp_path / "img_align_celeba.zip")
    assert not list(tmp_path.iterdir())


def test_existing_verified_file_is_not_downloaded_again(server, tmp_path):
    (tmp_path / "a.tar").write_bytes(PAYLOAD)
    download(f"{server}/archive.tar", tmp_path / "a.tar", md5=MD5)
    assert _Handler.calls == []
