"""Tumour classifier (slideflow 1.3.2 compatible): training from experiment configs and loading for inference."""

__all__ = ["Classifier", "load_classifier"]


def __getattr__(name: str):
    """Import the loader (Keras) only when it is used, so configs can read classifier.hparams quickly."""
    if name in __all__:
        from synthhist.classifier import load
        return getattr(load, name)
    raise AttributeError(f"module 'synthhist.classifier' has no attribute {name!r}")
