"""Readers of tile TFRecords: a tf.data pipeline (classifier) and a PyTorch IterableDataset (GAN).

Labels map slide name (= TFRecord file stem) -> int class (categorical) or float (linear).

Decisions versus slideflow 1.3.2 (docs/slideflow.md §5.3, §8.10): the 'r' augmentation draws k uniformly
from {0,1,2,3} (1.3.2 drew from {0..4}, so no rotation had p=0.4); the torch reader shards by DataLoader
worker AND by distributed rank; all random draws are seeded. Both readers verify every record (checksums,
protobuf, image) and skip a corrupt one with a counted warning (tfrecord.RecordReader); a file none of whose
records can be read stops them with one line (tf.data's own reader ends a file at its first bad record).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from synthhist.errors import UserError
from synthhist.wsi.slide import slide_name
from synthhist.wsi.tfrecord import RecordReader, read_index, tf_records

def check_labels(tfrecords: Sequence[str | Path], labels: dict) -> list[Path]:
    """TFRecord paths as Paths; UserError if a file is missing or a slide has no label."""
    paths = [Path(p) for p in tfrecords]
    if not paths:
        raise UserError("no TFRecords given (extract tiles first)")
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise UserError(f"{len(absent)} TFRecord(s) not found, e.g. {absent[0]}")
    unlabeled = [slide_name(p) for p in paths if slide_name(p) not in labels]
    if unlabeled:
        raise UserError(f"{len(unlabeled)} slide(s) have TFRecords but no label, e.g. {', '.join(unlabeled[:3])}")
    return paths


def decode_tile(image_raw: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 [H, W, 3]."""
    return np.asarray(Image.open(io.BytesIO(image_raw)).convert("RGB"))


def _decoded(reader: RecordReader, offset: int) -> tuple[bytes, np.ndarray] | None:
    """(serialised Example, uint8 [H, W, 3] image) at offset, or None (skipped, counted) if any of it is corrupt."""
    got = reader.read(offset)
    if got is None:
        return None
    payload, rec = got
    try:
        return payload, decode_tile(rec["image_raw"])
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        reader.skip(f"{reader.path}: undecodable image in the record at byte {offset} ({type(e).__name__})")
        return None


def iter_tiles(tfrecord: str | Path) -> Iterator[np.ndarray]:
    """Decoded tiles (uint8 [H, W, 3]) of a TFRecord in file order; corrupt records are skipped and counted."""
    reader = RecordReader(tfrecord)
    try:
        for offset, _ in read_index(tfrecord, strict=False):
            if (got := _decoded(reader, offset)) is not None:
                yield got[1]
    finally:
        reader.close()


def tile_px_of(tfrecord: str | Path) -> int:
    """Tile size in pixels of the first readable record of a TFRecord; UnreadableTFRecord if there is none."""
    offsets = [o for o, _ in read_index(tfrecord, strict=False)]
    if not offsets:
        raise UserError(f"{tfrecord} holds no tiles")
    reader = RecordReader(tfrecord)
    try:
        for offset in offsets:
            if (got := _decoded(reader, offset)) is not None:
                return got[1].shape[0]
        raise reader.unreadable(len(offsets))
    finally:
        reader.close()


# ---------------------------------------------------------------------------------------------
# TensorFlow


def tf_tile_dataset(tfrecords: Sequence[str | Path], labels: dict, weights: dict[str, float] | None = None,
                    repeat: bool = True, shuffle: int = 0, seed: int | None = None, with_slide: bool = False,
                    tile_px: int | None = None):
    """tf.data.Dataset of (uint8 [px, px, 3], label[, slide]) mixed over slides (one dataset per TFRecord).

    Labels: int -> int64 scalar; float (linear) -> float32 [1]. weights (slide -> weight) set the chance a
    slide is drawn (None = equal); repeat=False reads every tile once; shuffle = buffer size (0 = none).
    """
    import tensorflow as tf

    paths = check_labels(tfrecords, labels)
    tile_px = tile_px or tile_px_of(paths[0])
    spec = {"slide": tf.io.FixedLenFeature([], tf.string), "image_raw": tf.io.FixedLenFeature([], tf.string)}

    def per_slide(path: Path):
        label = labels[slide_name(path)]
        label = tf.constant([label], tf.float32) if isinstance(label, float) else tf.constant(label, tf.int64)

        def parse(record):
            ex = tf.io.parse_single_example(record, spec)
            img = tf.io.decode_image(ex["image_raw"], channels=3, expand_animations=False)
            img = tf.ensure_shape(img, [tile_px, tile_px, 3])
            return (img, label, ex["slide"]) if with_slide else (img, label)

        return tf_records(path, repeat).map(parse, num_parallel_calls=tf.data.AUTOTUNE)

    w = None
    if weights is not None:
        w = [float(weights.get(slide_name(p), 0.0)) for p in paths]
        if sum(w) <= 0:
            raise UserError("all slide sampling weights are zero")
    ds = tf.data.Dataset.sample_from_datasets([per_slide(p) for p in paths], weights=w, seed=seed,
                                              stop_on_empty_dataset=False)
    if shuffle:
        ds = ds.shuffle(shuffle, seed=seed)
    return ds


# ---------------------------------------------------------------------------------------------
# PyTorch


def augment_xyr(img: np.ndarray, rng: np.random.Generator, ops: str = "xyr") -> np.ndarray:
    """Random 90-degree rotation ('r', k in 0..3), left-right ('x') and up-down ('y') flips of an HWC tile."""
    if "r" in ops:
        img = np.rot90(img, k=int(rng.integers(4)))
    if "x" in ops and rng.random() < 0.5:
        img = img[:, ::-1]
    if "y" in ops and rng.random() < 0.5:
        img = img[::-1]
    return img


