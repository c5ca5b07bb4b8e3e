"""What the workbench shows: generator images, the classifier's input and predictions, blend curves.

All methods run in the single render thread (synthhist.workbench.worker), never concurrently.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from synthhist.device import resolve_device
from synthhist.errors import UserError
from synthhist.explain.bridge import Bridge, gan_tile
from synthhist.gan.classes import resolve_class
from synthhist.gan.blend import PRESETS, blend_steps, class_blend_ws, layer_blend_ws, layer_names, layer_resolution, preset_layers
from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.images import crop_width, to_uint8
from synthhist.workbench.params import CurveParams, ImageParams

CURVE_BATCH = 8  # images synthesised at once for the blend curve on CUDA


def layer_groups(num_ws: int) -> list[dict]:
    """For each ws index: the resolution it styles, its group (coarse/middle/fine) and its layer name."""
    group = {i: g for g in PRESETS for i in preset_layers(g, num_ws)}
    return [{"index": i, "res": layer_resolution(i, num_ws), "group": group[i], "name": name}
            for i, name in enumerate(layer_names(num_ws))]


PREVIEW_COST = 0.15  # the first preview: the largest 'skip' RGB costing at most this fraction of the image
PREVIEW_RES = 128  # a second preview at this resolution, when it lies between the first and the full image


def preview_resolutions(G) -> list[int]:
    """Resolutions whose intermediate 'skip' RGB is sent before the full image (by the conv FLOPs of the blocks)."""
    if not _blockwise(G):
        return []
    synthesis, R = G.synthesis, G.img_resolution
    cost = [sum(m.weight.numel() for m in getattr(synthesis, f"b{r}").modules()
                if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() == 4) * r * r
            for r in synthesis.block_resolutions]  # multiply-adds of each block's convs, ~ their time
    done = np.cumsum(cost) / sum(cost)
    cheap = [r for r, f in zip(synthesis.block_resolutions, done) if f <= PREVIEW_COST and r < R]
    first = cheap[-1:] if cheap else []
    return first + ([PREVIEW_RES] if PREVIEW_RES < R and (not first or PREVIEW_RES > first[0]) else [])


def png_data_url(img: np.ndarray) -> str:
    """HWC uint8 RGB -> 'data:image/png;base64,...' (fast compression)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class Renderer:
    """The loaded GAN and classifier and the images and predictions made with them."""

    def __init__(self, device: str | None = None, gan_um: float | None = None):
        self.device = resolve_device(device)
        self.gan_um = gan_um  # --gan-um: the GAN's tile size in microns when its metadata lacks it
        self.net = None
        self.clf = None

    def load(self, network: str | None = None, classifier: str | None = None) -> dict:
        """Load a network and/or a classifier in this process (references as load_network/load_classifier take)."""
        net = clf = None
        if network is not None:
            from synthhist.gan import load_network

            net = load_network(network, device=self.device)
        if classifier is not None:
            from synthhist.classifier import load_classifier

            clf = load_classifier(classifier)
        return self.use(net, clf)

    def use(self, net=None, clf=None) -> dict:
        """Swap in a fully loaded network and/or classifier (None keeps the current one); returns info()."""
        self.net = net if net is not None else self.net
        self.clf = clf if clf is not None else self.clf
        return self.info()

    def info(self) -> dict:
        """What the page shows about the loaded network and classifier."""
        out: dict = {"device": str(self.device), "network": None, "classifier": None, "bridge": None}
        if self.net is not None:
            G = self.net.G
            names = self.net.class_names or [f"class {k}" for k in range(self.net.c_dim)]
            out["network"] = {
                "source": str(self.net.source), "resolution": G.img_resolution, "c_dim": self.net.c_dim,
                "class_names": list(names), "tile_px": self.net.tile_px, "tile_um": self.net.tile_um,
                "z_dim": G.z_dim, "w_dim": G.w_dim, "num_ws": G.num_ws,
                "previews": preview_resolutions(G),
                "layers": layer_groups(G.num_ws)}
        if self.clf is not None:
            out["classifier"] = {
                "source": str(getattr(self.clf, "source", "")), "tile_px": self.clf.tile_px,
                "tile_um": self.clf.tile_um, "model_type": self.clf.model_type,
                "outcome_labels": [str(x) for x in self.clf.outcome_labels]}
        if self.net is not None and self.clf is not None:
            out["bridge"] = self._bridge_text()
        return out

    def _bridge_text(self) -> str:
        """One line saying how GAN images become classifier inputs."""
        try:
            bridge = self.bridge()
        except UserError as e:
            return f"cannot feed the classifier: {e}"
        cw = crop_width(bridge.gan_px, bridge.gan_um, bridge.clf_um)
        return (f"centre crop {bridge.gan_um:g} µm -> {bridge.clf_um:g} µm ({cw} of {bridge.gan_px} px), "
                f"bicubic resize to {bridge.clf_px} px")

    def bridge(self, px: int | None = None) -> Bridge:
        """GAN image (of px pixels, default the full size) -> classifier input; UserError when the µm are unknown."""
        if not self.clf.tile_um:
            raise UserError("the classifier's tile size in microns is unknown (no tile_um in its params.json)")
        gan_px, gan_um = gan_tile(self.net, gan_um=self.gan_um)
        return Bridge.for_classifier(px or gan_px, gan_um, self.clf)

    def _need_net(self):
        if self.net is None:
            raise UserError("no network loaded: choose one under 'Network'")
        return self.net.G

    def _check_classes(self, classes: dict[str, int | None]) -> None:
        """Validate class indices {what: k} against the network (the one call site of the class validator)."""
        for what, k in classes.items():
            if k is None and self.net.c_dim:
                raise UserError(f"the network is conditional: choose {what} (0 to {self.net.c_dim - 1})")
            resolve_class(self.net, k, what)

    def ws(self, p: ImageParams) -> torch.Tensor:
        """The w latents [1, num_ws, w_dim] for p (plain class, class blending, or layer blending)."""
        G = self._need_net()
        self._check_classes({"class A": p.cls})
        z = z_from_seeds([p.seed], G.z_dim, self.device)
        if p.mode == "class":
            return G.mapping(z, onehot(p.cls, self.net.c_dim, 1, self.device), truncation_psi=p.psi)
        if self.net.c_dim == 0:
            raise UserError("blending needs a class-conditional network")
        self._check_classes({"class B": p.end})
        if p.mode == "blend":
            return class_blend_ws(G, z, p.cls, p.end, p.t, p.psi, None)
        return layer_blend_ws(G, z, p.cls, p.end, p.layer_list(), p.f, p.psi, None)

    def _synthesize(self, ws: torch.Tensor, noise: str, upto: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """(resolution, 'skip' RGB [N, 3, r, r]) after each synthesis block, up to resolution `upto`.

        'random' noise is seeded (0) so renders repeat; a network without blocks yields its image once."""
        if noise == "random":
            torch.manual_seed(0)
        synthesis = self.net.G.synthesis
        if not _blockwise(self.net.G):
            yield self.net.G.img_resolution, synthesis(ws, noise_mode=noise)
            return
        for res, img in synthesis.blockwise(ws, noise_mode=noise):
            yield res, img
            if upto is not None and res >= upto:
                return

    @torch.inference_mode()
    def render(self, p: ImageParams) -> Iterator[dict | None]:
        """Image (PNG data URL), classifier input and prediction for p, with the time taken.

        A generator run by the render worker: it yields after every synthesis block (so a newer request
        replaces it there) and yields the previews (the 'skip' RGB at preview_resolutions) first; returns the result."""
        t0 = time.perf_counter()
        G = self._need_net()
        R, previews = G.img_resolution, preview_resolutions(G)
        for res, img in self._synthesize(self.ws(p), p.noise):
            if res in previews:
                yield {"stage": "preview", "params": p.model_dump(), "resolution": res,
                       "image": png_data_url(to_uint8(img)[0].cpu().numpy()),
                       "ms": round((time.perf_counter() - t0) * 1000, 1)}
            elif res < R:
                yield None
        out = {"stage": "final", "params": p.model_dump(), "resolution": R,
               "image": png_data_url(to_uint8(img)[0].cpu().numpy()),
               "clf_image": None, "prediction": None, "error": None}
        if self.clf is not None:
            try:
                x = self.bridge()(img)  # [1, px, px, 3] uint8
            except UserError as e:  # the image still shows; the page prints why there is no prediction
                out["error"] = str(e)
            else:
                out["clf_image"] = png_data_url(x[0])
                out["prediction"] = self._prediction(np.asarray(self.clf.predict(x))[0])
        out["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return out

    def _prediction(self, values: np.ndarray) -> dict:
        """Labelled prediction of one image (outputs [n_out]) as the page shows it."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        labels = [str(x) for x in self.clf.outcome_labels]
        if len(labels) != len(values):
            labels = [f"output {k}" for k in range(len(values))]
        top = labels[int(np.argmax(values))] if self.clf.model_type == "categorical" else None
        return {"labels": labels, "values": values.tolist(), "type": self.clf.model_type, "top": top}

    def curve(self, p: CurveParams) -> Iterator[dict | None]:
        """Classifier predictions at `steps` class-blend positions t = 0..1 for one seed.

        A generator run by the render worker: it yields after every batch, so renders requested meanwhile
        go first and a newer curve request replaces this one. It yields the curve from preview images
        first (stage 'preview'), then refines it at full resolution; its return value is the result.
        """
        G = self._need_net()
        if self.clf is None:
            raise UserError("no classifier loaded: choose one under 'Classifier'")
        if self.net.c_dim == 0:
            raise UserError("blending needs a class-conditional network")
        self._check_classes({"class A": p.cls, "class B": p.end})
        self.bridge()
        return self._curve_steps(G, p)

    def _curve_steps(self, G, p: CurveParams) -> Iterator[dict | None]:
        t0 = time.perf_counter()
        z = z_from_seeds([p.seed], G.z_dim, self.device)
        ts = blend_steps(p.steps)
        batch = CURVE_BATCH if self.device.type == "cuda" else 1  # CPU: no gain from batching, finer steps
        R, previews = G.img_resolution, preview_resolutions(G)
        passes = [R]  # a first pass at the first preview's resolution, when its crop keeps a few pixels
        if previews and crop_width(previews[0], self.bridge().gan_um, float(self.clf.tile_um)) >= 2:
            passes = [previews[0], R]
        for res in passes:
            bridge = self.bridge(res)
            preds = []
            for i in range(0, len(ts), batch):
                t = ts[i:i + batch].to(self.device)
                with torch.inference_mode():
                    ws = class_blend_ws(G, z.expand(len(t), -1), p.cls, p.end, t, p.psi, None)
                    for _, img in self._synthesize(ws, p.noise, upto=res):
                        pass
                    preds.append(np.asarray(self.clf.predict(bridge(img)), dtype=np.float64).reshape(len(t), -1))
                if i + batch < len(ts):
                    yield None
            values = np.concatenate(preds)  # [steps, n_out]
            out = {"stage": "preview" if res < R else "final", "resolution": res, "params": p.model_dump(),
                   "t": ts.tolist(), "labels": self._prediction(values[0])["labels"], "values": values.T.tolist(),
                   "type": self.clf.model_type, "ms": round((time.perf_counter() - t0) * 1000, 1)}
            if res < R:
                yield out
        return out


def _blockwise(G) -> bool:
    """True when G's synthesis network can run block by block (ours; test stand-ins may not)."""
    return hasattr(G.synthesis, "blockwise")
