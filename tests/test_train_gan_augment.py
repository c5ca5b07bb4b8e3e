"""ADA augment pipe: p=0 is the identity, p=1 applies every transform, exact maps are lossless, ADA rule."""

import math

import torch

from synthhist.gan.train.augment import AugmentPipe, ada_adjust, translate2d


def _images(n=6, size=16):
    torch.manual_seed(0)
    return torch.rand(n, 3, size, size) * 2 - 1


def test_p0_is_identity():
    x = _images()
    assert torch.equal(AugmentPipe(0.0)(x), x)


def test_p1_fires_every_transform(monkeypatch):
    pipe = AugmentPipe(1.0)
    calls = []
    orig = AugmentPipe._fire

    def spy(self, n, device, p=None):
        out = orig(self, n, device, p)
        calls.append(out)
        return out

    monkeypatch.setattr(AugmentPipe, "_fire", spy)
    x = _images(8)
    y = pipe(x)
    # 8 geometric draws (xflip, rotate90, xint, scale, rotate, aniso, rotate, xfrac) + 5 colour draws.
    assert len(calls) == 8 + 5
    assert all(bool(c.all()) for c in calls)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert ((y - x).abs().amax((1, 2, 3)) > 1e-3).all()  # every sample changed


def test_p1_statistics_cover_all_transforms():
    pipe = AugmentPipe(1.0)
    torch.manual_seed(1)
    G = pipe.geometric_matrix(4000, (16, 16), "cpu")
    det = torch.linalg.det(G[:, :2, :2])
    assert 0.4 < (det < 0).float().mean() < 0.6  # xflip: half mirrored
    assert G[:, :2, 2].abs().mean() > 0.5  # translations
    assert det.abs().std() > 0.1  # scale draws
    C = pipe.colour_matrix(4000, "cpu")
    assert (C[:, :3, 3].abs() > 0).float().mean() > 0.99  # brightness
    assert (torch.linalg.det(C[:, :3, :3]) < 0).float().mean() > 0.4  # luma flip


def _exact(pipe, x, G):
    return pipe._resample(x, G, torch.ones(len(x), dtype=torch.bool))


def test_rotate90_and_xflip_are_exact_and_invertible():
    pipe = AugmentPipe(1.0)
    x = _images(4)
    n = len(x)
    # 90-degree rotation (inverse matrix maps output -> input): compare to torch.rot90 and invert.
    rot = torch.tensor([[0., 1, 0], [-1, 0, 0], [0, 0, 1]]).repeat(n, 1, 1)
    y = _exact(pipe, x, rot)
    assert torch.equal(y, torch.rot90(x, 1, (2, 3))) or torch.equal(y, torch.rot90(x, -1, (2, 3)))
    assert torch.equal(_exact(pipe, y, torch.linalg.inv(rot)), x)
    flip = torch.diag(torch.tensor([-1., 1, 1])).repeat(n, 1, 1)
    assert torch.equal(_exact(pipe, x, flip), x.flip(3))
    assert torch.equal(_exact(pipe, _exact(pipe, x, flip), flip), x)
    # Integer translation: exact shift, symmetric reflection at the border.
    t = translate2d(torch.full((n,), -2.0), torch.zeros(n), torch.ones(n))
    y = _exact(pipe, x, t)
    assert torch.equal(y[..., 2:], x[..., :-2]) and torch.equal(y[..., :2], x[..., :2].flip(3))


def test_forward_routes_pixel_exact_samples_exactly(monkeypatch):
    pipe = AugmentPipe(1.0)
    x = _images(4)
    flip = torch.diag(torch.tensor([-1., 1, 1])).repeat(4, 1, 1)
    monkeypatch.setattr(pipe, "geometric_matrix", lambda n, size, dev: flip)
    monkeypatch.setattr(pipe, "colour_matrix", lambda n, dev: torch.eye(4).repeat(n, 1, 1))
    assert torch.equal(pipe(x), x.flip(3))


def test_fractional_resampling_keeps_constants_and_gradients():
    pipe = AugmentPipe(1.0)
    x = torch.full((2, 3, 16, 16), 0.25, requires_grad=True)
    th = torch.tensor([0.3, -1.1])
    G = torch.stack([torch.tensor([[math.cos(a), -math.sin(a), 0.4], [math.sin(a), math.cos(a), -0.7], [0, 0, 1]])
                     for a in th.tolist()])
    y = pipe._resample(x, G, torch.zeros(2, dtype=torch.bool))
    assert (y - 0.25).abs().max() < 1e-5
    g, = torch.autograd.grad(pipe(x).square().sum(), x, create_graph=True)  # R1 needs double backward
    g.sum().backward()


def test_ada_rule():
    p = torch.tensor(0.0)
    ada_adjust(p, sign_mean=0.9, target=0.6, batch=32, interval=4, ada_kimg=500)
    assert abs(float(p) - 32 * 4 / 500e3) < 1e-9
    ada_adjust(p, sign_mean=0.1, target=0.6, batch=32, interval=4, ada_kimg=500)
    ada_adjust(p, sign_mean=0.1, target=0.6, batch=32, interval=4, ada_kimg=500)
    assert float(p) == 0.0  # clamped at 0, no upper clamp
