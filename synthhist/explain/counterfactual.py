"""Counterfactuals of a real tile: class blending applied to its projected latent (projected_w.npz).

Class blending of a seed maps one z with the blended label embedding e(t) = (1-t) e_start + t e_end
(synthhist.gan.blend). A real tile has no z, only its projected ws. Its counterfactual at t moves those ws by
the change that class blending makes on average:

    w_cf(t) = w_proj + (w_bar(t) - w_bar(0)),   w_bar(t) = mean over z of mapping(z, (1-t) onehot(start) + t onehot(end))

with the same N_CF z for every t (so the direction is smooth in t), added to every ws row (also for w+). With
layer blending of ws indices L the change is added on those rows only, with f = t. At t = 0 the frame is the
reconstruction itself; the projected noise maps are kept throughout (noise mode const). The direction is
computed once per (network, start, end, steps) and shared by every projection.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable, Iterator

import click
import numpy as np
import pandas as pd
import torch

from synthhist.errors import UserError
from synthhist.explain.bridge import Bridge, predict_stream
from synthhist.explain.interpolate import blend_chunks, prediction_curves
from synthhist.explain.projection import Projection, load_projection, projected_noise
from synthhist.gan.blend import blend_steps, check_conditional, check_layers
from synthhist.gan.latent import soft_label
from synthhist.images import to_uint8

log = logging.getLogger("synthhist")
N_CF = 2000
PROJECTION_FILE = "projected_w.npz"


@torch.no_grad()
def class_direction(G, start: int, end: int, t: torch.Tensor, n: int = N_CF, seed: int = 123) -> torch.Tensor:
    """w_bar(t) - w_bar(0) for every blend fraction t [T]: [T, w_dim] float32."""
    check_conditional(G, start, end)
    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim).astype(np.float32)).to(device)
    labels = soft_label(start, end, torch.cat([torch.zeros(1), t.float().cpu()]), G.c_dim, device)  # [T+1, c_dim]
    means = torch.stack([G.mapping(z, c.expand(n, -1))[:, 0].float().mean(0) for c in labels])  # [T+1, w_dim]
    return means[1:] - means[:1]


def counterfactual_ws(w_proj: torch.Tensor, delta: torch.Tensor, layers: list[int] | None = None) -> torch.Tensor:
    """w_proj [1, num_ws, w_dim] + delta [T, w_dim] on every row (or only on `layers`): [T, num_ws, w_dim]."""
    ws = w_proj.expand(delta.shape[0], -1, -1).clone()
    rows = slice(None) if layers is None else torch.as_tensor(layers, dtype=torch.long, device=ws.device)
    ws[:, rows] += delta[:, None]
    return ws


def find_projections(ref: str | Path) -> dict[str, Path]:
    """{name: path} of one projected_w.npz (name: its folder) or of every projection in a folder tree."""
    ref = Path(ref)
    if ref.is_file():
        return {safe_name(ref.parent.name if ref.name == PROJECTION_FILE else ref.stem): ref}
    if not ref.is_dir():
        raise UserError(f"--projected {ref}: no such file or folder")
    found = sorted(ref.rglob(PROJECTION_FILE))
    if not found:
        raise UserError(f"--projected {ref}: no {PROJECTION_FILE} in this folder (run project.py first)")
    return {safe_name(str(p.parent.relative_to(ref)) if p.parent != ref else ref.name): p for p in found}


def safe_name(name: str) -> str:
    """A projection's output name: its folder path with '/', '.' and spaces as '_'."""
    return re.sub(r"[/\\. ]", "_", name) or "projection"


def load_projections(ref: str | Path, G) -> dict[str, Projection]:
    """Every projection under --projected, checked to fit G."""
    return {name: load_projection(p, G) for name, p in find_projections(ref).items()}


def counterfactual_renderer(G, projections: dict[str, Projection], start: int, end: int, steps: int,
                            layers: list[int] | None, noise_mode: str, device: torch.device
                            ) -> Callable[[tuple], torch.Tensor]:
    """render((name, i0, t [B])) -> frames [B, 3, R, R] of that projection's counterfactual at those steps."""
    if layers is not None:
        check_layers(layers, G.num_ws)
    delta = class_direction(G, start, end, blend_steps(steps)).to(device)  # [steps, w_dim]
    w = {k: torch.from_numpy(p.w).to(device) for k, p in projections.items()}

    def render(chunk: tuple) -> torch.Tensor:
        name, i0, t = chunk
        ws = counterfactual_ws(w[name], delta[i0:i0 + len(t)], layers)
        with projected_noise(G, projections[name].noise if noise_mode == "const" else {}):
            return G.synthesis(ws, noise_mode=noise_mode)
    return render


def counterfactual_frames(G, projections: dict[str, Projection], start: int, end: int, steps: int,
                          layers: list[int] | None = None, noise_mode: str = "const", batch: int = 16,
                          device: torch.device | str = "cpu") -> Iterator[tuple[str, np.ndarray]]:
    """(name, frames uint8 [steps, R, R, 3]) for every projection, from its reconstruction to its counterfactual."""
    render = counterfactual_renderer(G, projections, start, end, steps, layers, noise_mode, torch.device(device))
    with torch.inference_mode():
        for name in projections:
            yield name, np.concatenate([to_uint8(render(c)).cpu().numpy() for c in blend_chunks([name], steps, batch)])


