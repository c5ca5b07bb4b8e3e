"""Metric formulas against closed-form and hand-computed cases; Inception input; weights download and cache."""

from __future__ import annotations

import hashlib
import io
import importlib.util

import numpy as np
import pytest
import scipy.linalg
import torch

from metrics_fixtures import TinyInception, WeightsServer, standin_weights
from synthhist.errors import UserError
from synthhist.metrics.frechet import feature_stats, frechet_distance
from synthhist.metrics.kid import kernel_inception_distance, mmd2_unbiased
from synthhist.metrics.precision_recall import precision_recall
from synthhist.metrics.report import parse_metrics


def test_frechet_isotropic_gaussians():
    # |(0,0) - (1,2)|^2 = 5; Tr(I + 4I - 2 (4I)^(1/2)) = 2 (1 + 4 - 4) = 2
    assert frechet_distance(np.zeros(2), np.eye(2), np.array([1.0, 2.0]), 4 * np.eye(2)) == pytest.approx(7.0)


def test_frechet_non_commuting_covariances():
    s1, s2 = np.diag([1.0, 4.0]), np.array([[2.0, 1.0], [1.0, 2.0]])
    r = scipy.linalg.sqrtm(s1)  # closed form: Tr(S1 + S2) - 2 Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), symmetric
    w = np.linalg.eigvalsh(r @ s2 @ r)
    expected = 1.0 + np.trace(s1 + s2) - 2 * np.sqrt(w).sum()
    assert frechet_distance(np.zeros(2), s1, np.array([1.0, 0.0]), s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_of_samples_approaches_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (200_000, 2))
    b = rng.normal(0, 2, (200_000, 2)) + [1.0, 2.0]
    assert frechet_distance(*feature_stats(a), *feature_stats(b)) == pytest.approx(7.0, abs=0.05)
    assert frechet_distance(*feature_stats(a), *feature_stats(a)) == pytest.approx(0.0, abs=1e-6)


def test_kid_hand_computed():
    # k(x,y) = (x.y/2 + 1)^3: kxx off-diagonal 1+1, kyy 1+1 -> 4/2 = 2; kxy 3.375+1+3.375+1 = 8.75 -> 2*8.75/4
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [0.0, 0.0]])
    assert mmd2_unbiased(x, y) == pytest.approx(2 - 4.375)
    assert kernel_inception_distance(x, y, num_subsets=3) == pytest.approx(-2.375)  # each subset = both sets


def test_kid_unbiased_and_positive_for_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    assert abs(kernel_inception_distance(a, b, num_subsets=20, max_subset_size=500)) < 0.01
    assert kernel_inception_distance(a, b + 1.0, num_subsets=20, max_subset_size=500) > 0.5


def test_precision_recall_hand_computed():
    # real 0..4 (1-d): 3rd-NN radii 3, 2, 2, 2, 3 -> only the fake 2.5 lies inside (-3.5 and 7.5 are 3.5 away)
    # fakes -3.5, 2.5, 7.5, 100: radii 103.5, 97.5, 92.5, 103.5 cover every real point
    real = np.arange(5, dtype=np.float64)[:, None]
    fake = np.array([[-3.5], [2.5], [7.5], [100.0]])
    assert precision_recall(real, fake, k=3) == pytest.approx((0.25, 1.0))
    assert precision_recall(real, fake, k=3, row_batch=2) == pytest.approx((0.25, 1.0))


def test_unknown_metric():
    with pytest.raises(UserError, match="unknown metric 'fid'"):
        parse_metrics("fid50k_full,fid")


def test_inception_resize_matches_tensorflow1_bilinear():
    # the reference graph resizes uint8 -> 299 px with TF1 bilinear (align_corners=False) inside the network
    tf = pytest.importorskip("tensorflow")
    if importlib.util.find_spec("torch_fidelity") is None:
        pytest.skip("torch-fidelity is not installed (pip install --no-deps torch-fidelity)")
    from synthhist.metrics.inception import _fidelity_inception

    _fidelity_inception()
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    img = np.random.default_rng(0).integers(0, 256, (2, 37, 37, 3), dtype=np.uint8)
    ref = tf.compat.v1.image.resize_bilinear(img.astype(np.float32), (299, 299), align_corners=False).numpy()
    ours = interpolate_bilinear_2d_like_tensorflow1x(torch.from_numpy(img).permute(0, 3, 1, 2).float(),
                                                     size=(299, 299), align_corners=False)
    np.testing.assert_allclose(ours.permute(0, 2, 3, 1).numpy(), ref, atol=1e-3)


