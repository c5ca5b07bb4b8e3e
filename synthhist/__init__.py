"""synthetic-histology: class-conditional StyleGAN2 histology and classifier explainability."""

__version__ = "0.1.0"
