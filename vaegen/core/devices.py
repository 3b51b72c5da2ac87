"""Where the arithmetic runs and in what precision: the one home of device and bfloat16 choices.

`resolve_device` turns a user's device name into a checked `torch.device`. `resolve_precision` turns
"fp32", "bf16" or "auto" into the precision actually used, and refuses bf16 where the device has no
native bfloat16 arithmetic: there torch emulates it, and on an AVX2-only CPU four 2048³ bf16 matrix
products did not finish in 118 s against 0.16 s each in fp32, so a bf16 run would look hung rather
than merely slow. "auto" takes bf16 exactly where it is native.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from vaegen.core.config import PRECISIONS
from vaegen.core.errors import ConfigError, VaegenError

CPUINFO = Path("/proc/cpuinfo")
# CPU flags of native bfloat16 arithmetic as Linux names them: AVX-512 BF16 and AMX (x86), BF16 (Arm)
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def resolve_device(name: str | None = None) -> torch.device:
    """The device named, checked; by default CUDA when present, else the CPU."""
    if name is None:  # under torchrun each process takes the GPU of its local rank
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VaegenError(f"unknown device {name!r}; use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VaegenError(f"device {name!r} asked for but CUDA is not available here; use --device cpu")
    return device


def cpu_flags(cpuinfo: str) -> set[str]:
    """The instruction-set flags in the text of /proc/cpuinfo ("flags" on x86, "Features" on Arm)."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def native_bf16(device: torch.device) -> bool:
    """Whether `device` does bfloat16 arithmetic in hardware rather than by emulation.

    CUDA: torch's own test, emulation excluded (compute capability 8.0 and up). CPU on Linux: the
    flags of /proc/cpuinfo. Elsewhere the instruction set cannot be read without private torch APIs,
    and torch's public `get_cpu_capability()` reports "AVX512" alike for CPUs with and without AVX-512
    BF16, so the answer is False: a wrong yes costs a run a hundredfold slowdown, a wrong no at most
    the factor bf16 would have won. Other device types (mps, xpu) answer False for the same reason.
    """
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu" and sys.platform.startswith("linux"):
        try:
            return bool(cpu_flags(CPUINFO.read_text(errors="replace")) & BF16_FLAGS)
        except OSError:
            return False
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """"fp32" or "bf16" for a requested "fp32", "bf16" or "auto" on `device`; bf16 without native
    support is a ConfigError that names the fix."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return "fp32"
    native = native_bf16(device)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if not native:
        raise ConfigError(f"--precision bf16: {_no_native_bf16(device)}, where bf16 runs many times slower "
                          "than fp32; use --precision fp32 or auto")
    return "bf16"


def _no_native_bf16(device: torch.device) -> str:
    """What is missing, in the words of the error message."""
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)} has no native bfloat16 arithmetic (compute capability < 8.0)"
    if device.type == "cpu" and sys.platform.startswith("linux"):
        return "this CPU has no native bfloat16 instructions (no AVX-512 BF16 or AMX)"
    if device.type == "cpu":
        return f"native bfloat16 instructions cannot be detected on {sys.platform}"
    return f"native bfloat16 is not known on device type {device.type}"
