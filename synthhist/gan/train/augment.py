"""ADA augmentation pipe, 'bgc' set (Karras et al. 2020; docs/stylegan2.md §2.3): geometric + colour transforms.

Every transform fires per sample with probability p (a buffer, adjusted by ADA). Geometric transforms are
composed into one inverse affine matrix per sample and executed in one resampling:
  - samples whose matrix is a pixel-exact map (flips, 90-degree rotations, integer translations) are
    gathered exactly (nearest sampling at pixel centres, symmetric reflection at the borders);
  - all others: symmetric pad -> 2x upsample (12-tap Kaiser-windowed sinc) -> bilinear grid_sample
    with reflection -> low-pass + 2x downsample.
Colour transforms are one 4x4 matrix per sample applied to RGB (images nominally in [-1, 1]).
Deliberate difference from the reference: it resamples pixel-exact maps too (slight blur); we don't.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# 'bgc' strengths (docs/stylegan2.md §2.3).
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0
TRANSFORMS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
              "brightness", "contrast", "lumaflip", "hue", "saturation")


def halfband_filter(taps: int = 12, beta: float = 6.0) -> np.ndarray:
    """Symmetric even-length low-pass (cutoff = half the Nyquist rate), Kaiser-windowed sinc, sum 1."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(n / 2) * np.kaiser(taps, beta)
    return (h / h.sum()).astype(np.float32)


