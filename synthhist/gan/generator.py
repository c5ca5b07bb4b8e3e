"""Generator = mapping network + synthesis network (docs/stylegan2.md §1.1)."""

from __future__ import annotations

import torch
from torch import nn

from synthhist.gan.mapping import MappingNetwork
from synthhist.gan.synthesis import SynthesisNetwork

# Reference constructor arguments that do not change the math (performance switches of the reference code).
IGNORED_KWARGS = ("fused_modconv_default", "fp16_channels_last", "channels_last")


class Generator(nn.Module):
    """G(z [N,z_dim], c [N,c_dim]) -> img [N,img_channels,R,R]; state dict names as the reference."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, channel_base: int = 32768, channel_max: int = 512,
                 num_fp16_res: int = 4, conv_clamp: float | None = 256, architecture: str = "skip",
                 **ignored):
        super().__init__()
        unknown = set(ignored) - set(IGNORED_KWARGS)
        if unknown:
            raise TypeError(f"Generator got unsupported arguments: {sorted(unknown)}")
        if architecture != "skip":
            raise ValueError(f"only the 'skip' generator architecture is supported, not {architecture!r}")
        mapping_kwargs = dict(mapping_kwargs or {})
        self.init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                img_channels=img_channels, mapping_kwargs=mapping_kwargs,
                                channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res,
                                conv_clamp=conv_clamp, architecture=architecture)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base=channel_base,
                                          channel_max=channel_max, num_fp16_res=num_fp16_res,
                                          conv_clamp=conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool = False, noise_mode: str = "const",
                precision: str = "auto", fused_modconv: bool | None = None) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, precision=precision, fused_modconv=fused_modconv)
