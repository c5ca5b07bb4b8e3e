"""Fréchet distance between two Gaussians fitted to feature sets (FID, Heusel et al. 2017; fd_clf)."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, D] features -> (mu [D], sigma [D, D]) in float64 (unbiased covariance, as NVIDIA's metrics)."""
    x = np.asarray(feats, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the squared 2-Wasserstein distance of two Gaussians."""
    m = np.square(mu1 - mu2).sum()
    s = _sqrtm(np.dot(sigma1, sigma2))  # [D, D], possibly complex from round-off
    if not np.isfinite(s).all():  # singular product (fewer samples than features): offset as pytorch-fid does
        eye = np.eye(sigma1.shape[0]) * 1e-6
        s = _sqrtm(np.dot(sigma1 + eye, sigma2 + eye))
    return float(np.real(m + np.trace(sigma1 + sigma2 - s * 2)))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # a singular product is expected when there are fewer samples than features
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return scipy.linalg.sqrtm(a, disp=False)[0]
