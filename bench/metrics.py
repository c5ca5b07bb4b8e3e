"""Benchmark: generated images/s through the metric feature paths (fd_clf: demo GAN -> bridge -> demo classifier's
penultimate layer; Inception: demo GAN -> uint8 -> Inception-v3 at 299 px), pipelined (generator on a producer
thread) versus the same steps one after another (on one worker thread), in the same run. Uses a random-init Inception (and says so)
when the weights are not in the cache.

    python bench/metrics.py [--num 64] [--batch 16] [--device cpu]
"""

import threading
import time

import click
import torch

from synthhist.device import resolve_device
from synthhist.explain.bridge import gan_tile
from synthhist.gan import load_network
from synthhist.images import to_uint8
from synthhist.metrics.features import load_classifier_features, load_inception, stream_features
from synthhist.metrics.inception import cache_dir, weights_source


def rates(G, ext, num: int, batch: int, device: torch.device) -> tuple[float, float]:
    """(pipelined, serial) images/s of generator + feature extractor on num images."""
    z = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(0))
    c = torch.nn.functional.one_hot(torch.arange(num) % G.c_dim, G.c_dim).float()

    def render(i):
        return G(z[i:i + batch].to(device), c[i:i + batch].to(device), noise_mode="const")

    stream_features(range(0, batch, batch), render, ext, batch, "warm-up")
    t = time.perf_counter()
    stream_features(range(0, num, batch), render, ext, num, "pipelined")
    piped = num / (time.perf_counter() - t)
    def serial():
        with torch.inference_mode():
            for i in range(0, num, batch):
                ext.predict(ext.from_uint8(to_uint8(render(i))))

    # on a worker thread like the pipelined producer: on a loaded CPU torch's main-thread OpenMP pool can be
    # many times slower than a worker thread's, which would flatter the pipelined run
    t = time.perf_counter()
    worker = threading.Thread(target=serial)
    worker.start()
    worker.join()
    return piped, num / (time.perf_counter() - t)


@click.command()
@click.option("--num", default=64, show_default=True, help="Images per timed pass.")
@click.option("--batch", default=16, show_default=True, help="Images per batch.")
@click.option("--device", default=None, help="cpu or cuda [default: cuda if available].")
def main(num: int, batch: int, device: str | None) -> None:
    dev = resolve_device(device)
    net = load_network("demo", dev)
    print(f"device {dev}; demo GAN {net.G.img_resolution} px; {num} images, batch {batch}, torch threads "
          f"{torch.get_num_threads()}")
    clf = load_classifier_features("demo", *gan_tile(net))
    p, s = rates(net.G, clf, num, batch, dev)
    print(f"fd_clf    (GAN -> bridge -> classifier penultimate): pipelined {p:7.2f} img/s, serial {s:7.2f} img/s "
          f"({p / s:.2f}x)")
    url, _ = weights_source()
    cached = (cache_dir() / url.rsplit("/", 1)[-1]).is_file()
    inc = load_inception(dev, random_init=not cached)
    p, s = rates(net.G, inc, num, batch, dev)
    print(f"inception (GAN -> uint8 -> Inception-v3 299 px, {'cached weights' if cached else 'RANDOM-INIT weights: not cached'}): "
          f"pipelined {p:7.2f} img/s, serial {s:7.2f} img/s ({p / s:.2f}x)")


if __name__ == "__main__":
    main()
