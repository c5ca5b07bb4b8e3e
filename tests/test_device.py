"""Native bf16 detection from the CPU flags, and the one-line warning when bf16 would be emulated."""

import logging

import pytest
import torch

from synthhist import device as devmod

CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma {extra}\n\nprocessor\t: 1\nflags\t\t: fpu avx2 {extra}\n"


@pytest.mark.parametrize("extra,native", [("", False), ("avx512f avx512bw", False), ("avx512f avx512_bf16", True),
                                          ("amx_tile amx_bf16", True)])
def test_cpu_has_native_bf16_from_flags(tmp_path, monkeypatch, extra, native):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO.format(extra=extra))
    assert devmod.cpu_has_native_bf16(info) is native


def test_cpu_has_native_bf16_without_cpuinfo_asks_torch(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert not devmod.cpu_has_native_bf16(tmp_path / "missing")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    assert devmod.cpu_has_native_bf16(tmp_path / "missing")


@pytest.mark.parametrize("native", [True, False])
def test_bf16_warning_only_where_emulated(monkeypatch, caplog, native):
    monkeypatch.setattr(devmod, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level(logging.WARNING, logger="synthhist"):
        assert devmod.warn_if_emulated_bf16("bf16", torch.device("cpu")) is not native
        assert not devmod.warn_if_emulated_bf16("fp32", torch.device("cpu"))
        assert not devmod.warn_if_emulated_bf16("auto", torch.device("cpu"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == (0 if native else 1)
    assert all("\n" not in line and "bf16" in line for line in lines)
