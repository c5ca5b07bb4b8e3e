"""TFRecord files of tiles, written and read without TensorFlow (slideflow-compatible layout).

Framing of each record: uint64 length (little-endian), masked CRC32C of those 8 bytes, payload,
masked CRC32C of the payload. The payload is a serialised ``tf.train.Example`` with features
``slide`` (bytes, UTF-8), ``image_raw`` (bytes, PNG/JPEG), ``loc_x``, ``loc_y`` (int64).

``loc_x``/``loc_y`` are the tile CENTRE in level-0 pixels. slideflow 1.3.2 stored centre/10
(``int((x + full_extract_px/2) / 10)``); later slideflow stores full-resolution centres like we do,
so 1.3.2 TFRecords carry coordinates 10x smaller than ours.

Next to ``<slide>.tfrecords``: ``<slide>.index`` with one line ``"<byte offset> <record byte length>"``
per record, and ``manifest.json`` = ``{"<slide>.tfrecords": {"total": N}}`` for the folder.

Corrupt files: ``read_tfrecord`` is strict (the first bad record raises). The training readers use
``RecordReader``, which verifies every record's checksums and protobuf, skips a bad record with a warning
that counts the skips, and raises ``UnreadableTFRecord`` (one line) only when no record of a file can be read.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import Iterable, Iterator

from synthhist.errors import UserError
from synthhist.fileio import atomic_open, atomic_write_json
from synthhist.wsi.crc32c import masked_crc32c

log = logging.getLogger("synthhist")


class CorruptRecord(UserError):
    """One record of a TFRecord cannot be read (framing, checksum, protobuf or tile features)."""


class UnreadableTFRecord(UserError):
    """No record of a TFRecord file can be read."""

    def __init__(self, message: str):
        # torch re-raises a DataLoader worker's exception as type(message=...) with the worker's traceback
        # in the text: keep only the original one-line message, so scripts still print one line.
        if message.startswith(f"Caught {type(self).__name__}"):
            message = message.rstrip().splitlines()[-1].split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)

# ---------------------------------------------------------------------------------------------
# Protobuf (tf.train.Example) encoding: Example{1: Features{1: map<string, Feature>}},
# Feature{1: BytesList{1: repeated bytes}, 2: FloatList{1: packed float}, 3: Int64List{1: packed int64}}


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # negative int64 -> two's complement, 10 bytes
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    """Length-delimited field (wire type 2)."""
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _feature(value: bytes | str | int) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, (bytes, bytearray)):
        return _field(1, _field(1, bytes(value)))                # bytes_list
    return _field(3, _field(1, _varint(int(value))))              # int64_list, packed


def encode_example(features: dict[str, bytes | str | int]) -> bytes:
    """Serialise a flat dict of bytes/str/int features as a tf.train.Example."""
    entries = b"".join(_field(1, _field(1, k.encode()) + _field(2, _feature(v))) for k, v in features.items())
    return _field(1, entries)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """Yield (field number, wire type, value) of a protobuf message; value is int or bytes."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _read_varint(buf, pos)
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            val, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > n:
            raise ValueError("truncated protobuf field")
        yield num, wire, val


def _submessages(buf: bytes) -> Iterator[tuple[int, bytes]]:
    """(field number, bytes) of the length-delimited fields of a message; ValueError for any other wire type."""
    for num, wire, val in _fields(buf):
        if wire != 2:
            raise ValueError(f"field {num} has wire type {wire}, expected a length-delimited one")
        yield num, val


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _decode_feature(buf: bytes) -> list:
    values: list = []
    for kind, lst in _submessages(buf):
        for _, wire, v in _fields(lst):
            if kind == 1 and wire == 2:
                values.append(bytes(v))
            elif kind == 2 and wire in (2, 5):  # floats: packed (wire 2) or single fixed32 (wire 5)
                values.extend(x for (x,) in struct.iter_unpack("<f", v))
            elif kind == 3 and wire == 0:
                values.append(_signed(v))
            elif kind == 3 and wire == 2:  # packed varints
                pos = 0
                while pos < len(v):
                    x, pos = _read_varint(v, pos)
                    values.append(_signed(x))
            else:
                raise ValueError(f"feature list {kind} holds a value of wire type {wire}")
    return values


def decode_example(payload: bytes) -> dict[str, list]:
    """Parse a serialised tf.train.Example into {feature name: list of values}; ValueError if malformed."""
    try:
        out: dict[str, list] = {}
        for _, features in _submessages(payload):
            for _, entry in _submessages(features):
                key, value = "", b""
                for num, v in _submessages(entry):
                    if num == 1:
                        key = bytes(v).decode()
                    elif num == 2:
                        value = v
                out[key] = _decode_feature(value)
        return out
    except (IndexError, UnicodeDecodeError, struct.error) as e:
        raise ValueError(f"malformed protobuf ({type(e).__name__})") from None


# ---------------------------------------------------------------------------------------------
# Framing


