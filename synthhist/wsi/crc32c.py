"""CRC32C (Castagnoli), as TFRecord framing needs it, in numpy (no C extension required).

Long inputs are cut into equal chunks whose CRCs are computed side by side (one numpy step per
4 bytes of a chunk, two 65536-entry tables), then combined left to right by shifting the running CRC over one chunk of
zero bytes (a linear map, applied with four 256-entry tables).
"""

from __future__ import annotations

import functools

import numpy as np

POLY = 0x82F63B78  # reflected Castagnoli polynomial
CHUNK = 256        # bytes per chunk in the vectorised path (multiple of 4)
MASK_DELTA = 0xA282EAD8


@functools.lru_cache(maxsize=None)
def _table8() -> np.ndarray:
    """[256] uint32: CRC register update for one byte."""
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(POLY), t >> 1).astype(np.uint32)
    return t


@functools.lru_cache(maxsize=None)
def _table16() -> np.ndarray:
    """[65536] uint32: CRC register update for two bytes (little-endian uint16)."""
    t8 = _table8()
    v = np.arange(65536, dtype=np.uint32)
    for _ in range(2):
        v = t8[v & 0xFF] ^ (v >> 8)
    return v


@functools.lru_cache(maxsize=None)
def _table32lo() -> np.ndarray:
    """[65536] uint32: register after four zero bytes, starting from a register < 2^16."""
    t8 = _table8()
    v = np.arange(65536, dtype=np.uint32)
    for _ in range(4):
        v = t8[v & 0xFF] ^ (v >> 8)
    return v


@functools.lru_cache(maxsize=None)
def _shift_tables(nbytes: int) -> list[list[int]]:
    """4 x [256]: register after feeding nbytes zero bytes, for each byte of the start register."""
    t8 = _table8()
    v = (np.arange(256, dtype=np.uint32)[None, :] << (8 * np.arange(4, dtype=np.uint32)[:, None])).ravel()
    for _ in range(nbytes):
        v = t8[v & 0xFF] ^ (v >> 8)
    return [row.tolist() for row in v.reshape(4, 256)]


def _raw_small(data: bytes, crc: int) -> int:
    t = _table8()
    for b in data:
        crc = int(t[(crc ^ b) & 0xFF]) ^ (crc >> 8)
    return crc


def crc32c(data: bytes) -> int:
    """Standard CRC32C of data (init and final XOR 0xFFFFFFFF)."""
    n = len(data)
    if n < 4 * CHUNK:
        return _raw_small(data, 0xFFFFFFFF) ^ 0xFFFFFFFF
    # init 0xFFFFFFFF == init 0 with the first 4 bytes inverted; leading zero bytes leave a 0 register unchanged
    nchunks = -(-n // CHUNK)
    buf = np.zeros(nchunks * CHUNK, dtype=np.uint8)
    pad = nchunks * CHUNK - n
    buf[pad:] = np.frombuffer(data, dtype=np.uint8)
    buf[pad:pad + 4] ^= 0xFF
    words = buf.view("<u4").reshape(nchunks, CHUNK // 4).T.copy()  # [CHUNK/4, nchunks]
    t16, t32lo = _table16(), _table32lo()
    crc = np.zeros(nchunks, dtype=np.uint32)
    for w in words:  # 4 bytes: the high half of (crc ^ w) needs 2 byte steps, the low half 4
        crc ^= w
        crc = t32lo[crc & 0xFFFF] ^ t16[crc >> 16]
    s0, s1, s2, s3 = _shift_tables(CHUNK)
    acc = 0
    for c in crc.tolist():
        acc = s0[acc & 0xFF] ^ s1[(acc >> 8) & 0xFF] ^ s2[(acc >> 16) & 0xFF] ^ s3[acc >> 24] ^ c
    return acc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C: rotate right by 15 bits and add a constant (mod 2^32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF
