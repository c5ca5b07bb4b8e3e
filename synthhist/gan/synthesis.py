"""Synthesis network: modulated conv layers, ToRGB, 'skip' blocks and the ws split (docs/stylegan2.md §1.4, §1.5)."""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthhist.gan.layers import FullyConnectedLayer
from synthhist.gan.modconv import modulated_conv2d
from synthhist.gan.ops import LRELU_ALPHA, LRELU_GAIN, setup_filter, upsample2d

PRECISIONS = ("auto", "fp32", "bf16")


def block_dtype(precision: str, use_fp16: bool, device: torch.device) -> torch.dtype:
    """Compute dtype of a block: 'auto' = reference (fp16 in the top blocks on CUDA), 'fp32', or 'bf16'."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and use_fp16 and device.type == "cuda":
        return torch.float16
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    return torch.float32


def bias_noise_lrelu_clamp(x: torch.Tensor, b: torch.Tensor, noise: torch.Tensor | None,
                           clamp: float | None) -> torch.Tensor:
    """clamp(lrelu(x + b + noise)); in place on x (a fresh conv output) when autograd is off."""
    inplace = not torch.is_grad_enabled()
    add = torch.Tensor.add_ if inplace else torch.add
    x = add(x, b.to(x.dtype).reshape(1, -1, 1, 1))
    if noise is not None:
        x = add(x, noise)
    x = F.leaky_relu(x, LRELU_ALPHA, inplace=inplace)
    if clamp is not None:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally up=2) + noise + bias + lrelu (x sqrt 2) + clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", setup_filter())
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const",
                fused_modconv: bool = True) -> torch.Tensor:  # [N,I,H,W], [N,w_dim] -> [N,O,H*up,W*up]
        styles = self.affine(w)  # [N,I]
        # lrelu(a) * g == lrelu(a * g) for g > 0: the activation gain is folded into the conv and the bias.
        x = modulated_conv2d(x, self.weight, styles, up=self.up, resample_filter=self.resample_filter,
                             fused=fused_modconv, gain=LRELU_GAIN)
        return bias_noise_lrelu_clamp(x, self.bias * LRELU_GAIN, self.noise(x, noise_mode), self.conv_clamp)

    def noise(self, x: torch.Tensor, noise_mode: str) -> torch.Tensor | None:
        """Per-pixel noise x sqrt(2) * noise_strength: [1|N,1,r,r] in x.dtype, or None."""
        if noise_mode == "none" or (not torch.is_grad_enabled() and self.noise_strength.item() == 0):
            return None
        strength = self.noise_strength * LRELU_GAIN
        if noise_mode == "const":
            return (self.noise_const * strength).to(x.dtype).reshape(1, 1, *self.noise_const.shape)
        if noise_mode == "random":
            r = x.shape[-1]
            return (torch.randn(x.shape[0], 1, r, r, device=x.device) * strength).to(x.dtype)
        raise ValueError(f"noise_mode must be const, random or none, not {noise_mode!r}")


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation, bias, clamp: features -> RGB."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # [N,I]
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused_modconv)
        x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class SynthesisBlock(nn.Module):
    """One resolution: [const | conv0 (up 2)], conv1, torgb; RGB accumulated in fp32 ('skip')."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 use_fp16: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.resolution, self.use_fp16 = in_channels, resolution, use_fp16
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        self.register_buffer("resample_filter", setup_filter())
        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, dtype: torch.dtype,
                noise_mode: str = "const", fused_modconv: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        w = ws.unbind(dim=1)  # num_conv + num_torgb vectors [N,w_dim]
        cl = torch.channels_last  # faster depthwise FIR and 3x3 convs (oneDNN); the math is unchanged
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1).contiguous(memory_format=cl)
            x = self.conv1(x, w[0], noise_mode, fused_modconv)
        else:
            x = self.conv0(x.to(dtype, memory_format=cl), w[0], noise_mode, fused_modconv)
            x = self.conv1(x, w[1], noise_mode, fused_modconv)
        y = self.torgb(x, w[-1], fused_modconv).to(torch.float32)
        img = y if img is None else upsample2d(img, self.resample_filter).add_(y)
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N,num_ws,w_dim] -> img [N,img_channels,R,R] float32 (nominal -1..1, not clamped)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 4, conv_clamp: float | None = 256):
        super().__init__()
        log2 = int(np.log2(img_resolution))
        if img_resolution < 4 or 2**log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of 2 >= 4, not {img_resolution}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        ch = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for r in self.block_resolutions:
            block = SynthesisBlock(ch[r // 2] if r > 4 else 0, ch[r], w_dim, r, img_channels,
                                   use_fp16=r >= fp16_resolution, conv_clamp=conv_clamp)
            self.num_ws += block.num_conv
            setattr(self, f"b{r}", block)
        self.num_ws += 1  # the last block's torgb

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", precision: str = "auto",
                fused_modconv: bool | None = None) -> torch.Tensor:
        """fused_modconv None: fused for batch 1 in eval mode, else the shared-weight (non-fused) path."""
        for _, img in self.blockwise(ws, noise_mode, precision, fused_modconv):
            pass
        return img

    def blockwise(self, ws: torch.Tensor, noise_mode: str = "const", precision: str = "auto",
                  fused_modconv: bool | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Run the blocks one by one, yielding (resolution, the 'skip' RGB so far [N,img_channels,r,r])."""
        if fused_modconv is None:
            fused_modconv = ws.shape[0] == 1 and not self.training
        x = img = None
        i = 0
        for r in self.block_resolutions:
            block = getattr(self, f"b{r}")
            n = block.num_conv + block.num_torgb
            dtype = block_dtype(precision, block.use_fp16, ws.device)
            x, img = block(x, img, ws[:, i:i + n], dtype, noise_mode, fused_modconv)
            i += block.num_conv
            yield r, img.contiguous()  # the blocks run channels_last; callers get a plain NCHW image
