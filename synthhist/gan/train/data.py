"""Training data of the GAN: real tiles + one-hot labels of the experiment's outcome, fake-label sampler."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from synthhist.errors import UserError

log = logging.getLogger("synthhist")


@dataclass
class GanDataset:
    """The labelled TFRecords of one experiment (slides with at least one tile)."""

    tfrecords: list[Path]
    labels: dict[str, int]          # slide -> class index
    class_names: list[str]
    class_probs: np.ndarray         # [c_dim] fraction of slides per class (fake-label distribution)
    num_tiles: int
    tile_px: int

    @property
    def c_dim(self) -> int:
        """Number of classes."""
        return len(self.class_names)


def load_gan_dataset(annotations: Path, outcome: str, tfrecord_dir: Path, tile_px: int) -> GanDataset:
    """Match annotated slides to their TFRecords; UserError for anything that can't train a conditional GAN."""
    from synthhist.wsi.dataset import class_probs, tile_px_of
    from synthhist.wsi.labels import outcome_labels, read_annotations
    from synthhist.wsi.tfrecord import read_index

    labels, class_names = outcome_labels(read_annotations(annotations), outcome)
    if any(isinstance(v, float) for v in labels.values()):
        raise UserError(f"outcome '{outcome}' is continuous: the GAN is class-conditional (use a categorical column)")
    tfrecords, counts = [], {}
    for slide in sorted(labels):
        path = Path(tfrecord_dir) / f"{slide}.tfrecords"
        if path.is_file():
            n = len(read_index(path))
            if n:
                tfrecords.append(path)
                counts[slide] = n
    if not tfrecords:
        raise UserError(f"no tiles for the annotated slides in {tfrecord_dir} (extract tiles first)")
    used = {s: labels[s] for s in counts}
    per_class = np.bincount(list(used.values()), minlength=len(class_names))
    if len(class_names) < 2:
        raise UserError(f"outcome '{outcome}' has a single class ({class_names[0] if class_names else 'none'}): "
                        "a class-conditional GAN needs at least two")
    empty = [name for name, n in zip(class_names, per_class) if n == 0]
    if empty:
        raise UserError(f"class(es) {', '.join(empty)} of '{outcome}' have no tiles in {tfrecord_dir}")
    wrong = [(p.stem, px) for p in tfrecords if (px := tile_px_of(p)) != tile_px]
    if wrong:
        raise UserError(f"{len(wrong)} TFRecord(s) hold tiles of the wrong size, e.g. {wrong[0][0]}: "
                        f"{wrong[0][1]} px, the experiment's tile_px is {tile_px}")
    probs = class_probs(used, len(class_names))
    log.info(f"dataset: {len(tfrecords)} slides, {sum(counts.values())} tiles, classes "
             + ", ".join(f"{n} ({k} slides)" for n, k in zip(class_names, per_class)))
    return GanDataset(tfrecords, used, class_names, probs, sum(counts.values()), tile_px)


def real_batches(ds: GanDataset, batch: int, res: int, device: torch.device, rank: int, world_size: int,
                 seed: int, workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (img [batch, 3, res, res] float in [-1, 1], c [batch, c_dim]) of this process's shard.

    Every tile is drawn by its own slide pick (slides equally likely, as slideflow weights them; docs/slideflow.md
    §5.3), each slide's tiles reshuffled every pass: a batch, and each minibatch-stddev group in it, mixes slides
    and classes as NVIDIA's shuffled sampler does, where slideflow's chunks of 8 tiles made it one slide.
    """
    from synthhist.wsi.dataset import TorchTileDataset

    tiles = TorchTileDataset(ds.tfrecords, ds.labels, num_classes=ds.c_dim, onehot=True, augment="xyr",
                             rank=rank, world_size=world_size, seed=seed, infinite=True, chunk_size=1)
    loader = torch.utils.data.DataLoader(tiles, batch_size=batch, num_workers=workers,
                                         pin_memory=device.type == "cuda", drop_last=True,
                                         prefetch_factor=2 if workers else None, persistent_workers=workers > 0)
    while True:
        empty = True
        for img, c in loader:  # uint8 [B, 3, px, px], float [B, c_dim]
            empty = False
            img = img.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1
            if img.shape[-1] != res:
                img = F.interpolate(img, size=(res, res), mode="bilinear", antialias=True, align_corners=False)
            yield img, c.to(device, non_blocking=True)
        if empty:
            raise UserError("the tile reader yielded no batch (too few tiles for this rank/worker split)")


def fake_labels(ds: GanDataset, n: int, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    """[n, c_dim] one-hot labels drawn with the dataset's slides-per-class frequencies."""
    from synthhist.wsi.dataset import draw_classes

    idx = draw_classes(ds.class_probs, n, generator)
    return F.one_hot(idx, ds.c_dim).to(device=device, dtype=torch.float32)


def grid_reals(ds: GanDataset, per_class: int, res: int) -> torch.Tensor:
    """[c_dim * per_class, 3, res, res] in [-1, 1]: the first tiles of each class, taken from its slides in turn."""
    from synthhist.wsi.dataset import iter_tiles

    rows = []
    for k in range(ds.c_dim):
        readers = [iter_tiles(p) for p in ds.tfrecords if ds.labels[p.stem] == k]
        tiles: list[np.ndarray] = []
        while readers and len(tiles) < per_class:
            for r in list(readers):
                tile = next(r, None)
                if tile is None:
                    readers.remove(r)
                elif len(tiles) < per_class:
                    tiles.append(tile)
        tiles += [tiles[i % len(tiles)] for i in range(per_class - len(tiles))]  # a class with few tiles repeats
        rows.append(torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2))
    img = torch.cat(rows).to(torch.float32) / 127.5 - 1
    if img.shape[-1] != res:
        img = F.interpolate(img, size=(res, res), mode="bilinear", antialias=True, align_corners=False)
    return img
