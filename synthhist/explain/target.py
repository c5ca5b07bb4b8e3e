"""A real tile as a projection target: read a PNG/JPEG or a TFRecord record, crop/resize it to the GAN's tile.

When the tile's own size in microns is known (TFRecord tiles: from the `<px>px_<um>um` folder name that tile
extraction writes), it is centre-cropped to the GAN's microns and resized to the GAN's pixels with the
project's one crop/resize (synthhist.images.centre_crop_resize). Otherwise the centre square is resized.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import torch

from synthhist.errors import UserError
from synthhist.images import centre_crop_resize

log = logging.getLogger("synthhist")
TILE_DIR = re.compile(r"(\d+)px_(\d+(?:\.\d+)?)um")
MIN_FRACTION = 0.5  # a target below half the GAN's tile size (px) is refused


def decode_rgb(data: bytes, where: str) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 [H, W, 3]; UserError when not an image or not RGB (opaque RGBA is accepted)."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except (UnidentifiedImageError, OSError, ValueError):
        raise UserError(f"{where} is not an image (PNG or JPEG expected)") from None
    if im.mode == "RGBA" and im.getextrema()[3][0] == 255:
        im = im.convert("RGB")
    if im.mode != "RGB":
        n = len(im.getbands())
        raise UserError(f"{where} has {n} channel{'s' * (n != 1)} ({im.mode}); an RGB tile is needed")
    return np.asarray(im)


def tile_size_from_path(path: str | Path) -> tuple[int, float] | None:
    """(px, um) from a `<px>px_<um>um` folder name on the path, else None."""
    for part in reversed(Path(path).resolve().parts[:-1]):
        m = TILE_DIR.fullmatch(part)
        if m:
            return int(m.group(1)), float(m.group(2))
    return None


def read_tfrecord_tile(path: str | Path, index: int) -> np.ndarray:
    """The tile at record `index` of a TFRecord: uint8 [H, W, 3]."""
    from synthhist.wsi.tfrecord import read_index, read_records_at

    path = Path(path)
    if not path.is_file():
        raise UserError(f"TFRecord not found: {path}")
    offsets = read_index(path)
    if not 0 <= index < len(offsets):
        raise UserError(f"--index {index} is out of range: {path.name} has {len(offsets)} tiles (0 to {len(offsets) - 1})")
    rec = next(read_records_at(path, [offsets[index][0]], verify=True))
    return decode_rgb(rec["image_raw"], f"record {index} of {path}")


def to_gan_tile(img: np.ndarray, gan_px: int, gan_um: float | None, tile_um: float | None = None) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [gan_px, gan_px, 3]: centre square, crop to gan_um when tile_um is known, resize."""
    h, w = img.shape[:2]
    side = min(h, w)
    if side < MIN_FRACTION * gan_px:
        raise UserError(f"the target is {w}x{h} px, far smaller than the GAN's {gan_px} px tile")
    y, x = (h - side) // 2, (w - side) // 2
    sq = torch.from_numpy(np.array(img[y:y + side, x:x + side]))[None]  # [1, side, side, 3]
    if tile_um and gan_um:
        if gan_um > tile_um * (1 + 1e-6):
            raise UserError(f"the target covers {tile_um:g} um, less than the GAN's {gan_um:g} um tile: "
                            "extract tiles of at least the GAN's size")
        return centre_crop_resize(sq, side, tile_um, gan_px, gan_um)[0].numpy()
    if side != gan_px:
        log.info(f"target size in microns unknown: its centre {side} px square is resized to {gan_px} px")
    return centre_crop_resize(sq, side, 1.0, gan_px, 1.0)[0].numpy()


def load_target(gan_px: int, gan_um: float | None, image: str | Path | None = None,
                tfrecord: str | Path | None = None, index: int | None = None) -> np.ndarray:
    """The target tile from an image file or a TFRecord record, as uint8 [gan_px, gan_px, 3]."""
    if (image is None) == (tfrecord is None):
        raise UserError("give either --target IMAGE or --tfrecord FILE --index I")
    if image is not None:
        path = Path(image)
        if not path.is_file():
            raise UserError(f"target not found: {path}")
        return to_gan_tile(decode_rgb(path.read_bytes(), str(path)), gan_px, gan_um)
    if index is None:
        raise UserError("--tfrecord needs --index (the tile's record number, from 0)")
    size = tile_size_from_path(tfrecord)
    if size is None:
        log.info(f"{tfrecord}: no <px>px_<um>um folder name, the tile's size in microns is unknown")
    return to_gan_tile(read_tfrecord_tile(tfrecord, index), gan_px, gan_um, size[1] if size else None)
