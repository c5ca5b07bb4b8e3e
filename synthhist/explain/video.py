"""Writing a blend sequence: MP4 (libx264, 30 fps by default), GIF, side-by-side strip PNG or numbered frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synthhist.errors import UserError
from synthhist.fileio import atomic_open, atomic_path
from synthhist.images import MAX_TILE_PX, save_image


MAX_FPS = 240
MIN_SHOWN_PX = 256  # videos, GIFs and strips of smaller networks are upscaled smoothly to this size by default


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Smoothly resize uint8 frames [T, H, W, 3] to [T, size, size, 3] (bicubic; antialiased when shrinking)."""
    if frames.shape[1] == frames.shape[2] == size:
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=size < frames.shape[1])
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def pad_even(frames: np.ndarray) -> np.ndarray:
    """Pad [T, H, W, 3] frames by one row at the top / one column at the left when H / W is odd (yuv420p)."""
    ph, pw = frames.shape[1] % 2, frames.shape[2] % 2
    return np.pad(frames, ((0, 0), (ph, 0), (pw, 0), (0, 0))) if ph or pw else frames


def _atomic_media(path: Path, frames: np.ndarray, **kwargs) -> None:
    import imageio.v2 as imageio

    with atomic_path(path) as tmp:  # same permissions as every other output
        if path.suffix == ".mp4":
            with imageio.get_writer(tmp, format="FFMPEG", mode="I", **kwargs) as w:
                for f in frames:
                    w.append_data(f)
        else:
            imageio.mimsave(tmp, list(frames), format="GIF", **kwargs)


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
                 curve: bool = False, *, fps: int = 30, size: int | None = None):
        if not 1 <= fps <= MAX_FPS:
            raise UserError(f"--fps must be between 1 and {MAX_FPS}, got {fps}")
        if size is not None and not 8 <= size <= MAX_TILE_PX:
            raise UserError(f"--size must be between 8 and {MAX_TILE_PX} px, got {size}")
        self.outdir, self.steps, self.video, self.gif, self.merge, self.curve = Path(outdir), steps, video, gif, merge, curve
        self.fps, self.size = fps, size

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
        """Save the frames [steps, H, W, 3] (and the prediction curve DataFrame) of one seed (or projection name).

        Videos, GIFs and strips are resized to `size` px first when it is set, else frames smaller than
        MIN_SHOWN_PX are upscaled to it; numbered frames stay as generated.
        """
        base = self.outdir / stem(seed)
        if curve is not None:
            with atomic_open(base.with_suffix(".csv"), "w") as f:
                curve.to_csv(f, index=False)
        shown = resize_frames(frames, self.size or max(frames.shape[1], MIN_SHOWN_PX)) \
            if self.video or self.gif or self.merge else frames
        if self.video:
            write_mp4(base.with_suffix(".mp4"), shown, self.fps)
        if self.gif:
            write_gif(base.with_suffix(".gif"), shown, self.fps)
        if self.merge:
            write_strip(base.with_suffix(".png"), shown)
        if not (self.video or self.gif or self.merge):
            write_frames(self.outdir, seed, frames)