def _mat(rows: list[list[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """Stack per-sample scalars into [N, k, k] matrices."""
    return torch.stack([torch.stack([torch.as_tensor(v, dtype=like.dtype, device=like.device).expand_as(like)
                                     for v in row], -1) for row in rows], -2)


def translate2d(tx, ty, like):
    return _mat([[1, 0, tx], [0, 1, ty], [0, 0, 1]], like)


def scale2d(sx, sy, like):
    return _mat([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], like)


def rotate2d(theta, like):
    return _mat([[torch.cos(theta), -torch.sin(theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1]], like)


def _symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad H and W by `pad` on each side with mirror images that repeat the edge pixel (dcba|abcd|dcba)."""
    def idx(n: int) -> torch.Tensor:
        i = torch.arange(-pad, n + pad, device=x.device) % (2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    return x.index_select(2, idx(x.shape[2])).index_select(3, idx(x.shape[3]))


class AugmentPipe(torch.nn.Module):
    """bgc augmentation of images [N, C, H, W] in [-1, 1] with probability buffer `p`."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("Hz", torch.from_numpy(halfband_filter()))

    def _fire(self, n: int, device, p=None) -> torch.Tensor:
        """[N] bool: does the transform fire for each sample."""
        return torch.rand(n, device=device) < (self.p if p is None else p)

    def geometric_matrix(self, n: int, size: tuple[int, int], device) -> torch.Tensor:
        """Inverse affine [N, 3, 3] (output pixel coords -> input pixel coords, origin at image centre)."""
        H, W = size
        one = torch.ones(n, device=device)
        G = torch.eye(3, device=device).repeat(n, 1, 1)
        # xflip: mirror x with p.
        i = torch.randint(2, (n,), device=device) * self._fire(n, device)
        G = G @ scale2d(1 - 2 * i.float(), one, one)
        # rotate90: k quarter turns with p, built with exact integer entries.
        k = torch.randint(4, (n,), device=device) * self._fire(n, device)
        c = torch.tensor([1., 0., -1., 0.], device=device)[k]
        s = torch.tensor([0., 1., 0., -1.], device=device)[k]
        G = G @ _mat([[c, s, 0], [-s, c, 0], [0, 0, 1]], one)
        # xint: integer translation, uniform within +-xint_max of the size.
        t = (torch.rand(n, 2, device=device) * 2 - 1) * XINT_MAX * self._fire(n, device)[:, None]
        G = G @ translate2d(-torch.round(t[:, 0] * W), -torch.round(t[:, 1] * H), one)
        # scale: isotropic, lognormal.
        sc = torch.where(self._fire(n, device), torch.exp2(torch.randn(n, device=device) * SCALE_STD), one)
        G = G @ scale2d(1 / sc, 1 / sc, one)
        # rotate (pre), aniso, rotate (post): each rotation with p_rot so that P(any rotation) = p.
        p_rot = 1 - torch.sqrt((1 - self.p).clamp(0, 1))
        th = (torch.rand(n, device=device) * 2 - 1) * math.pi * ROTATE_MAX * self._fire(n, device, p_rot)
        G = G @ rotate2d(-th, one)
        an = torch.where(self._fire(n, device), torch.exp2(torch.randn(n, device=device) * ANISO_STD), one)
        G = G @ scale2d(1 / an, an, one)
        th = (torch.rand(n, device=device) * 2 - 1) * math.pi * ROTATE_MAX * self._fire(n, device, p_rot)
        G = G @ rotate2d(-th, one)
        # xfrac: fractional translation, normal.
        t = torch.randn(n, 2, device=device) * XFRAC_STD * self._fire(n, device)[:, None]
        G = G @ translate2d(-t[:, 0] * W, -t[:, 1] * H, one)
        return G

    def colour_matrix(self, n: int, device) -> torch.Tensor:
        """Colour transform [N, 4, 4] acting on homogeneous RGB."""
        one = torch.ones(n, device=device)
        zero = torch.zeros(n, device=device)
        v = torch.tensor([1, 1, 1, 0], device=device, dtype=torch.float32) / math.sqrt(3)  # luma axis
        vv = torch.outer(v, v)
        eye = torch.eye(4, device=device)
        C = eye.repeat(n, 1, 1)
        b = torch.randn(n, device=device) * BRIGHTNESS_STD * self._fire(n, device)
        C = _mat([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], one) @ C
        ct = torch.where(self._fire(n, device), torch.exp2(torch.randn(n, device=device) * CONTRAST_STD), one)
        C = _mat([[ct, 0, 0, 0], [0, ct, 0, 0], [0, 0, ct, 0], [0, 0, 0, 1]], one) @ C
        i = (torch.randint(2, (n,), device=device) * self._fire(n, device)).float()
        C = (eye - 2 * vv * i[:, None, None]) @ C  # Householder reflection of luma
        th = (torch.rand(n, device=device) * 2 - 1) * math.pi * HUE_MAX * self._fire(n, device)
        C = self._rotate_about(v[:3], th, zero, one) @ C
        sat = torch.where(self._fire(n, device), torch.exp2(torch.randn(n, device=device) * SATURATION_STD), one)
        C = (vv + (eye - vv) * sat[:, None, None]) @ C
        return C

    @staticmethod
    def _rotate_about(axis: torch.Tensor, th: torch.Tensor, zero, one) -> torch.Tensor:
        """[N, 4, 4] rotation by th about a unit 3-vector (Rodrigues)."""
        x, y, z = axis
        c, s = torch.cos(th), torch.sin(th)
        d = 1 - c
        return _mat([[x * x * d + c, x * y * d - z * s, x * z * d + y * s, zero],
                     [y * x * d + z * s, y * y * d + c, y * z * d - x * s, zero],
                     [z * x * d - y * s, z * y * d + x * s, z * z * d + c, zero],
                     [zero, zero, zero, one]], one)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Augment [N, C, H, W] float images; differentiable w.r.t. the images (for R1)."""
        N, C, H, W = images.shape
        dev = images.device
        if float(self.p) <= 0:
            return images
        G = self.geometric_matrix(N, (H, W), dev)
        exact = ((G[:, :2, :2] - G[:, :2, :2].round()).abs().amax((1, 2)) < 1e-6) & \
                ((G[:, :2, 2] - G[:, :2, 2].round()).abs().amax(1) < 1e-6)
        if not bool(exact.all()) or not bool((G == torch.eye(3, device=dev)).all()):
            images = self._resample(images, G, exact)
        M = self.colour_matrix(N, dev)
        if not bool((M == torch.eye(4, device=dev)).all()):
            x = images.reshape(N, C, H * W)
            if C == 3:
                x = M[:, :3, :3] @ x + M[:, :3, 3:]
            elif C == 1:  # luma only: mean of the matrix rows
                x = x * M[:, :3, :3].mean((1, 2), keepdim=True)[..., :1] + M[:, :3, 3:].mean(1, keepdim=True)
            images = x.reshape(N, C, H, W)
        return images

    def _grid(self, G: torch.Tensor, H: int, W: int, up: int) -> torch.Tensor:
        """grid_sample grid [N, up*H, up*W, 2] for inverse affine G (align_corners=False coordinates)."""
        dev = G.device
        ys = (torch.arange(H * up, device=dev) + 0.5) / up - H / 2
        xs = (torch.arange(W * up, device=dev) + 0.5) / up - W / 2
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        pts = torch.stack([xx, yy, torch.ones_like(xx)], -1).reshape(-1, 3)  # [P, 3]
        src = pts @ G[:, :2, :].transpose(1, 2)  # [N, P, 2] input pixel coords (centre origin)
        src = src / torch.tensor([W / 2, H / 2], device=dev)
        return src.reshape(G.shape[0], H * up, W * up, 2)

    def _resample(self, x: torch.Tensor, G: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
        """Apply per-sample inverse affines; exact samples by nearest gather, others anti-aliased."""
        N, C, H, W = x.shape
        out = torch.zeros_like(x)
        ie = exact.nonzero()[:, 0]
        if len(ie):
            y = F.grid_sample(x[ie], self._grid(G[ie], H, W, 1).to(x.dtype), mode="nearest",
                              padding_mode="reflection", align_corners=False)
            out = out.index_copy(0, ie, y)
        iff = (~exact).nonzero()[:, 0]
        if len(iff):
            h = self.Hz.to(x.dtype)
            taps = len(h)
            xs = x[iff]
            # 2x upsample: zero-stuff, then filter with 2h per axis (each polyphase sums to 1).
            pad = taps // 4 + 1
            xp = _symmetric_pad(xs, pad)
            Hp, Wp = xp.shape[2:]
            z = xp.new_zeros(len(iff), C, Hp * 2, Wp * 2)
            z[:, :, ::2, ::2] = xp * 4
            f = h.repeat(C, 1)[:, None]  # [C, 1, taps]
            z = F.conv2d(F.pad(z, [taps // 2, taps // 2 - 1, 0, 0]), f[:, :, None, :], groups=C)
            z = F.conv2d(F.pad(z, [0, 0, taps // 2, taps // 2 - 1]), f[:, :, :, None], groups=C)
            z = z[:, :, 2 * pad:2 * pad + 2 * H, 2 * pad:2 * pad + 2 * W]  # [n, C, 2H, 2W]
            # bilinear sampling at 2x resolution, reflection beyond the borders.
            z = F.grid_sample(z, self._grid(G[iff], H, W, 2).to(x.dtype), mode="bilinear",
                              padding_mode="reflection", align_corners=False)
            # low-pass + 2x downsample.
            z = _symmetric_pad(z, taps // 2)
            z = F.conv2d(z, f[:, :, None, :], groups=C)[:, :, :, 1::2]
            z = F.conv2d(z, f[:, :, :, None], groups=C)[:, :, 1::2, :]
            out = out.index_copy(0, iff, z)
        return out


def ada_adjust(p: torch.Tensor, sign_mean: float, target: float, batch: int, interval: int, ada_kimg: float) -> None:
    """ADA rule: p <- max(0, p + sign(E[sign(D(real))] - target) * batch * interval / (ada_kimg * 1000))."""
    step = np.sign(sign_mean - target) * batch * interval / (ada_kimg * 1000)
    p.copy_((p + step).clamp(min=0))
