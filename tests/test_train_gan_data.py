"""The GAN's real-batch sampler: slides mixed within every batch, each slide's tiles reshuffled every pass."""

import io

import numpy as np
import torch
from PIL import Image

from synthhist.gan.train.data import GanDataset, real_batches
from synthhist.wsi.tfrecord import write_tfrecord

PX = 8
TILES = 6


def _records(tmp_path, slides=4):
    """slides x TILES tiles; R encodes the slide, G the tile index; slides 0, 1 class 0, the rest class 1."""
    paths = []
    for s in range(slides):
        recs = []
        for i in range(TILES):
            img = np.zeros((PX, PX, 3), np.uint8)
            img[..., 0], img[..., 1] = 20 * s, 20 * i
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            recs.append({"slide": f"s{s}", "image_raw": buf.getvalue(), "loc_x": i, "loc_y": 0})
        write_tfrecord(tmp_path / f"s{s}.tfrecords", recs)
        paths.append(tmp_path / f"s{s}.tfrecords")
    labels = {f"s{s}": int(s >= slides // 2) for s in range(slides)}
    return GanDataset(paths, labels, ["x", "y"], np.array([0.5, 0.5]), slides * TILES, PX)


def _ids(img):
    """(slide, tile) of each image of a [-1, 1] batch."""
    u = ((img + 1) * 127.5).round().to(torch.int64)
    return [(int(x[0, 0, 0]) // 20, int(x[1, 0, 0]) // 20) for x in u]


def test_batches_mix_slides_and_reshuffle(tmp_path):
    ds = _records(tmp_path)
    data = real_batches(ds, 8, PX, torch.device("cpu"), 0, 1, seed=5, workers=0)
    batches = [next(data) for _ in range(60)]
    ids = [_ids(img) for img, _ in batches]
    for (img, c), batch_ids in zip(batches, ids):
        assert c.argmax(1).tolist() == [int(s >= 2) for s, _ in batch_ids]  # labels follow the slide
    # Every batch mixes slides (slideflow's chunks of 8 made each one slide), and most mix classes.
    assert all(len({s for s, _ in b}) > 1 for b in ids)
    assert sum(len({s >= 2 for s, _ in b}) == 2 for b in ids) > 40
    # Per slide: each pass of TILES draws shows every tile once, in a new order each pass.
    stream = [t for b in ids for t in b]
    for s in range(4):
        tiles = [i for slide, i in stream if slide == s]
        passes = [tuple(tiles[k:k + TILES]) for k in range(0, len(tiles) - TILES + 1, TILES)]
        assert len(passes) >= 10 and all(sorted(p) == list(range(TILES)) for p in passes)
        assert len(set(passes)) > 1
    # Slides equally likely (slideflow's per-slide weighting): ~120 of 480 draws each.
    counts = np.bincount([s for s, _ in stream], minlength=4)
    assert counts.min() > 80, counts
    # Batches do not repeat.
    assert len({tuple(b) for b in ids}) == len(ids)
