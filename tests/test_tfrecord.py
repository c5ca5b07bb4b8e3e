"""TFRecord writing/reading: our framing + tf.train.Example encoding against TensorFlow's."""

import io
import os
import struct

import numpy as np
import pytest
from PIL import Image

from synthhist.errors import UserError
from synthhist.wsi import tfrecord
from synthhist.wsi.crc32c import crc32c


def _png(seed: int, px: int = 16) -> bytes:
    img = np.random.RandomState(seed).randint(0, 256, (px, px, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _records(n=5):
    return [{"slide": "TCGA-AA-0001", "image_raw": _png(i), "loc_x": 1000 * i + 150, "loc_y": -5 if i == 3 else 7 * i}
            for i in range(n)]


def _bitwise_crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


@pytest.mark.parametrize("n", [0, 1, 9, 4095, 4096, 4097, 10_001])
def test_crc32c(n):
    assert crc32c(b"123456789") == 0xE3069283
    data = np.random.RandomState(n).bytes(n)
    assert crc32c(data) == _bitwise_crc32c(data)


def test_roundtrip_ours(tmp_path):
    p = tmp_path / "TCGA-AA-0001.tfrecords"
    recs = _records()
    assert tfrecord.write_tfrecord(p, recs) == 5
    assert list(tfrecord.read_tfrecord(p)) == recs
    idx = tfrecord.read_index(p)
    assert len(idx) == 5 and idx[0][0] == 0 and sum(n for _, n in idx) == p.stat().st_size
    assert (tmp_path / "TCGA-AA-0001.index").read_text().splitlines()[1] == f"{idx[1][0]} {idx[1][1]}"
    assert list(tfrecord.read_records_at(p, [idx[2][0], idx[0][0]])) == [recs[2], recs[0]]
    assert tfrecord.update_manifest(tmp_path) == {"TCGA-AA-0001.tfrecords": {"total": 5}}
    assert not list(tmp_path.glob(".*tmp"))


def test_tensorflow_reads_ours(tmp_path):
    tf = pytest.importorskip("tensorflow")
    p = tmp_path / "s.tfrecords"
    recs = _records()
    tfrecord.write_tfrecord(p, recs)
    spec = {"slide": tf.io.FixedLenFeature([], tf.string), "image_raw": tf.io.FixedLenFeature([], tf.string),
            "loc_x": tf.io.FixedLenFeature([], tf.int64), "loc_y": tf.io.FixedLenFeature([], tf.int64)}
    got = [tf.io.parse_single_example(x, spec) for x in tf.data.TFRecordDataset(str(p))]
    assert len(got) == 5
    for g, r in zip(got, recs):
        assert g["slide"].numpy().decode() == r["slide"] and g["image_raw"].numpy() == r["image_raw"]
        assert (int(g["loc_x"]), int(g["loc_y"])) == (r["loc_x"], r["loc_y"])
        np.testing.assert_array_equal(tf.io.decode_png(g["image_raw"]).numpy(),
                                      np.asarray(Image.open(io.BytesIO(r["image_raw"]))))


def test_we_read_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    p = tmp_path / "s.tfrecords"
    recs = _records()
    with tf.io.TFRecordWriter(str(p)) as w:
        for r in recs:
            ex = tf.train.Example(features=tf.train.Features(feature={
                "slide": tf.train.Feature(bytes_list=tf.train.BytesList(value=[r["slide"].encode()])),
                "image_raw": tf.train.Feature(bytes_list=tf.train.BytesList(value=[r["image_raw"]])),
                "loc_x": tf.train.Feature(int64_list=tf.train.Int64List(value=[r["loc_x"]])),
                "loc_y": tf.train.Feature(int64_list=tf.train.Int64List(value=[r["loc_y"]])),
                "extra": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5, 2.0]))}))
            w.write(ex.SerializeToString())
            # our encoder produces a payload TF parses to the same message
            assert tf.train.Example.FromString(tfrecord.encode_example(r)) == tf.train.Example(
                features=tf.train.Features(feature={k: v for k, v in ex.features.feature.items() if k != "extra"}))
    assert list(tfrecord.read_tfrecord(p)) == recs
    assert tfrecord.decode_example(tf.data.TFRecordDataset(str(p)).take(1).get_single_element().numpy())["extra"] == [0.5, 2.0]
    # our framing of TF's payloads is byte-identical to TF's file
    payloads = [x.numpy() for x in tf.data.TFRecordDataset(str(p))]
    assert b"".join(tfrecord.frame(x) for x in payloads) == p.read_bytes()


