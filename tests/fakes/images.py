"""Image files that attack a decoder, built in memory."""

import io
import zlib

from PIL import Image


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's header).

    Over twice Pillow's pixel limit (about 179 million), ``Image.open`` raises DecompressionBombError, which is
    no OSError; between our own 64-million limit and that, the file opens and our guard must refuse it.
    """
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)