def class_probs(labels: dict[str, int], num_classes: int) -> np.ndarray:
    """[num_classes] float64: fraction of slides in each class (for drawing fake-label classes)."""
    counts = np.bincount(np.asarray(list(labels.values()), dtype=np.int64), minlength=num_classes)
    return counts / counts.sum()


def draw_classes(probs: np.ndarray, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[n] int64 classes drawn with the given class probabilities."""
    return torch.multinomial(torch.as_tensor(probs, dtype=torch.float64), n, replacement=True, generator=generator)


class TorchTileDataset(torch.utils.data.IterableDataset):
    """Tiles of slide TFRecords as (uint8 [3, H, W] tensor, label tensor), sharded by rank and worker.

    Shard s of S = world_size * num_workers (s = rank * num_workers + worker) holds records i with
    i % S == s of every TFRecord. infinite=True: repeatedly pick a slide (uniform, or by weights) and
    take its next chunk_size records, each slide's records in an order reshuffled every pass over it
    (chunk_size 8 is slideflow's interleaving; 1 mixes slides within every batch, as the GAN needs);
    infinite=False: every record of the shard once, slides interleaved at random. onehot labels are
    float32 [num_classes].
    """

    def __init__(self, tfrecords: Sequence[str | Path], labels: dict[str, int], num_classes: int | None = None,
                 onehot: bool = True, augment: str = "xyr", rank: int = 0, world_size: int = 1, seed: int = 0,
                 infinite: bool = True, chunk_size: int = 8, weights: dict[str, float] | None = None):
        super().__init__()
        self.paths = check_labels(tfrecords, labels)
        self.labels = {slide_name(p): labels[slide_name(p)] for p in self.paths}
        self.num_classes = num_classes or int(max(self.labels.values())) + 1
        if onehot and max(self.labels.values()) >= self.num_classes:
            raise UserError(f"a label exceeds num_classes={self.num_classes}")
        if not 0 <= rank < world_size:
            raise UserError(f"rank {rank} is outside world_size {world_size}")
        if set(augment) - set("xyr"):
            raise UserError(f"unknown augmentation letters in '{augment}' (known: x, y, r)")
        self.onehot, self.augment, self.rank, self.world_size = onehot, augment, rank, world_size
        self.seed, self.infinite, self.chunk_size = seed, infinite, chunk_size
        self.offsets = [[o for o, _ in read_index(p, strict=False)] for p in self.paths]  # per TFRecord, byte offsets
        self.num_tiles = sum(len(o) for o in self.offsets)
        w = np.array([1.0 if weights is None else float(weights.get(slide_name(p), 0.0)) for p in self.paths])
        if w.sum() <= 0:
            raise UserError("all slide sampling weights are zero")
        self.weights = w / w.sum()
        self.tile_px = tile_px_of(self.paths[0])
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the random stream (finite mode: the interleaving/augmentation of the next pass)."""
        self.epoch = epoch

    def _label(self, slide: str) -> torch.Tensor:
        y = self.labels[slide]
        if isinstance(y, float):
            return torch.tensor([y], dtype=torch.float32)
        if self.onehot:
            out = torch.zeros(self.num_classes, dtype=torch.float32)
            out[y] = 1
            return out
        return torch.tensor(y, dtype=torch.int64)

    def _item(self, img: np.ndarray, slide: str, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        img = augment_xyr(img, rng, self.augment)
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), self._label(slide)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        shard, num_shards = self.rank * num_workers + worker, self.world_size * num_workers
        rng = np.random.default_rng([self.seed, shard, self.epoch])
        mine = [offs[shard::num_shards] for offs in self.offsets]  # per TFRecord, this shard's offsets
        live = [i for i, m in enumerate(mine) if m and self.weights[i] > 0]
        if not live:
            return
        readers = [RecordReader(p) for p in self.paths]   # open lazily, closed at the end of the iterator

        def item(i: int, offset: int) -> tuple[torch.Tensor, torch.Tensor] | None:
            got = _decoded(readers[i], offset)
            return None if got is None else self._item(got[1], slide_name(self.paths[i]), rng)

        try:
            if not self.infinite:
                order = np.concatenate([np.full(len(mine[i]), i) for i in live])
                rng.shuffle(order)
                pos = [0] * len(mine)
                for i in order.tolist():
                    if (x := item(i, mine[i][pos[i]])) is not None:
                        yield x
                    pos[i] += 1
                    if pos[i] == len(mine[i]) and readers[i].skipped == len(mine[i]):
                        raise readers[i].unreadable(len(mine[i]))
                return
            p = self.weights[live] / self.weights[live].sum()
            order = {i: rng.permutation(len(mine[i])) for i in live}  # per slide, reshuffled each pass
            pos = dict.fromkeys(live, 0)
            while True:
                for i in rng.choice(live, size=1024, p=p).tolist():
                    for _ in range(self.chunk_size):
                        if pos[i] >= len(mine[i]):
                            order[i], pos[i] = rng.permutation(len(mine[i])), 0
                        j = int(order[i][pos[i]])
                        x = item(i, mine[i][j])
                        if x is None:                   # corrupt: out of this shard's rotation for good
                            del mine[i][j]
                            if not mine[i]:
                                raise readers[i].unreadable(readers[i].skipped)
                            order[i], pos[i] = rng.permutation(len(mine[i])), 0
                            continue
                        yield x
                        pos[i] += 1
        finally:
            for r in readers:
                r.close()