def counterfactual_predictions(G, projections: dict[str, Projection], start: int, end: int, steps: int,
                               bridge: Bridge, clf, layers: list[int] | None = None, noise_mode: str = "const",
                               batch: int = 16, device: torch.device | str = "cpu", keep_frames: bool = False
                               ) -> Iterator[tuple[str, pd.DataFrame, np.ndarray | None]]:
    """Per projection: (name, DataFrame step, t, pred0.. [steps rows], frames or None), as blend_predictions."""
    render = counterfactual_renderer(G, projections, start, end, steps, layers, noise_mode, torch.device(device))
    yield from prediction_curves(predict_stream(blend_chunks(list(projections), steps, batch), render, bridge, clf,
                                                keep_frames=keep_frames), steps, keep_frames)


def plot_curve(path: str | Path, curve: pd.DataFrame, title: str) -> None:
    """Line plot of every pred column against t, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthhist.fileio import atomic_open

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for col in curve.columns[2:]:
        ax.plot(curve["t"], curve[col], label=col)
    ax.set(xlabel="t (start class -> end class)", ylabel="prediction", title=title, ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def projected_blends(net, projected: str | Path, writer, start: int, end: int, *, steps: int,
                     layers: list[int] | None, noise_mode: str, batch: int, device: torch.device,
                     bridge: Bridge | None = None, clf=None) -> int:
    """interpolate.py --projected: every projection's counterfactual as strip/video/frames (+ CSV and plot with a
    classifier); writer: explain.video.BlendWriter. Returns how many were written."""
    from synthhist.explain.interpolate import format_curve, label_columns

    projections = load_projections(projected, net.G)
    todo = {k: p for k, p in projections.items() if not writer.done(k)}
    if len(todo) < len(projections):
        log.info(f"{len(projections) - len(todo)} projections already done in {writer.outdir}: skipped")
    if clf is not None:
        for name, curve, frames in counterfactual_predictions(net.G, todo, start, end, steps, bridge, clf, layers,
                                                              noise_mode, batch, device, keep_frames=True):
            curve = label_columns(curve, clf)
            click.echo("\n".join(line.replace("seed 0 ", f"{name} ", 1) for line in format_curve(0, curve)))
            writer.write(name, frames, curve)
            plot_curve(Path(writer.outdir) / f"{name}-pred.png", curve, f"{name}: class {start} -> {end}")
    else:
        for name, frames in counterfactual_frames(net.G, todo, start, end, steps, layers, noise_mode, batch, device):
            writer.write(name, frames)
    return len(todo)


def projection_concordance(out: Path, projected: str | Path, opts) -> pd.DataFrame:
    """concordance.py --projected: per projection, predictions on the real tile (its target.png, when beside the
    npz), the reconstruction (t = 0) and the counterfactual (t = 1) -> CSV tile, pred_target, pred_start,
    pred_end, concordance; prints the share of each concordance level. opts: explain.search.SearchOptions."""
    from synthhist.device import resolve_device
    from synthhist.explain.concordance import concordance, default_outcome, percentages
    from synthhist.explain.loading import default_batch, load_bridge, load_gan, resolve_models
    from synthhist.fileio import atomic_open

    network, classifier = resolve_models(opts.network, opts.classifier)
    dev = resolve_device(opts.device)
    net, start, end = load_gan(network, opts.start, opts.end, dev)
    clf, bridge = load_bridge(net, classifier, opts.gan_px, opts.gan_um, verbose=opts.verbose,
                              trust=opts.trust_classifier)
    idx, th = default_outcome(clf, opts.outcome_idx, (opts.thresh_low, opts.thresh_mid, opts.thresh_high))
    noise_mode, batch = opts.noise_mode, opts.batch
    paths = find_projections(projected)
    projections = {k: load_projection(p, net.G) for k, p in paths.items()}
    rows = []
    for name, curve, _ in counterfactual_predictions(net.G, projections, start, end, 2, bridge, clf, None, noise_mode,
                                                     default_batch(batch, dev), dev):
        target = paths[name].parent / "target.png"
        pt = float("nan")
        if target.is_file():
            from synthhist.explain.target import decode_rgb

            x = torch.from_numpy(decode_rgb(target.read_bytes(), str(target)).copy())[None]
            if x.shape[1] == net.G.img_resolution:
                pt = float(np.asarray(clf.predict(bridge.from_uint8(x)))[0, idx])
        rows.append({"tile": name, "pred_target": pt, "pred_start": float(curve[f"pred{idx}"].iloc[0]),
                     "pred_end": float(curve[f"pred{idx}"].iloc[-1])})
    df = pd.DataFrame(rows)
    df["concordance"] = concordance(df["pred_start"], df["pred_end"], th)
    with atomic_open(out, "w") as f:
        df.to_csv(f, index=False)
    for k, v in percentages(df).items():
        click.echo(f"{k}: {v:.1f}% ({int((df['concordance'] == k).sum())}/{len(df)} tiles)")
    return df
