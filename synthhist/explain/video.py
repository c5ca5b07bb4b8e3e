"""Writing a blend sequence: MP4 (libx264, 30 fps), GIF, side-by-side strip PNG or numbered frames."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from synthhist.fileio import atomic_open
from synthhist.images import save_image


def pad_even(frames: np.ndarray) -> np.ndarray:
    """Pad [T, H, W, 3] frames by one row at the top / one column at the left when H / W is odd (yuv420p)."""
    ph, pw = frames.shape[1] % 2, frames.shape[2] % 2
    return np.pad(frames, ((0, 0), (ph, 0), (pw, 0), (0, 0))) if ph or pw else frames


def _atomic_media(path: Path, frames: np.ndarray, **kwargs) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        if path.suffix == ".mp4":
            with imageio.get_writer(tmp, format="FFMPEG", mode="I", **kwargs) as w:
                for f in frames:
                    w.append_data(f)
        else:
            imageio.mimsave(tmp, list(frames), format="GIF", **kwargs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 30) -> None:
    """Write uint8 frames [T, H, W, 3] as an H.264 MP4 (16M bitrate, odd sizes padded), atomically."""
    _atomic_media(Path(path), pad_even(frames), fps=fps, codec="libx264", bitrate="16M", macro_block_size=1,
                  pixelformat="yuv420p")


def write_gif(path: str | Path, frames: np.ndarray, fps: int = 30) -> None:
    """Write uint8 frames [T, H, W, 3] as a looping GIF, atomically."""
    _atomic_media(Path(path), frames, duration=1000 / fps, loop=0)


def write_strip(path: str | Path, frames: np.ndarray) -> None:
    """Paste frames [T, H, W, 3] left to right into one PNG [H, T*W, 3]."""
    save_image(path, np.concatenate(list(frames), axis=1), "png")


def stem(key: int | str) -> str:
    """Output name of a blend: seedNNNN for a seed, the projection's name for a projected tile."""
    return f"seed{key:04d}" if isinstance(key, int) else str(key)


def write_frames(outdir: str | Path, seed: int | str, frames: np.ndarray) -> None:
    """Save every frame as outdir/seed{seed:04d}-{i:03d}.png (outdir/<name>-{i:03d}.png for a projection)."""
    for i, f in enumerate(frames):
        save_image(Path(outdir) / f"{stem(seed)}-{i:03d}.png", f, "png")


class BlendWriter:
    """Outputs of one seed's blend in outdir: seedNNNN.mp4 / .gif / .png (strip), else numbered frames; + .csv."""

    def __init__(self, outdir: str | Path, steps: int, video: bool = False, gif: bool = False, merge: bool = False,
                 curve: bool = False):
        self.outdir, self.steps, self.video, self.gif, self.merge, self.curve = Path(outdir), steps, video, gif, merge, curve

    def paths(self, seed: int) -> list[Path]:
        """Every file written for this seed."""
        base = self.outdir / stem(seed)
        out = [base.with_suffix(s) for s, on in ((".mp4", self.video), (".gif", self.gif), (".png", self.merge)) if on]
        out = out or [self.outdir / f"{stem(seed)}-{i:03d}.png" for i in range(self.steps)]
        return out + ([base.with_suffix(".csv")] if self.curve else [])

    def done(self, seed: int) -> bool:
        """True when every output of this seed exists (an interrupted run skips it)."""
        return all(p.exists() for p in self.paths(seed))

    def write(self, seed: int, frames: np.ndarray, curve=None) -> None:
        """Save the frames [steps, H, W, 3] (and the prediction curve DataFrame) of one seed."""
        base = self.outdir / stem(seed)
        if curve is not None:
            with atomic_open(base.with_suffix(".csv"), "w") as f:
                curve.to_csv(f, index=False)
        if self.video:
            write_mp4(base.with_suffix(".mp4"), frames)
        if self.gif:
            write_gif(base.with_suffix(".gif"), frames)
        if self.merge:
            write_strip(base.with_suffix(".png"), frames)
        if not (self.video or self.gif or self.merge):
            write_frames(self.outdir, seed, frames)
