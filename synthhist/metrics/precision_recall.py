"""Improved precision and recall (Kynkäänniemi et al. 2019): k-NN manifolds of real and generated features."""

from __future__ import annotations

import numpy as np
import torch


def _dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances [n, m] of rows of x [n, d] and y [m, d]."""
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


def knn_radii(feats: torch.Tensor, k: int, row_batch: int) -> torch.Tensor:
    """[N] distance of each point to its k-th nearest neighbour in the same set (itself excluded)."""
    return torch.cat([_dist(feats[i:i + row_batch], feats).kthvalue(k + 1, dim=1).values
                      for i in range(0, feats.shape[0], row_batch)])


def manifold_coverage(ref: torch.Tensor, radii: torch.Tensor, probe: torch.Tensor, row_batch: int) -> float:
    """Fraction of probe points inside the union of balls (ref_i, radii_i)."""
    inside = [(_dist(probe[i:i + row_batch], ref) <= radii[None]).any(dim=1)
              for i in range(0, probe.shape[0], row_batch)]
    return float(torch.cat(inside).float().mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, row_batch: int = 1000) -> tuple[float, float]:
    """(precision: fakes inside the real manifold, recall: reals inside the fake manifold)."""
    r, f = torch.as_tensor(real, dtype=torch.float32), torch.as_tensor(fake, dtype=torch.float32)
    precision = manifold_coverage(r, knn_radii(r, k, row_batch), f, row_batch)
    recall = manifold_coverage(f, knn_radii(f, k, row_batch), r, row_batch)
    return precision, recall
