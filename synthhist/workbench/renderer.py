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
from synthhist.explain.bridge import Bridge
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


def png_data_url(img: np.ndarray) -> str:
    """HWC uint8 RGB -> 'data:image/png;base64,...' (fast compression)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class Renderer:
    """The loaded GAN and classifier and the images and predictions made with them."""

    def __init__(self, device: str | None = None):
        self.device = resolve_device(device)
        self.net = None
        self.clf = None

    def load(self, network: str | None = None, classifier: str | None = None) -> dict:
        """Load a network and/or a classifier (references as load_network/load_classifier take); returns info()."""
        if network is not None:
            from synthhist.gan import load_network

            self.net = load_network(network, device=self.device)
        if classifier is not None:
            from synthhist.classifier import load_classifier

            self.clf = load_classifier(classifier)
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
        R, clf = self.net.G.img_resolution, self.clf
        try:
            bridge = self.bridge()
        except UserError as e:
            return f"cannot feed the classifier: {e}"
        if not self.net.tile_um:
            return f"GAN tile size in µm unknown: the whole {R} px image is resized to {clf.tile_px} px"
        cw = crop_width(R, bridge.gan_um, bridge.clf_um)
        return (f"centre crop {bridge.gan_um:g} µm -> {bridge.clf_um:g} µm ({cw} of {R} px), "
                f"bicubic resize to {clf.tile_px} px")

    def bridge(self) -> Bridge:
        """GAN image -> classifier input (crop to the classifier's microns, resize to its px).

        When the GAN's microns are unknown the whole image is taken to cover the classifier's tile (resize only).
        """
        gan_um = self.net.tile_um or self.clf.tile_um or 1.0
        return Bridge(self.net.G.img_resolution, float(gan_um), int(self.clf.tile_px), float(self.clf.tile_um or gan_um))

    def _need_net(self):
        if self.net is None:
            raise UserError("no network loaded: choose one under 'Network'")
        return self.net.G

    def _check_class(self, k: int | None, what: str) -> None:
        c_dim = self.net.c_dim
        if c_dim == 0:
            if k is not None:
                raise UserError(f"{what} was given but the network is unconditional")
        elif k is None:
            raise UserError(f"the network is conditional: choose {what} (0 to {c_dim - 1})")
        elif k >= c_dim:
            raise UserError(f"{what} {k} is out of range: the network has {c_dim} classes (0 to {c_dim - 1})")

    def ws(self, p: ImageParams) -> torch.Tensor:
        """The w latents [1, num_ws, w_dim] for p (plain class, class blending, or layer blending)."""
        G = self._need_net()
        self._check_class(p.cls, "class A")
        z = z_from_seeds([p.seed], G.z_dim, self.device)
        if p.mode == "class":
            return G.mapping(z, onehot(p.cls, self.net.c_dim, 1, self.device), truncation_psi=p.psi)
        if self.net.c_dim == 0:
            raise UserError("blending needs a class-conditional network")
        self._check_class(p.end, "class B")
        if p.mode == "blend":
            return class_blend_ws(G, z, p.cls, p.end, p.t, p.psi, None)
        return layer_blend_ws(G, z, p.cls, p.end, p.layer_list(), p.f, p.psi, None)

    def _synthesize(self, ws: torch.Tensor, noise: str) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images [N, 3, R, R] float; 'random' noise is seeded (0) so renders repeat."""
        if noise == "random":
            torch.manual_seed(0)
        return self.net.G.synthesis(ws, noise_mode=noise)

    @torch.inference_mode()
    def render(self, p: ImageParams) -> dict:
        """Image (PNG data URL), classifier input and prediction for p, with the time taken."""
        t0 = time.perf_counter()
        img = self._synthesize(self.ws(p), p.noise)
        out = {"params": p.model_dump(), "image": png_data_url(to_uint8(img)[0].cpu().numpy()),
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

    def curve(self, p: CurveParams) -> Iterator[None]:
        """Classifier predictions at `steps` class-blend positions t = 0..1 for one seed.

        A generator run by the render worker: it yields after every batch, so renders requested meanwhile
        go first and a newer curve request replaces this one; its return value is the result.
        """
        G = self._need_net()
        if self.clf is None:
            raise UserError("no classifier loaded: choose one under 'Classifier'")
        if self.net.c_dim == 0:
            raise UserError("blending needs a class-conditional network")
        self._check_class(p.cls, "class A")
        self._check_class(p.end, "class B")
        bridge = self.bridge()
        return self._curve_steps(G, p, bridge)

    def _curve_steps(self, G, p: CurveParams, bridge: Bridge) -> Iterator[None]:
        t0 = time.perf_counter()
        z = z_from_seeds([p.seed], G.z_dim, self.device)
        ts = blend_steps(p.steps)
        batch = CURVE_BATCH if self.device.type == "cuda" else 1  # CPU: no gain from batching, finer steps
        preds = []
        for i in range(0, len(ts), batch):
            t = ts[i:i + batch].to(self.device)
            with torch.inference_mode():
                img = self._synthesize(class_blend_ws(G, z.expand(len(t), -1), p.cls, p.end, t, p.psi, None), p.noise)
                preds.append(np.asarray(self.clf.predict(bridge(img)), dtype=np.float64).reshape(len(t), -1))
            if i + batch < len(ts):
                yield
        values = np.concatenate(preds)  # [steps, n_out]
        labels = self._prediction(values[0])["labels"]
        return {"params": p.model_dump(), "t": ts.tolist(), "labels": labels, "values": values.T.tolist(),
                "type": self.clf.model_type, "ms": round((time.perf_counter() - t0) * 1000, 1)}
