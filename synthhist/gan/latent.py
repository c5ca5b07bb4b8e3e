"""Latents and labels exactly as the reference generate scripts make them."""

from __future__ import annotations

import numpy as np
import torch

from synthhist.errors import UserError


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """z = numpy.random.RandomState(seed).randn(1, z_dim) as float32 [1, z_dim] (the reference rule)."""
    return np.random.RandomState(seed).randn(1, z_dim).astype(np.float32)


def z_from_seeds(seeds: list[int], z_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Stack the latents of several seeds: [N, z_dim] float32."""
    z = np.concatenate([z_from_seed(s, z_dim) for s in seeds]) if seeds else np.zeros((0, z_dim), np.float32)
    return torch.from_numpy(z).to(device)


def onehot(class_idx: int | None, c_dim: int, n: int = 1, device: torch.device | str = "cpu") -> torch.Tensor:
    """One-hot labels [n, c_dim]; [n, 0] for unconditional networks. Validates class_idx."""
    c = torch.zeros(n, c_dim, device=device)
    if c_dim == 0:
        if class_idx is not None:
            raise UserError("--class was given but the network is unconditional")
        return c
    if class_idx is None:
        raise UserError(f"the network is conditional: choose a class with --class (0 to {c_dim - 1})")
    if not 0 <= class_idx < c_dim:
        raise UserError(f"class {class_idx} is out of range: the network has {c_dim} classes (0 to {c_dim - 1})")
    c[:, class_idx] = 1
    return c


def soft_label(start: int, end: int, t: float | torch.Tensor, c_dim: int, device="cpu") -> torch.Tensor:
    """Class-blend label (1-t)*onehot(start) + t*onehot(end): [len(t), c_dim] (docs/stylegan2.md §4.2)."""
    t = torch.as_tensor(t, dtype=torch.float32, device=device).reshape(-1, 1)
    return (1 - t) * onehot(start, c_dim, 1, device) + t * onehot(end, c_dim, 1, device)
