"""Device selection: CUDA when present, else CPU; an explicit --device wins. CPU bf16 support detection."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from synthhist.errors import UserError

log = logging.getLogger("synthhist")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


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


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU computes in bf16 natively (AVX512_BF16 or AMX), from the cpuinfo flags or torch."""
    try:
        words = set(Path(cpuinfo).read_text(errors="replace").split())
    except OSError:
        words = set()
    return bool(words & set(BF16_CPU_FLAGS)) or "AMX" in torch.backends.cpu.get_cpu_capability()


def warn_if_emulated_bf16(precision: str, device: torch.device) -> bool:
    """Log one warning (and return True) when bf16 is asked for on a CPU that only emulates it.

    bf16 still runs there (same results), so this warns rather than refuses; it is slower than fp32.
    """
    if precision != "bf16" or device.type != "cpu" or cpu_has_native_bf16():
        return False
    log.warning("Warning: precision bf16 on a CPU without native bf16 (AVX512_BF16/AMX) is emulated and slower "
                "than fp32; use --precision fp32")
    return True