def frame(payload: bytes) -> bytes:
    """One TFRecord record: length, masked CRC of length, payload, masked CRC of payload."""
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked_crc32c(length)) + payload + struct.pack("<I", masked_crc32c(payload))


def tile_record(ex: dict[str, list], where: str) -> dict:
    """Tile dict {slide, image_raw, loc_x, loc_y} of a decoded Example; UserError naming `where` if incomplete."""
    try:
        rec = {k: ex[k][0] for k in ("slide", "image_raw", "loc_x", "loc_y")}
    except (KeyError, IndexError) as e:
        raise CorruptRecord(f"{where}: record lacks the tile feature {e} "
                            "(need slide, image_raw, loc_x, loc_y)") from None
    if not (isinstance(rec["slide"], bytes) and isinstance(rec["image_raw"], bytes)
            and isinstance(rec["loc_x"], int) and isinstance(rec["loc_y"], int)):
        raise CorruptRecord(f"{where}: record has tile features of the wrong type")
    try:
        return rec | {"slide": rec["slide"].decode()}
    except UnicodeDecodeError:
        raise CorruptRecord(f"{where}: record's slide name is not UTF-8") from None


def write_tfrecord(path: str | Path, records: Iterable[dict]) -> int:
    """Write tile records (slide, image_raw, loc_x, loc_y) to path atomically, plus its index; return count."""
    return write_frames(path, (tile_frame(r) for r in records))


def tile_frame(r: dict) -> bytes:
    """The framed record of one tile dict (slide, image_raw, loc_x, loc_y)."""
    return frame(encode_example({"slide": r["slide"], "image_raw": r["image_raw"],
                                 "loc_x": int(r["loc_x"]), "loc_y": int(r["loc_y"])}))


def write_frames(path: str | Path, frames: Iterable[bytes]) -> int:
    """Write framed records to path atomically, plus its index; return the count."""
    path = Path(path)
    index: list[tuple[int, int]] = []
    offset = 0
    with atomic_open(path, "wb") as f:
        for rec in frames:
            f.write(rec)
            index.append((offset, len(rec)))
            offset += len(rec)
    _write_index_lines(index_path(path), index)
    return len(index)


def _read_length(f, offset: int, path: Path | str) -> int:
    """Payload length from the 12-byte record header at f's position, checked against its CRC."""
    head = f.read(12)
    if len(head) < 12:
        raise CorruptRecord(f"{path}: truncated TFRecord (record header at byte {offset})")
    (length,) = struct.unpack("<Q", head[:8])
    if struct.unpack("<I", head[8:])[0] != masked_crc32c(head[:8]):
        raise CorruptRecord(f"{path}: corrupt TFRecord (bad length checksum at byte {offset})")
    return length


def read_record_at(f, offset: int, path: Path | str = "", verify: bool = False) -> bytes:
    """Payload of the record starting at byte offset of the open binary file f."""
    f.seek(offset)
    length = _read_length(f, offset, path)
    if offset + 12 + length + 4 > os.fstat(f.fileno()).st_size:
        raise CorruptRecord(f"{path}: truncated TFRecord (record at byte {offset})")
    payload = f.read(length)
    tail = f.read(4)
    if len(payload) < length or len(tail) < 4:
        raise CorruptRecord(f"{path}: truncated TFRecord (record at byte {offset})")
    if verify and struct.unpack("<I", tail)[0] != masked_crc32c(payload):
        raise CorruptRecord(f"{path}: corrupt TFRecord (bad data checksum at byte {offset})")
    return payload


def scan_records(path: str | Path, strict: bool = True) -> list[tuple[int, int]]:
    """(offset, length) of every record in a TFRecord file, read from the headers only.

    strict=False: a bad header or a truncated record ends the list (with a warning) instead of raising,
    since nothing after it can be framed; UnreadableTFRecord if not even the first record is framed.
    """
    path = Path(path)
    out, size, offset = [], path.stat().st_size, 0
    with open(path, "rb") as f:
        while offset < size:
            try:
                length = _read_length(f, offset, path)
                rec_len = 12 + length + 4
                if offset + rec_len > size:
                    raise CorruptRecord(f"{path}: truncated TFRecord (record at byte {offset})")
            except CorruptRecord as e:
                if strict:
                    raise
                if not out:
                    raise UnreadableTFRecord(f"{e}: no record of the file can be read; re-extract this slide's "
                                             "tiles or remove the file") from None
                log.warning(f"{e}: the {size - offset} bytes from there on are skipped ({len(out)} records kept)")
                break
            out.append((offset, rec_len))
            offset += rec_len
            f.seek(offset)
    return out


