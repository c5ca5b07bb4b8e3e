"""Opening whole-slide images with OpenSlide, with one clear error per unreadable slide."""

from __future__ import annotations

from pathlib import Path

import openslide

from synthhist.errors import UserError

def slide_name(path: str | Path) -> str:
    """Slide name = file name without its last extension (slideflow's path_to_name)."""
    return Path(path).stem


def open_slide(path: str | Path) -> openslide.OpenSlide:
    """OpenSlide handle of path; UserError naming the slide if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"slide {slide_name(path)}: file not found ({path})")
    try:
        return openslide.OpenSlide(str(path))
    except (openslide.OpenSlideError, OSError) as e:
        raise UserError(f"slide {slide_name(path)} is unreadable ({type(e).__name__}: {e})") from None


def slide_mpp(osr: openslide.OpenSlide, name: str) -> float:
    """Microns per level-0 pixel (openslide.mpp-x); UserError if the slide has none."""
    value = osr.properties.get(openslide.PROPERTY_NAME_MPP_X)
    try:
        mpp = float(value)
    except (TypeError, ValueError):
        raise UserError(f"slide {name} has no MPP (openslide.mpp-x missing); cannot size tiles in microns") from None
    if not mpp > 0:
        raise UserError(f"slide {name} has an invalid MPP ({value})")
    return mpp
