"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2, cubic polynomial kernel, over subsets."""

from __future__ import annotations

import numpy as np


def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for all pairs: [n, d], [m, d] -> [n, m]."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples [m, d] (the diagonal of k(x, x) and k(y, y) left out)."""
    m = x.shape[0]
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    a = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(a - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> float:
    """Mean unbiased MMD^2 over num_subsets random subsets of m = min(n_real, n_fake, max_subset_size) each."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    rng = np.random.default_rng(seed)
    t = [mmd2_unbiased(real[rng.choice(real.shape[0], m, replace=False)],
                       fake[rng.choice(fake.shape[0], m, replace=False)]) for _ in range(num_subsets)]
    return float(np.mean(t))
