"""Modulated (and demodulated) convolution, fused (per-sample weights) or not (docs/stylegan2.md §1.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synthhist.gan.ops import conv2d_up2


def demod_coefs(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """d[n,o] = (sum_{i,k} (W[o,i,k] s[n,i])^2 + 1e-8)^-1/2: [N,O] from weight [O,I,k,k], styles [N,I]."""
    return (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: int = 1, resample_filter: torch.Tensor | None = None, fused: bool = True,
                     gain: float = 1.0) -> torch.Tensor:
    """gain * conv(x, W * s[n,i] * d[n,o]): x [N,I,H,W] (fp32/16/bf16), weight [O,I,k,k], styles [N,I] fp32.

    Styles, weights and demodulation are computed in fp32; the convolution runs in x.dtype. `up=2` uses the
    transposed conv + blur of docs/stylegan2.md §1.2. fused: one grouped conv with per-sample weights; otherwise
    the shared weight with the input scaled by s and the output by d (same math).
    """
    N, I, H, W = x.shape
    O, _, kh, kw = weight.shape
    if demodulate and x.dtype != torch.float32:  # pre-normalise against overflow (cancels under demod)
        weight = weight * (1 / (I * kh * kw) ** 0.5 / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    coefs = demod_coefs(weight, styles) * gain if demodulate else None  # [N,O]

    def conv(x, w, groups):
        if up == 2:
            return conv2d_up2(x, w, resample_filter, groups=groups)
        return F.conv2d(x, w, padding=kh // 2, groups=groups)

    if fused:
        w = weight.unsqueeze(0) * styles.reshape(N, 1, I, 1, 1)  # [N,O,I,k,k]
        if coefs is not None:
            w = w * coefs.reshape(N, O, 1, 1, 1)
        elif gain != 1:
            w = w * gain
        if N == 1:  # a plain conv; reshaping would hide x's channels_last layout from oneDNN (a copy to NCHW)
            return conv(x, w[0].to(x.dtype), groups=1)
        x = conv(x.reshape(1, N * I, H, W), w.reshape(N * O, I, kh, kw).to(x.dtype), groups=N)
        return x.reshape(N, O, *x.shape[2:])
    x = conv(x * styles.to(x.dtype).reshape(N, I, 1, 1), weight.to(x.dtype), groups=1)
    if coefs is None:
        coefs = torch.full([N, O], gain, device=x.device)
    if torch.is_grad_enabled():
        return x * coefs.to(x.dtype).reshape(N, O, 1, 1)
    return x.mul_(coefs.to(x.dtype).reshape(N, O, 1, 1))  # in place on the fresh conv output
