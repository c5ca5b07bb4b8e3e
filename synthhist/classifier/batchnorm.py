"""BatchNorm moving statistics from scratch: a randomly initialised base network trained for a few hundred steps
has moving means/variances that lag its weights, and predicts one constant in inference mode."""

from __future__ import annotations

import keras


def recalibrate_batchnorm(model: keras.Model, batches) -> int:
    """Set every BatchNormalization's moving mean/variance to the average batch statistics over `batches`
    (an iterable of (x, ...) training batches, run in training mode); returns the number of batches used."""
    bns = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momentum = [bn.momentum for bn in bns]
    n = 0
    try:
        for n, batch in enumerate(batches, start=1):
            for bn in bns:
                bn.momentum = 1 - 1 / n          # running average of the n batches seen
            model(batch[0], training=True)
    finally:
        for bn, m in zip(bns, momentum):
            bn.momentum = m
    return n