def test_generated_images_reach_inception_as_uint8(tmp_path, monkeypatch):
    from gan_fixtures import golden_generator
    from synthhist.images import to_uint8
    from synthhist.metrics.features import InceptionFeatures
    from synthhist.metrics.report import Part, fake_features

    net = TinyInception("x", ["2048"], feature_extractor_weights_path=io.BytesIO(standin_weights()))
    ext = InceptionFeatures(net, "tiny", torch.device("cpu"))
    G = golden_generator("g32_cond2")
    feats = fake_features(G, ext, Part("", np.arange(2), 1), num=5, batch=2, device=torch.device("cpu"), seed=3)
    assert feats.shape == (5, 2048) and [x.shape[0] for x in net.inputs] == [2, 2, 1]
    g = torch.Generator().manual_seed(3)
    z = torch.randn(5, G.z_dim, generator=g)
    with torch.no_grad():
        want = to_uint8(G(z[:2], torch.tensor([[0.0, 1.0]] * 2), noise_mode="const")).permute(0, 3, 1, 2)
    assert torch.equal(net.inputs[0], want)  # quantised as NVIDIA's metrics: x * 127.5 + 128, clamp, uint8


@pytest.fixture
def weights_env(tmp_path, monkeypatch):
    data = standin_weights()
    monkeypatch.setenv("SYNTHHIST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYNTHHIST_INCEPTION_SHA256", hashlib.sha256(data).hexdigest())
    return data


def test_weights_download_cache_and_load(weights_env, monkeypatch):
    from synthhist.metrics.features import load_inception
    import synthhist.metrics.inception as inception
    from synthhist.metrics.inception import cache_dir

    monkeypatch.setattr(inception, "_fidelity_inception", lambda: TinyInception)
    with WeightsServer({"standin-1234.pth": weights_env}) as srv:
        monkeypatch.setenv("SYNTHHIST_INCEPTION_URL", f"{srv.url}/standin-1234.pth")
        ext = load_inception(torch.device("cpu"))
        load_inception(torch.device("cpu"))  # from the cache: no second request
    assert srv.requests == ["/standin-1234.pth"]
    assert (cache_dir() / "standin-1234.pth").read_bytes() == weights_env
    assert ext.predict(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)).shape == (1, 2048)


def test_weights_checksum_mismatch(weights_env, monkeypatch):
    from synthhist.metrics.inception import cache_dir, fetch_weights

    with WeightsServer({"standin-1234.pth": b"not the weights"}) as srv:
        monkeypatch.setenv("SYNTHHIST_INCEPTION_URL", f"{srv.url}/standin-1234.pth")
        with pytest.raises(UserError, match="sha256 .* does not match"):
            fetch_weights()
    assert not (cache_dir() / "standin-1234.pth").exists()  # a bad file is never used


def test_weights_offline_says_what_and_where(weights_env, monkeypatch):
    from synthhist.metrics.inception import cache_dir, fetch_weights

    with WeightsServer({}) as srv:
        url = f"{srv.url}/weights.pth"
    monkeypatch.setenv("SYNTHHIST_INCEPTION_URL", url)  # the server is gone: connection refused
    with pytest.raises(UserError) as e:
        fetch_weights()
    assert f"download {url} and put it at {cache_dir() / 'weights.pth'}" in str(e.value)


def test_weights_that_run_code_are_refused(tmp_path):
    import pickle

    from synthhist.metrics.inception import inception_v3

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UserError, match="not the Inception-v3 weights"):
        inception_v3(path, torch.device("cpu"))


def test_data_class_by_index_or_name():
    import types

    from synthhist.errors import UserError
    from synthhist.metrics.report import data_class

    real = types.SimpleNamespace(class_names=["coarse", "Fine"])
    assert data_class(real, "1") == 1 and data_class(real, "fine") == 1 and data_class(real, 0) == 0
    for bad in ("2", "medium"):
        with pytest.raises(UserError, match="the data has classes 0 coarse, 1 Fine"):
            data_class(real, bad)