def read_tfrecord(path: str | Path, verify: bool = True) -> Iterator[dict]:
    """Yield tile records {slide: str, image_raw: bytes, loc_x: int, loc_y: int} of a TFRecord file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"TFRecord not found: {path}")
    with open(path, "rb") as f:
        for offset, _ in scan_records(path):
            yield _tile_at(f, offset, path, verify)


def _tile_at(f, offset: int, path: Path | str, verify: bool) -> dict:
    """Tile record at offset of the open file f; CorruptRecord for any defect."""
    return _tile_of(read_record_at(f, offset, path, verify), offset, path)


def _tile_of(payload: bytes, offset: int, path: Path | str) -> dict:
    try:
        return tile_record(decode_example(payload), str(path))
    except ValueError as e:
        raise CorruptRecord(f"{path}: corrupt TFRecord (record at byte {offset}: {e})") from None


def read_records_at(path: str | Path, offsets: Iterable[int], verify: bool = False) -> Iterator[dict]:
    """Yield the tile records that start at the given byte offsets of a TFRecord file."""
    with open(path, "rb") as f:
        for offset in offsets:
            yield _tile_at(f, offset, path, verify)


class RecordReader:
    """Reads verified records of one TFRecord by offset; a corrupt one is skipped (None) with a counted warning."""

    def __init__(self, path: str | Path):
        self.path, self.file, self.skipped = Path(path), None, 0

    def read(self, offset: int) -> tuple[bytes, dict] | None:
        """(payload, tile record) at offset, checksums and protobuf verified; None (and a warning) if corrupt."""
        self.file = self.file or open(self.path, "rb")
        try:
            payload = read_record_at(self.file, offset, self.path, verify=True)
            return payload, _tile_of(payload, offset, self.path)
        except CorruptRecord as e:
            self.skip(str(e))
            return None

    def skip(self, reason: str) -> None:
        """Count and log one skipped record (also for a defect found by the caller, e.g. an undecodable image)."""
        self.skipped += 1
        log.warning(f"{reason}: record skipped ({self.skipped} corrupt record(s) skipped in this file so far)")

    def unreadable(self, tried: int) -> UnreadableTFRecord:
        """The error for a file none of whose `tried` records could be read."""
        return UnreadableTFRecord(f"{self.path}: none of its {tried} record(s) can be read (corrupt file); "
                                  "re-extract this slide's tiles or remove the file")

    def close(self) -> None:
        """Close the file (reopened on the next read)."""
        if self.file is not None:
            self.file.close()
            self.file = None


def tf_records(path: str | Path, repeat: bool = False):
    """tf.data.Dataset of the serialised Examples of one TFRecord (verified; corrupt records skipped, counted).

    A drop-in for tf.data.TFRecordDataset(path) that, unlike it, goes on past a corrupt record.
    """
    import tensorflow as tf

    offsets = [o for o, _ in read_index(path, strict=False)]

    def payloads():
        reader = RecordReader(path)
        try:
            while offsets:
                good = 0
                for offset in offsets:   # images are decoded by TF (a checksummed record holds what was written)
                    if (got := reader.read(offset)) is not None:
                        good += 1
                        yield got[0]
                if not good:
                    raise reader.unreadable(len(offsets))
                if not repeat:
                    return
        finally:
            reader.close()

    return tf.data.Dataset.from_generator(payloads, output_signature=tf.TensorSpec([], tf.string))


# ---------------------------------------------------------------------------------------------
# Index files and manifest


def index_path(tfrecord: str | Path) -> Path:
    """<dir>/<slide>.index for <dir>/<slide>.tfrecords."""
    return Path(tfrecord).with_suffix(".index")


def _write_index_lines(path: Path, index: list[tuple[int, int]]) -> None:
    with atomic_open(path, "w") as f:
        f.writelines(f"{o} {n}\n" for o, n in index)


def write_index(path: str | Path) -> Path:
    """(Re)build the index file of a TFRecord from its contents; return the index path."""
    out = index_path(path)
    _write_index_lines(out, scan_records(path))
    return out


def read_index(path: str | Path, strict: bool = True) -> list[tuple[int, int]]:
    """(offset, length) per record of a TFRecord, from its index file (else scanned; strict: see scan_records)."""
    idx = index_path(path)
    if not idx.is_file() or idx.stat().st_mtime < Path(path).stat().st_mtime:
        return scan_records(path, strict)
    try:
        return [(int(a), int(b)) for a, b in (line.split() for line in idx.read_text().splitlines() if line.strip())]
    except ValueError:
        raise UserError(f"{idx}: malformed index file (expected '<offset> <length>' per line)") from None


def update_manifest(tfrecord_dir: str | Path) -> dict[str, dict[str, int]]:
    """Rewrite <dir>/manifest.json ({"<slide>.tfrecords": {"total": N}}) from the index files; return it."""
    tfrecord_dir = Path(tfrecord_dir)
    manifest = {}
    for p in sorted(tfrecord_dir.glob("*.tfrecords")):
        if not index_path(p).is_file() or index_path(p).stat().st_mtime < p.stat().st_mtime:
            write_index(p)
        manifest[p.name] = {"total": len(read_index(p))}
    atomic_write_json(tfrecord_dir / "manifest.json", manifest)
    return manifest
