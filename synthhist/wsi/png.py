"""Lossless RGB PNG encoding for tiles: PNG 'Up' filter in numpy + libdeflate (imagecodecs) for the zlib stream.

Measured on tissue tiles (bench/tiling.py): about 4x faster than Pillow's encoder at zlib level 1, for files
within 0-10% of its size (libpng's own encoder at level 1 was 1.3x faster; Huffman-only deflate was 3x
faster, but made unresized tiles 70% larger). The file is a plain 8-bit RGB PNG (IHDR, one IDAT, IEND)
that every decoder reads (https://www.w3.org/TR/png/).
"""

from __future__ import annotations

import struct
import zlib

import imagecodecs
import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILTER_UP = 2   # each byte minus the byte above it (the first row: minus 0)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(rgb: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of a uint8 [h, w, 3] image (lossless), deflated by libdeflate at `level`."""
    h, w, c = rgb.shape
    if rgb.dtype != np.uint8 or c != 3:
        raise ValueError(f"encode_png needs uint8 [h, w, 3], got {rgb.dtype} {rgb.shape}")
    rows = np.ascontiguousarray(rgb).reshape(h, w * 3)
    scan = np.empty((h, w * 3 + 1), np.uint8)   # [h, 1 + 3w]: filter byte, then filtered row
    scan[:, 0] = FILTER_UP
    scan[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=scan[1:, 1:])   # wraps mod 256, as the filter wants
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)   # 8-bit RGB, deflate, adaptive, no interlace
    idat = imagecodecs.deflate_encode(scan.tobytes(), level=level)   # a zlib stream (header, adler32)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", bytes(idat)) + _chunk(b"IEND", b"")
