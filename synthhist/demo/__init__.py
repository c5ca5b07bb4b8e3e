"""Offline demo: procedural H&E-like slides and the bundled demo models."""
