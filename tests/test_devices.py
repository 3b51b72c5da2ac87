"""Device and precision choice: names checked, bf16 taken only where the hardware does it natively."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from vaegen.core import devices
from vaegen.core.config import Config
from vaegen.core.devices import cpu_flags, native_bf16, resolve_device, resolve_precision
from vaegen.core.errors import ConfigError, VaegenError

CPU = torch.device("cpu")
X86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\nbugs\t\t: spectre_v1\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd {extra}\nCPU implementer\t: 0x41\n"


def test_device_names_are_checked() -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_device(None) == (CPU if not torch.cuda.is_available() else torch.device("cuda", 0))
    with pytest.raises(VaegenError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(VaegenError, match="CUDA is not available"):
            resolve_device("cuda")


def test_cpu_flags_are_read_on_x86_and_arm() -> None:
    assert {"avx2", "avx512f", "avx512_bf16"} <= cpu_flags(X86.format(extra="avx512_bf16"))
    assert "bf16" in cpu_flags(ARM.format(extra="bf16 i8mm"))
    assert "spectre_v1" not in cpu_flags(X86.format(extra=""))  # other lines are not flags


@pytest.mark.parametrize(("cpuinfo", "native"), [
    (X86.format(extra=""), False),  # AVX-512 alone emulates bfloat16
    (X86.format(extra="avx512_bf16"), True),
    (X86.format(extra="amx_bf16 amx_tile"), True),
    (ARM.format(extra="bf16"), True),
    (ARM.format(extra=""), False),
])
def test_native_bf16_on_a_linux_cpu_follows_its_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      cpuinfo: str, native: bool) -> None:
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(devices, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(sys, "platform", "linux")
    assert native_bf16(CPU) is native


def test_native_bf16_is_false_where_the_cpu_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "CPUINFO", tmp_path / "missing")
    monkeypatch.setattr(sys, "platform", "linux")
    assert native_bf16(CPU) is False
    monkeypatch.setattr(sys, "platform", "darwin")
    assert native_bf16(CPU) is False
    assert native_bf16(torch.device("meta")) is False


@pytest.mark.parametrize("native", [False, True])
def test_precision_auto_takes_bf16_only_where_native(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(devices, "native_bf16", lambda device: native)
    assert resolve_precision("auto", CPU) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", CPU) == "fp32"


def test_bf16_where_not_native_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "native_bf16", lambda device: False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(ConfigError) as refused:
        resolve_precision("bf16", CPU)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("--precision bf16: this CPU has no native bfloat16")
    assert message.endswith("use --precision fp32 or auto")
    monkeypatch.setattr(devices, "native_bf16", lambda device: True)
    assert resolve_precision("bf16", CPU) == "bf16"


def test_unknown_precisions_are_refused_and_auto_is_a_config_value() -> None:
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)
    assert Config.from_dict({"train": {"precision": "auto"}}).train.precision == "auto"
