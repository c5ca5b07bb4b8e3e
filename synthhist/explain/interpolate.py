"""Blend sequences for one seed: frames from class (or layer) blending, optionally with predictions per frame.

Frame i of `steps` uses t_i = i/(steps-1): class blending e(t) = (1-t)*e_start + t*e_end (docs/stylegan2.md §4.2), or,
with `layers`, layer blending of those ws indices with f = t (docs/stylegan2.md §4.3). Frames are uint8 by the project's
one conversion (synthhist.images.to_uint8), so frame 0 equals generate.py's image of the start class.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch

from synthhist.explain.bridge import Bridge, Timings, predict_stream
from synthhist.gan.blend import blend_steps, blend_ws, check_conditional
from synthhist.gan.latent import z_from_seed
from synthhist.images import to_uint8
from synthhist.progress import Progress

log = logging.getLogger("synthhist")

Chunk = tuple[int, int, torch.Tensor]  # (seed, index of the first step, t values [B])


def blend_chunks(seeds: list[int], steps: int, batch: int) -> list[Chunk]:
    """Split every seed's `steps` blend fractions into batches of at most `batch` frames."""
    ts = blend_steps(steps)
    return [(s, i, ts[i:i + batch]) for s in seeds for i in range(0, steps, batch)]


def blend_renderer(G, start: int, end: int, layers: list[int] | None, psi: float, noise_mode: str,
                   device: torch.device) -> Callable[[Chunk], torch.Tensor]:
    """render((seed, i0, t [B])) -> images [B, 3, R, R] of that seed at those blend fractions."""
    check_conditional(G, start, end)

    def render(chunk: Chunk) -> torch.Tensor:
        seed, _, t = chunk
        z = torch.from_numpy(z_from_seed(seed, G.z_dim)).to(device).expand(len(t), -1)  # [B, z_dim]
        return G.synthesis(blend_ws(G, z, start, end, t.to(device), layers, psi), noise_mode=noise_mode)
    return render


def blend_frames(G, seed: int, start: int, end: int, steps: int, layers: list[int] | None = None, psi: float = 1,
                 noise_mode: str = "const", batch: int = 16, device: torch.device | str = "cpu") -> np.ndarray:
    """All frames of one seed's blend: uint8 [steps, R, R, 3]."""
    render = blend_renderer(G, start, end, layers, psi, noise_mode, torch.device(device))
    with torch.inference_mode():
        return np.concatenate([to_uint8(render(c)).cpu().numpy() for c in blend_chunks([seed], steps, batch)])


def blend_predictions(G, seeds: list[int], start: int, end: int, steps: int, bridge: Bridge, clf,
                      layers: list[int] | None = None, psi: float = 1, noise_mode: str = "const", batch: int = 16,
                      device: torch.device | str = "cpu", keep_frames: bool = False, timings: Timings | None = None
                      ) -> Iterator[tuple[int, pd.DataFrame, np.ndarray | None]]:
    """Per seed (in order): (seed, DataFrame step, t, pred0..pred{n-1} [steps rows], frames uint8 or None)."""
    render = blend_renderer(G, start, end, layers, psi, noise_mode, torch.device(device))
    yield from prediction_curves(predict_stream(blend_chunks(seeds, steps, batch), render, bridge, clf,
                                                timings=timings, keep_frames=keep_frames), steps, keep_frames)


def prediction_curves(stream: Iterator, steps: int, keep_frames: bool
                      ) -> Iterator[tuple[object, pd.DataFrame, np.ndarray | None]]:
    """predict_stream chunks over blend_chunks -> per key (seed or name): (key, DataFrame step, t, pred0.., frames)."""
    preds: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    for (key, i0, t), p, f in stream:
        preds.append(p)
        frames.append(f)
        if i0 + len(t) == steps:  # last chunk of this key
            p = np.concatenate(preds)
            df = pd.DataFrame({"step": np.arange(steps), "t": blend_steps(steps).numpy()})
            for k in range(p.shape[1]):
                df[f"pred{k}"] = p[:, k]
            yield key, df, (np.concatenate(frames) if keep_frames else None)
            preds, frames = [], []


def label_columns(curve: pd.DataFrame, clf) -> pd.DataFrame:
    """Rename pred{k} to pred_<outcome label> when the classifier names its outputs."""
    labels = list(clf.outcome_labels or [])
    if len(labels) != curve.shape[1] - 2:
        return curve
    return curve.rename(columns={f"pred{k}": f"pred_{name}" for k, name in enumerate(labels)})


def format_curve(seed: int, curve: pd.DataFrame) -> list[str]:
    """One printable line per frame: 'seed 3 step  10 t 0.101: pred_a=0.1234 pred_b=0.8766'."""
    cols = list(curve.columns[2:])
    return [f"seed {seed} step {int(r[0]):3d} t {r[1]:.3f}: " + " ".join(f"{c}={v:.4f}" for c, v in zip(cols, r[2:]))
            for r in curve.itertuples(index=False)]


def write_blends(G, seeds: list[int], writer, start: int, end: int, *, steps: int, layers: list[int] | None = None,
                 psi: float = 1, noise_mode: str = "const", batch: int = 16, device: torch.device | str = "cpu",
                 bridge: Bridge | None = None, clf=None, echo: Callable[[str], None] | None = None) -> int:
    """Blend every seed and save it with writer (a BlendWriter); with clf also predict every frame (curve CSV,
    one printed line per frame through echo). Seeds whose outputs exist are skipped; returns the number written."""
    todo = [s for s in seeds if not writer.done(s)]
    if len(todo) < len(seeds):
        log.info(f"{len(seeds) - len(todo)} seeds already done in {writer.outdir}: skipped")
    with Progress(total=len(todo), unit="seed", desc="interpolate") as bar:
        if clf is not None:
            for seed, curve, frames in blend_predictions(G, todo, start, end, steps, bridge, clf, layers, psi,
                                                         noise_mode, batch, device, keep_frames=True):
                curve = label_columns(curve, clf)
                if echo is not None:
                    echo("\n".join(format_curve(seed, curve)))
                writer.write(seed, frames, curve)
                bar.update()
        else:
            for seed in todo:
                writer.write(seed, blend_frames(G, seed, start, end, steps, layers, psi, noise_mode, batch, device))
                bar.update()
    return len(todo)
