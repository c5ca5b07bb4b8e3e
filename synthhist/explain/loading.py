"""Load the generator and classifier an explain script works on, and check that they fit together."""

from __future__ import annotations

import logging

import torch

from synthhist.cli import import_tensorflow
from synthhist.errors import UserError
from synthhist.explain.bridge import Bridge, gan_tile
from synthhist.gan.blend import check_conditional
from synthhist.gan.checkpoint import GanNetwork
from synthhist.gan.classes import resolve_class

log = logging.getLogger("synthhist")

UPSAMPLE_WARN = 1.5  # warn when the bridge upsamples GAN images more than this (fine detail is missing)


def resolve_models(network: str | None, classifier: str | None) -> tuple[str, str | None]:
    """Resolve both model references (None = demo) before anything slow is loaded; one-line UserError otherwise.

    hf: references (network and classifier) are downloaded or found in the cache here; local paths must exist. classifier None stays None
    when there is no classifier option (interpolate.py without --classifier): pass "" to mean "not used".
    """
    from synthhist.refs import DEMO, or_demo, resolve

    network = or_demo(network, "network")
    if classifier != "":
        classifier = or_demo(classifier, "classifier")
    if network != DEMO:
        network = str(resolve(network, "network"))
    if classifier and classifier != DEMO:
        classifier = str(resolve(classifier, "classifier"))
    return network, classifier or None


def load_gan(network: str, start: int | str, end: int | str, device: torch.device) -> tuple[GanNetwork, int, int]:
    """load_network(network) on device, checked to be class-conditional; start/end (index or name) as indices."""
    from synthhist.gan import load_network

    net = load_network(network, device=device)
    if net.c_dim == 0:
        check_conditional(net.G)  # the one message for unconditional networks
    start, end = resolve_class(net, start, "--start"), resolve_class(net, end, "--end")
    names = net.class_names or [str(k) for k in range(net.c_dim)]
    log.info(f"network {net.source}: {net.G.img_resolution} px, {net.c_dim} classes; "
             f"blending class {start} ({names[start]}) -> class {end} ({names[end]})")
    return net, start, end


def load_bridge(net, classifier: str, gan_px: int | None, gan_um: float | None, verbose: bool = False, *,
                trust: bool = False):
    """load_classifier(classifier, trust=trust) and the Bridge from the GAN's tile to the classifier's: (clf, bridge)."""
    px, um = gan_tile(net, gan_px, gan_um)  # checked before TensorFlow is imported
    import_tensorflow(verbose)
    from synthhist.classifier import load_classifier

    clf = load_classifier(classifier, trust=trust)
    bridge = Bridge.for_classifier(px, um, clf)
    log.info(f"classifier {clf.model_type}, {clf.tile_px} px / {clf.tile_um:g} um; GAN tile {px} px / {um:g} um "
             f"-> centre crop {um:g} -> {clf.tile_um:g} um, resize to {clf.tile_px} px")
    gan_mpp, clf_mpp = um / px, clf.tile_um / clf.tile_px
    if gan_mpp > UPSAMPLE_WARN * clf_mpp:
        log.warning(f"the GAN draws {gan_mpp:.3g} um/px and the classifier reads {clf_mpp:.3g} um/px: its images are "
                    f"upsampled {gan_mpp / clf_mpp:.2g}x, without the detail the classifier learnt from real tiles")
    return clf, bridge


def default_batch(batch: int | None, device: torch.device) -> int:
    """--batch when given, else 32 on CUDA and 4 on CPU (a 512 px generator batch of 32 needs ~10 GB of RAM)."""
    if batch is not None:
        if batch < 1:
            raise UserError(f"--batch must be at least 1 (got {batch})")
        return batch
    return 32 if device.type == "cuda" else 4
