"""Tumour classifier (slideflow 1.3.2 compatible): training from experiment configs and loading for inference."""

from synthhist.classifier.load import Classifier, load_classifier

__all__ = ["Classifier", "load_classifier"]
