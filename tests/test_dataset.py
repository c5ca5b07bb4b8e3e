"""Annotations -> labels, and the tf.data / PyTorch tile readers over small TFRecords."""

import io
import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from synthhist.errors import UserError
from synthhist.wsi import dataset, labels
from synthhist.wsi.tfrecord import UnreadableTFRecord, frame, index_path, read_index, write_tfrecord

PX = 8


def _tile(slide_idx: int, i: int, fmt: str) -> bytes:
    img = np.zeros((PX, PX, 3), np.uint8)
    img[..., 0] = slide_idx * 10       # R encodes the slide,
    img[..., 1] = i                    # G encodes the tile index,
    img[0, 0, 2] = 255                 # a marker pixel shows the augmentation
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **({"quality": 100} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.fixture
def records(tmp_path):
    """4 slides with 5, 6, 7, 8 tiles; slides a,b -> class 'neg', c,d -> 'pos'."""
    paths = []
    for s, n in enumerate([5, 6, 7, 8]):
        name = "abcd"[s]
        p = tmp_path / f"{name}.tfrecords"
        write_tfrecord(p, [{"slide": name, "image_raw": _tile(s, i, "PNG"), "loc_x": i, "loc_y": s} for i in range(n)])
        paths.append(p)
    csv = tmp_path / "ann.csv"
    csv.write_text("patient,slide,subtype,score\np1,a,neg,0.5\np2,b,neg,1\np3,c,pos,-2\np4,d,pos,3e-1\np5,,pos,1\np6,e,,\n")
    return paths, csv


def test_labels(records):
    _, csv = records
    df = labels.read_annotations(csv)
    y, names = labels.outcome_labels(df, "subtype")
    assert names == ["neg", "pos"] and y == {"a": 0, "b": 0, "c": 1, "d": 1}
    y, names = labels.outcome_labels(df, "score", linear=True)
    assert names == ["score"] and y == {"a": 0.5, "b": 1.0, "c": -2.0, "d": 0.3}
    assert labels.slides_per_class({"a": 0, "b": 0, "c": 1}, 3).tolist() == [2, 1, 0]
    w = labels.category_weights({"a": 0, "b": 0, "c": 1})
    assert w == pytest.approx({"a": 0.25, "b": 0.25, "c": 0.5})
    assert labels.outcome_labels(df.assign(subtype=["Ras", "Braf", "ras", "B", "", ""]), "subtype")[1] == \
        ["B", "Braf", "Ras", "ras"]  # case-sensitive string sort


def test_label_errors(tmp_path, records):
    _, csv = records
    df = labels.read_annotations(csv)
    with pytest.raises(UserError, match="outcome column 'nope'"):
        labels.outcome_labels(df, "nope")
    with pytest.raises(UserError, match="not a number"):
        labels.outcome_labels(df, "subtype", linear=True)
    with pytest.raises(UserError, match="conflicting"):
        labels.outcome_labels(df.assign(slide=["a", "b", "a", "d", "", "e"]), "subtype")
    bad = tmp_path / "bad.csv"
    bad.write_text("patient,sample\n1,2\n")
    with pytest.raises(UserError, match="lacks column.*slide"):
        labels.read_annotations(bad)
    bad.write_text("patient,slide,slide\n1,2,3\n")
    with pytest.raises(UserError, match="duplicate"):
        labels.read_annotations(bad)
    with pytest.raises(UserError, match="not found"):
        labels.read_annotations(tmp_path / "none.csv")


def test_missing_label_is_an_error(records):
    paths, _ = records
    with pytest.raises(UserError, match="no label.*d"):
        dataset.TorchTileDataset(paths, {"a": 0, "b": 0, "c": 1})
    with pytest.raises(UserError, match="no label"):
        dataset.tf_tile_dataset(paths, {"a": 0})
    with pytest.raises(UserError, match="not found"):
        dataset.TorchTileDataset(paths + [paths[0].with_name("zz.tfrecords")], {"a": 0, "b": 0, "c": 1, "d": 1})


def _ids(img: torch.Tensor) -> tuple[int, int]:
    return int(img[0].max()) // 10, int(img[1].max())


def test_torch_sharding_disjoint_and_complete(records):
    paths, _ = records
    y = {"a": 0, "b": 0, "c": 1, "d": 1}
    seen = []
    for rank in range(2):
        ds = dataset.TorchTileDataset(paths, y, rank=rank, world_size=2, infinite=False, augment="")
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        got = [(_ids(img), lab) for img, lab in loader]
        seen.append([g for g, _ in got])
        for (s, _), lab in got:
            assert lab.tolist() == ([1.0, 0.0] if s < 2 else [0.0, 1.0])
    assert not set(seen[0]) & set(seen[1])
    allseen = seen[0] + seen[1]
    assert len(allseen) == 26 and set(allseen) == {(s, i) for s, n in enumerate([5, 6, 7, 8]) for i in range(n)}


def test_torch_infinite_augment_and_weights(records):
    paths, _ = records
    y = {"a": 0, "b": 0, "c": 1, "d": 1}
    ds = dataset.TorchTileDataset(paths, y, onehot=False, seed=3, weights={"a": 1, "b": 0, "c": 0, "d": 1})
    assert ds.tile_px == PX and ds.num_tiles == 26 and ds.num_classes == 2
    it = iter(ds)
    items = [next(it) for _ in range(200)]
    img, lab = items[0]
    assert img.dtype == torch.uint8 and img.shape == (3, PX, PX) and lab.dtype == torch.int64
    slides = {_ids(im)[0] for im, _ in items}
    assert slides == {0, 3}                                          # zero-weight slides never drawn
    corners = {tuple(np.argwhere(im[2].numpy() == 255)[0]) for im, _ in items}
    assert corners == {(0, 0), (0, PX - 1), (PX - 1, 0), (PX - 1, PX - 1)}   # flips/rotations happen
    runs = [_ids(im)[0] for im, _ in items[:16]]
    assert runs[:8] == [runs[0]] * 8                                 # chunks of 8 records per slide draw
    again = iter(dataset.TorchTileDataset(paths, y, onehot=False, seed=3, weights={"a": 1, "b": 0, "c": 0, "d": 1}))
    assert all(torch.equal(next(again)[0], im) for im, _ in items[:20])   # seeded


def test_fake_label_draws():
    probs = dataset.class_probs({"a": 0, "b": 0, "c": 0, "d": 1}, 3)
    assert probs.tolist() == [0.75, 0.25, 0.0]
    c = dataset.draw_classes(probs, 4000, torch.Generator().manual_seed(0))
    assert c.dtype == torch.int64 and (c != 2).all() and abs((c == 1).float().mean().item() - 0.25) < 0.03


def test_tf_dataset(records):
    pytest.importorskip("tensorflow")
    paths, _ = records
    y = {"a": 0, "b": 0, "c": 1, "d": 1}
    ds = dataset.tf_tile_dataset(paths, y, repeat=False, with_slide=True, seed=1)
    got = [(img.numpy(), int(lab), s.numpy().decode()) for img, lab, s in ds]
    assert len(got) == 26
    assert {(int(img[..., 0].max()) // 10, int(img[..., 1].max())) for img, _, _ in got} == \
        {(s, i) for s, n in enumerate([5, 6, 7, 8]) for i in range(n)}
    assert all(img.dtype == np.uint8 and img.shape == (PX, PX, 3) and lab == y[s] for img, lab, s in got)
    ds = dataset.tf_tile_dataset(paths, y, weights={"a": 0, "b": 0, "c": 1, "d": 0}, seed=0)
    assert {int(img[..., 0].numpy().max()) // 10 for img, _ in ds.take(30)} == {2}   # repeats a 7-tile slide
    lin = dataset.tf_tile_dataset(paths, {"a": 0.5, "b": 1.0, "c": 2.0, "d": 3.0}, repeat=False)
    img, lab = next(iter(lin))
    assert lab.dtype.name == "float32" and lab.shape == (1,)


def test_jpeg_tiles(tmp_path):
    p = tmp_path / "j.tfrecords"
    write_tfrecord(p, [{"slide": "j", "image_raw": _tile(1, i, "JPEG"), "loc_x": 0, "loc_y": 0} for i in range(3)])
    ds = dataset.TorchTileDataset([p], {"j": 0}, num_classes=2, infinite=False, augment="")
    imgs = [img for img, _ in ds]
    assert len(imgs) == 3 and abs(int(imgs[0][0, 4, 4]) - 10) <= 2


# --- corrupt TFRecords: bad records are skipped and counted, a wholly unreadable file is one line ----------------


def _corrupt(path, kind: str, record: int = 1):
    """Damage one record of a TFRecord in place (its .index, written with the file, stays valid)."""
    idx = read_index(path)
    off, n = idx[record]
    data = bytearray(path.read_bytes())
    if kind == "data":
        data[off + 12 + n // 2 - 8] ^= 0xFF              # a byte of the payload: data checksum fails
    elif kind == "length":
        data[off + 1] ^= 0x01                            # a byte of the length: length checksum fails
    elif kind == "protobuf":                             # garbage payload with correct checksums
        data[off:off + n] = frame(b"\x0a\xff\xff\xff\x7f" + bytes(n - 21))
    elif kind == "truncate":
        data = data[:off + n // 2]
    mtime = index_path(path).stat().st_mtime_ns
    path.write_bytes(bytes(data))
    os.utime(path, ns=(mtime, mtime))                    # the index stays current: readers use its offsets


@pytest.mark.parametrize("kind", ["data", "length", "protobuf", "truncate"])
@pytest.mark.parametrize("with_index", [True, False])
def test_torch_reader_skips_corrupt_records(records, kind, with_index, caplog):
    paths, _ = records
    _corrupt(paths[3], kind)                          # d: 8 tiles, record 1 damaged
    if not with_index:
        index_path(paths[3]).unlink()
    y = {"a": 0, "b": 0, "c": 1, "d": 1}
    with caplog.at_level(logging.WARNING, "synthhist"):
        ds = dataset.TorchTileDataset(paths, y, infinite=False, augment="")
        got = {_ids(img) for img, _ in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1)}
    # a cut loses the rest of the file; without an index, so does a broken length (nothing after it is framed)
    lost = set(range(1, 8)) if kind == "truncate" or (kind == "length" and not with_index) else {1}
    assert got == {(s, i) for s, n in enumerate([5, 6, 7, 8]) for i in range(n)} - {(3, i) for i in lost}
    # infinite stream: goes on without the bad record
    it = iter(dataset.TorchTileDataset([paths[3]], {"d": 1}, augment="", chunk_size=3))
    assert {_ids(next(it)[0]) for _ in range(40)} == {(3, i) for i in range(8)} - {(3, i) for i in lost}


def test_skipped_records_are_counted_in_the_log(records, caplog, monkeypatch):
    paths, _ = records
    monkeypatch.setattr(logging.getLogger("synthhist"), "propagate", True)   # an earlier script setup may stop it
    for r in (1, 4):
        _corrupt(paths[3], "data", r)
    with caplog.at_level(logging.WARNING, "synthhist"):
        assert len(list(dataset.TorchTileDataset([paths[3]], {"d": 1}, infinite=False))) == 6
    lines = [r.getMessage() for r in caplog.records if "record skipped" in r.getMessage()]
    assert len(lines) == 2 and "bad data checksum" in lines[0] and "2 corrupt record(s) skipped" in lines[1]


def test_unreadable_file_is_one_line_even_from_a_worker(records):
    paths, _ = records
    for r in range(len(read_index(paths[0]))):
        _corrupt(paths[0], "data", r)                 # every record of a damaged
    with pytest.raises(UnreadableTFRecord, match=r"a.tfrecords: none of its 5 record\(s\) can be read"):
        dataset.tile_px_of(paths[0])
    ds = dataset.TorchTileDataset(paths[1:] + paths[:1], {"a": 0, "b": 0, "c": 1, "d": 1}, infinite=False)
    with pytest.raises(UnreadableTFRecord) as e:     # found in a DataLoader worker, re-raised here
        list(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1))
    assert "\n" not in str(e.value) and "a.tfrecords: none of its 5 record(s) can be read" in str(e.value)
    paths[1].write_bytes(b"\x00" * 5)                 # not even one record header
    index_path(paths[1]).unlink()
    with pytest.raises(UnreadableTFRecord, match="b.tfrecords.*truncated.*no record of the file can be read"):
        dataset.TorchTileDataset(paths[1:2], {"b": 0})


@pytest.mark.parametrize("kind", ["data", "length", "protobuf"])
def test_tf_reader_skips_corrupt_records(records, kind):
    pytest.importorskip("tensorflow")
    paths, _ = records
    _corrupt(paths[3], kind)
    y = {"a": 0, "b": 0, "c": 1, "d": 1}
    got = {(int(img[..., 0].numpy().max()) // 10, int(img[..., 1].numpy().max()))
           for img, _ in dataset.tf_tile_dataset(paths, y, repeat=False)}
    assert got == {(s, i) for s, n in enumerate([5, 6, 7, 8]) for i in range(n)} - {(3, 1)}
    # the classifier's pipeline reads through the same reader (tf.data's own stops at the bad record)
    from synthhist.classifier.pipeline import eval_dataset
    n = sum(int(x.shape[0]) for x, *_ in eval_dataset([paths[3]], PX, 4, None))
    assert n == 7


@pytest.mark.slow
def test_gan_training_goes_on_past_corrupt_records_and_stops_on_an_unreadable_file(tmp_path, script):
    from gan_train_fixtures import TINY, make_project

    p = make_project(tmp_path)
    blue0 = p.tfrecord_dir / "blue-0.tfrecords"
    for kind, r in [("data", 1), ("protobuf", 3), ("length", 5)]:
        _corrupt(blue0, kind, r)
    args = ["train_gan.py", "--exp", p.config, "--outdir", p.root, "--kimg", "0.016", "--tick", "0.008", "--snap", "1",
            *TINY]
    proc = script(*args)
    assert "Traceback" not in proc.stderr and "3 corrupt record(s) skipped" in proc.stderr
    assert list((p.gan_dir).glob("*/network-snapshot-*"))
    red1 = p.tfrecord_dir / "red-1.tfrecords"
    red1.write_bytes(red1.read_bytes()[:30])           # cut inside the first record: nothing to read
    proc = script(*args, check=False)
    err = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert err.startswith("Error:") and "red-1.tfrecords" in err and "truncated TFRecord" in err
