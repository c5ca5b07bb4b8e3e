"""'resnet' discriminator with minibatch-stddev epilogue and projection conditioning (docs/stylegan2.md §2.4)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from synthhist.gan.layers import Conv2dLayer, FullyConnectedLayer
from synthhist.gan.mapping import MappingNetwork
from synthhist.gan.ops import setup_filter
from synthhist.gan.synthesis import block_dtype

SQRT_HALF = np.sqrt(0.5)


class DiscriminatorBlock(nn.Module):
    """[fromrgb], conv0 3x3, conv1 3x3 down 2, plus a 1x1 down-2 skip; residual sum scaled by sqrt(1/2)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 use_fp16: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.use_fp16 = in_channels, use_fp16
        self.register_buffer("resample_filter", setup_filter())
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img.to(dtype))
        x = x.to(dtype)
        y = self.skip(x, gain=SQRT_HALF)
        x = self.conv1(self.conv0(x), gain=SQRT_HALF)
        return y + x


class MinibatchStdLayer(nn.Module):
    """Append the mean std over groups of G = min(group_size, N) samples (taken with stride N/G) as channels."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,C,H,W] -> [N,C+F,H,W]
        N, C, H, W = x.shape
        G = min(self.group_size, N) if self.group_size is not None else N
        Fc = self.num_channels
        y = x.reshape(G, -1, Fc, C // Fc, H, W)  # [G,N/G,F,c,H,W]
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [N/G,F]
        y = y.reshape(-1, Fc, 1, 1).repeat(G, 1, H, W)  # [N,F,H,W]
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch std, conv, fc, out; projection with cmap when conditional. Always fp32."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int = 4, mbstd_group_size: int | None = 4,
                 mbstd_num_channels: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, cmap_dim if cmap_dim > 0 else 1)

    def forward(self, x: torch.Tensor, cmap: torch.Tensor | None) -> torch.Tensor:  # [N,C,4,4] -> [N,1]
        x = self.conv(self.mbstd(x.to(torch.float32)))
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """D(img [N,C,R,R], c [N,c_dim]) -> logits [N,1]; state dict names as the reference."""

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 4,
                 conv_clamp: float | None = 256, cmap_dim: int | None = None, mapping_kwargs: dict | None = None,
                 epilogue_kwargs: dict | None = None, block_kwargs: dict | None = None):
        super().__init__()
        if architecture != "resnet":
            raise ValueError(f"only the 'resnet' discriminator architecture is supported, not {architecture!r}")
        if block_kwargs:
            raise TypeError(f"Discriminator got unsupported block_kwargs: {sorted(block_kwargs)}")
        mapping_kwargs, epilogue_kwargs = dict(mapping_kwargs or {}), dict(epilogue_kwargs or {})
        self.init_kwargs = dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                                architecture=architecture, channel_base=channel_base, channel_max=channel_max,
                                num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, cmap_dim=cmap_dim,
                                mapping_kwargs=mapping_kwargs, epilogue_kwargs=epilogue_kwargs)
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        log2 = int(np.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        ch = {r: min(channel_base // r, channel_max) for r in self.block_resolutions + [4]}
        if cmap_dim is None:
            cmap_dim = ch[4]
        if c_dim == 0:
            cmap_dim = 0
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        for r in self.block_resolutions:
            in_channels = ch[r] if r < img_resolution else 0
            block = DiscriminatorBlock(in_channels, ch[r], ch[r // 2], img_channels,
                                       use_fp16=r >= fp16_resolution, conv_clamp=conv_clamp)
            setattr(self, f"b{r}", block)
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim=cmap_dim, conv_clamp=conv_clamp, **epilogue_kwargs)

    def forward(self, img: torch.Tensor, c: torch.Tensor, update_emas: bool = False,
                precision: str = "auto") -> torch.Tensor:
        """update_emas is accepted for interface parity with G (D has no EMAs)."""
        x = None
        for r in self.block_resolutions:
            block = getattr(self, f"b{r}")
            x = block(x, img, block_dtype(precision, block.use_fp16, img.device))
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, cmap)