def test_corrupt_and_truncated(tmp_path):
    p = tmp_path / "s.tfrecords"
    tfrecord.write_tfrecord(p, _records(2))
    data = p.read_bytes()
    p.write_bytes(data[:-10])
    with pytest.raises(UserError, match="truncated"):
        list(tfrecord.read_tfrecord(p))
    bad = bytearray(data)
    bad[40] ^= 0xFF
    p.write_bytes(bytes(bad))
    with pytest.raises(UserError, match="corrupt"):
        list(tfrecord.read_tfrecord(p))
    with pytest.raises(UserError, match="not found"):
        list(tfrecord.read_tfrecord(tmp_path / "nope.tfrecords"))


def test_interrupted_write_leaves_nothing(tmp_path):
    p = tmp_path / "s.tfrecords"

    def gen():
        yield from _records(2)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tfrecord.write_tfrecord(p, gen())
    assert os.listdir(tmp_path) == []


def test_int64_extremes():
    payload = tfrecord.encode_example({"slide": "x", "image_raw": b"", "loc_x": -(2 ** 63), "loc_y": 2 ** 63 - 1})
    ex = tfrecord.decode_example(payload)
    assert ex["loc_x"] == [-(2 ** 63)] and ex["loc_y"] == [2 ** 63 - 1] and ex["image_raw"] == [b""]
    assert struct.calcsize("<Q") == 8


def test_crafted_records_are_refused_without_allocating(tmp_path):
    # a feature key as a varint of 2**40 (bytes(v) would allocate a terabyte), and a truncated field
    for payload in [b"\x0a\x08\x0a\x06\x08\x80\x80\x80\x80\x80\x20", b"\x0a\x7f\x0a", b"\x0f\x00"]:
        with pytest.raises(ValueError):
            tfrecord.decode_example(payload)
    p = tmp_path / "s.tfrecords"
    p.write_bytes(tfrecord.frame(b"\x0a\x08\x0a\x06\x08\x80\x80\x80\x80\x80\x20"))
    with pytest.raises(tfrecord.CorruptRecord, match="corrupt TFRecord.*malformed|wire type"):
        list(tfrecord.read_tfrecord(p))
    # a header claiming 2**60 bytes, with a correct checksum: refused as truncated, nothing allocated
    length = struct.pack("<Q", 1 << 60)
    p.write_bytes(length + struct.pack("<I", tfrecord.masked_crc32c(length)) + b"x" * 100)
    with open(p, "rb") as f, pytest.raises(tfrecord.CorruptRecord, match="truncated"):
        tfrecord.read_record_at(f, 0, p)
    assert tfrecord.RecordReader(p).read(0) is None


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (299, 299), (64, 33)])
def test_tile_png_is_lossless_for_pillow_and_tensorflow(shape):
    from synthhist.wsi.png import encode_png

    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    img[: shape[0] // 2] = img[: shape[0] // 2] // 16 * 16      # some structure too, so deflate finds matches
    data = encode_png(img)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), img)
    tf = pytest.importorskip("tensorflow")
    np.testing.assert_array_equal(tf.io.decode_png(data).numpy(), img)
    with pytest.raises(ValueError, match="uint8"):
        encode_png(img.astype(np.float32))
