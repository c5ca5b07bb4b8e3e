"""Primitive operators of StyleGAN2 (docs/stylegan2.md §1.2): 2nd-moment norm, bias+activation, FIR resampling,
resampling convs.

All FIR operators take the [4,4] `resample_filter` buffer F = a (x) a (a = [1,3,3,1]/8) and apply it
separably with the 1-D taps a (row/column sums of F), which is exact for the rank-1 filters of the reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

LRELU_ALPHA = 0.2
LRELU_GAIN = math.sqrt(2)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) along dim."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None) -> torch.Tensor:
    """Reference order: x + b (dim 1) -> activation ('linear'|'lrelu') -> * gain -> clamp to +-clamp."""
    if gain is None:
        gain = LRELU_GAIN if act == "lrelu" else 1.0
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2)).to(x.dtype)
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_ALPHA)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def setup_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
    """The 2-D FIR filter a (x) a, normalised to sum 1: [4,4] float32 (the `resample_filter` buffer)."""
    a = torch.as_tensor(np.asarray(taps, dtype=np.float32))
    f = torch.outer(a, a)
    return f / f.sum()


def _taps(f: torch.Tensor, x: torch.Tensor, channels: int, gain: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise separable kernels from the 2-D filter: vertical [C,1,k,1], horizontal [C,1,1,k]."""
    fv = (f.sum(1) * gain).to(x.dtype)  # [k]
    fh = (f.sum(0) * gain).to(x.dtype)
    return fv.reshape(1, 1, -1, 1).expand(channels, 1, -1, 1), fh.reshape(1, 1, 1, -1).expand(channels, 1, 1, -1)


def blur(x: torch.Tensor, f: torch.Tensor, pad: int, gain: float = 1.0, down: int = 1) -> torch.Tensor:
    """Depthwise FIR filter of x with f (padding pad on all sides), keeping every `down`-th pixel."""
    C = x.shape[1]
    fv, fh = _taps(f, x, C, math.sqrt(gain))
    x = F.conv2d(x, fv, padding=(pad, 0), stride=(down, 1), groups=C)
    return F.conv2d(x, fh, padding=(0, pad), stride=(1, down), groups=C)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Zero-insert x2, pad (2,1), filter with 4F: [N,C,H,W] -> [N,C,2H,2W] (= stride-2 transposed conv, pad 1)."""
    C = x.shape[1]
    fv, fh = _taps(f, x, C, 2.0)
    x = F.conv_transpose2d(x, fv, stride=(2, 1), padding=(1, 0), groups=C)
    return F.conv_transpose2d(x, fh, stride=(1, 2), padding=(0, 1), groups=C)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Pad 1, filter with F, keep [::2, ::2]: [N,C,H,W] -> [N,C,H/2,W/2]."""
    return blur(x, f, pad=1, down=2)


def conv2d_up2(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """3x3 conv with up=2, padding 1: transposed conv (stride 2, no flip) then pad-1 blur with 4F.

    x [N,I,H,W], w [O,I/groups,k,k] -> [N,O,2H,2W].
    """
    O, Ig, kh, kw = w.shape
    wt = w.reshape(groups, O // groups, Ig, kh, kw).transpose(1, 2).reshape(groups * Ig, O // groups, kh, kw)
    x = F.conv_transpose2d(x, wt, stride=2, groups=groups)  # [N,O,2H+1,2W+1]
    return blur(x, f, pad=1, gain=4.0)


def conv2d_down2(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Conv with down=2 (docs/stylegan2.md §1.2): k=3: pad-2 blur, stride-2 conv; k=1: downsample2d, 1x1 conv."""
    if w.shape[-1] == 1:
        return F.conv2d(downsample2d(x, f), w)
    return F.conv2d(blur(x, f, pad=2), w, stride=2)
