"""Load the generator and classifier an explain script works on, and check that they fit together."""

from __future__ import annotations

import logging

import torch

from synthhist.errors import UserError
from synthhist.explain.bridge import Bridge, gan_tile
from synthhist.gan.blend import check_conditional

log = logging.getLogger("synthhist")


def load_gan(network: str, start: int, end: int, device: torch.device):
    """load_network(network) on device, checked to be class-conditional with start and end in range."""
    from synthhist.gan import load_network

    net = load_network(network, device=device)
    check_conditional(net.G, start, end)
    names = net.class_names or [str(k) for k in range(net.c_dim)]
    log.info(f"network {net.source}: {net.G.img_resolution} px, {net.c_dim} classes; "
             f"blending class {start} ({names[start]}) -> class {end} ({names[end]})")
    return net


def load_bridge(net, classifier: str, gan_px: int | None, gan_um: float | None, *, trust: bool = False):
    """load_classifier(classifier, trust=trust) and the Bridge from the GAN's tile to the classifier's: (clf, bridge)."""
    from synthhist.classifier import load_classifier

    px, um = gan_tile(net, gan_px, gan_um)
    clf = load_classifier(classifier, trust=trust)
    bridge = Bridge.for_classifier(px, um, clf)
    log.info(f"classifier {clf.model_type}, {clf.tile_px} px / {clf.tile_um:g} um; GAN tile {px} px / {um:g} um "
             f"-> centre crop {um:g} -> {clf.tile_um:g} um, resize to {clf.tile_px} px")
    return clf, bridge


def default_batch(batch: int | None, device: torch.device) -> int:
    """--batch when given, else 32 on CUDA and 4 on CPU (a 512 px generator batch of 32 needs ~10 GB of RAM)."""
    if batch is not None:
        if batch < 1:
            raise UserError(f"--batch must be at least 1 (got {batch})")
        return batch
    return 32 if device.type == "cuda" else 4
