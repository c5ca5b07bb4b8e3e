"""CRC32C (Castagnoli), as TFRecord framing needs it: google-crc32c (hardware CRC instructions where present)."""

from __future__ import annotations

import google_crc32c

MASK_DELTA = 0xA282EAD8


def crc32c(data: bytes) -> int:
    """Standard CRC32C of data (init and final XOR 0xFFFFFFFF)."""
    return google_crc32c.value(data)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C: rotate right by 15 bits and add a constant (mod 2^32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF
