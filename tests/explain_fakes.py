"""Tiny stand-ins honouring the Generator / GanNetwork / Classifier interfaces, for fast explain tests."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _n2m(x: torch.Tensor) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class ToyMapping(nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.embed = nn.Linear(c_dim, w_dim) if c_dim else None
        self.fc = nn.Linear(z_dim + (w_dim if c_dim else 0), w_dim)
        self.register_buffer("w_avg", torch.randn(w_dim) * 0.1)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = _n2m(z)
        if self.embed is not None:
            x = torch.cat([x, _n2m(self.embed(c))], dim=1)
        w = F.leaky_relu(self.fc(x), 0.2)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cut] = self.w_avg.lerp(ws[:, :cut], truncation_psi)
        return ws


class ToySynthesis(nn.Module):
    def __init__(self, w_dim, num_ws, res):
        super().__init__()
        self.res = res
        self.proj = nn.Parameter(torch.randn(num_ws, w_dim, 3 * res * res) / (w_dim * num_ws) ** 0.5)

    def forward(self, ws, noise_mode="const"):
        x = torch.einsum("niw,iwp->np", ws, self.proj)
        return torch.tanh(x).reshape(-1, 3, self.res, self.res)


class ToyGenerator(nn.Module):
    def __init__(self, z_dim=8, c_dim=2, w_dim=8, img_resolution=32):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.img_resolution, self.img_channels = z_dim, c_dim, w_dim, img_resolution, 3
        self.num_ws = 2 * int(np.log2(img_resolution)) - 2
        self.mapping = ToyMapping(z_dim, c_dim, w_dim, self.num_ws)
        self.synthesis = ToySynthesis(w_dim, self.num_ws, img_resolution)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, noise_mode="const"):
        return self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff), noise_mode=noise_mode)


class ToyNetwork:
    def __init__(self, G, tile_px=None, tile_um=None):
        self.G, self.c_dim, self.class_names = G, G.c_dim, None
        self.tile_px, self.tile_um, self.source = tile_px, tile_um, "toy"


class ToyClassifier:
    """Two-class 'classifier': p(class 1) = sigmoid(k * (mean red - mean blue)); or linear output in [-1, 1]."""

    def __init__(self, tile_px=16, tile_um=100.0, model_type="categorical", k=20.0):
        self.tile_px, self.tile_um, self.model_type, self.k = tile_px, tile_um, model_type, k
        self.outcomes = ["outcome"]
        self.outcome_labels = ["a", "b"] if model_type == "categorical" else []
        self.n_outputs = 2 if model_type == "categorical" else 1
        self.params = {"tile_px": tile_px, "tile_um": tile_um, "model_type": model_type}
        self.seen: list[tuple] = []

    def preprocess(self, x):
        return np.asarray(x, np.float32) / 255.0

    def predict(self, x):
        x = np.asarray(x)
        self.seen.append(x.shape)
        assert x.dtype == np.uint8 and x.shape[1:] == (self.tile_px, self.tile_px, 3)
        d = self.preprocess(x).mean(axis=(1, 2))
        s = (d[:, 0] - d[:, 2]) * self.k
        if self.model_type == "linear":
            return np.tanh(s)[:, None].astype(np.float32)
        p = 1 / (1 + np.exp(-s))
        return np.stack([1 - p, p], axis=1).astype(np.float32)
