"""Device selection: CUDA when present, else CPU; an explicit --device wins."""

from __future__ import annotations

import torch

from synthhist.errors import UserError


def resolve_device(name: str | None = None) -> torch.device:
    """Return torch.device(name), or cuda if available else cpu when name is None/'auto'."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r} (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name} asked for, but CUDA is not available on this machine")
    return dev
