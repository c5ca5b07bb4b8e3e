"""GAN images -> classifier predictions (docs/slideflow.md §6.2), batched and pipelined.

Per batch: generator output [N, 3, R, R] float -> synthhist.images.to_uint8 -> centre crop from the GAN's
tile_um to the classifier's tile_um -> antialiased bicubic resize to the classifier's tile_px -> uint8
NHWC numpy -> clf.predict (the classifier applies its own normaliser and standardisation).

A producer thread runs the generator and the crop/resize while the calling thread runs the classifier,
through a bounded queue, so neither waits for the other longer than it must.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from synthhist.images import TileCrop, gan_tile_size, to_uint8


def gan_tile(net, gan_px: int | None = None, gan_um: float | None = None) -> tuple[int, float]:
    """The GAN's tile size (px, um): from --gan-px/--gan-um when given, else the network's metadata."""
    return gan_tile_size(net.G.img_resolution, meta_px=net.tile_px, meta_um=net.tile_um, gan_px=gan_px, gan_um=gan_um)


class Bridge:
    """Convert generator output to the classifier's uint8 input: crop to its tile_um, resize to its tile_px."""

    def __init__(self, gan_px: int, gan_um: float, clf_px: int, clf_um: float):
        self.crop = TileCrop(int(gan_px), float(gan_um), int(clf_px), float(clf_um))  # validates the geometry once
        self.gan_px, self.gan_um, self.clf_px, self.clf_um = gan_px, gan_um, clf_px, clf_um

    @classmethod
    def for_classifier(cls, gan_px: int, gan_um: float, clf) -> "Bridge":
        """Bridge from a GAN tile to the tile size of a loaded classifier."""
        return cls(gan_px, gan_um, int(clf.tile_px), float(clf.tile_um))

    def __call__(self, img: torch.Tensor) -> np.ndarray:
        """[N, 3, R, R] float (-1..1) on any device -> [N, clf_px, clf_px, 3] uint8 numpy."""
        return self.from_uint8(to_uint8(img))

    def from_uint8(self, x: torch.Tensor) -> np.ndarray:
        """[N, R, R, 3] uint8 tensor (to_uint8 output) -> [N, clf_px, clf_px, 3] uint8 numpy."""
        return self.crop(x).cpu().numpy()


@dataclass
class Timings:
    """Seconds spent in each stage (summed over batches; stages overlap in wall time)."""
    generator: float = 0.0
    bridge: float = 0.0
    classifier: float = 0.0
    wall: float = 0.0


_DONE = object()


def predict_stream(items: Iterable[Any], render: Callable[[Any], torch.Tensor], bridge: Bridge, clf,
                   depth: int = 2, timings: Timings | None = None, keep_frames: bool = False
                   ) -> Iterator[tuple[Any, np.ndarray, np.ndarray | None]]:
    """For each item, render(item) -> images on a producer thread, bridge them, predict here.

    Yields (item, preds [N, n_out], frames): frames are the full uint8 images [N, R, R, 3] when keep_frames,
    else None. `depth` bounds the number of converted batches waiting for the classifier (memory stays bounded).
    Errors in the producer are re-raised here; leaving the loop early stops the producer.
    """
    t = timings if timings is not None else Timings()
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(obj) -> bool:
        while not stop.is_set():
            try:
                q.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with torch.inference_mode():
                for item in items:
                    t0 = time.perf_counter()
                    img = render(item)
                    if img.is_cuda:
                        torch.cuda.synchronize(img.device)
                    t1 = time.perf_counter()
                    x8 = to_uint8(img)  # [N, R, R, 3]
                    x = bridge.from_uint8(x8)
                    frames = x8.cpu().numpy() if keep_frames else None
                    t.generator += t1 - t0
                    t.bridge += time.perf_counter() - t1
                    if not put((item, x, frames)):
                        return
            put(_DONE)
        except BaseException as e:  # handed to the consumer, re-raised there
            put(e)

    start = time.perf_counter()
    worker = threading.Thread(target=produce, name="gan-producer", daemon=True)
    worker.start()
    try:
        while True:
            got = q.get()
            if got is _DONE:
                break
            if isinstance(got, BaseException):
                raise got
            item, x, frames = got
            t0 = time.perf_counter()
            preds = np.asarray(clf.predict(x))
            t.classifier += time.perf_counter() - t0
            yield item, preds, frames
    finally:
        stop.set()
        worker.join()
        t.wall += time.perf_counter() - start
