"""Mixed precision for training on CUDA: bfloat16 where the GPU has it natively, else float16
with a GradScaler.

bfloat16 has float32's exponent range: no loss scaling is needed and nothing overflows.
float16 overflows above 65504, so it needs a GradScaler, which skips a step whose
gradients overflowed and lowers its scale; such a step is not an error (see
:data:`MAX_SKIPPED_STEPS`). On the CPU, autocast is off.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional, Union

import torch

# Consecutive float16 steps with a non-finite loss that the GradScaler may skip before the
# run stops: each halves the scale, so 24 of them mean the model itself is broken.
MAX_SKIPPED_STEPS = 24


@dataclass(frozen=True)
class AmpPolicy:
    """Whether autocast runs, in which dtype, and whether a GradScaler is needed."""

    device_type: str = "cpu"
    dtype: Optional[torch.dtype] = None  # None: autocast off

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def make_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.needs_scaler)

    def describe(self) -> str:
        if not self.enabled:
            return "off"
        return "bfloat16" if self.dtype == torch.bfloat16 else "float16 with GradScaler"


def amp_policy(device: torch.device, requested: bool = True) -> AmpPolicy:
    """bfloat16 on a CUDA GPU with native bfloat16 (compute capability 8.0 and newer: A100,
    H100, RTX 30xx+), float16 on an older one (V100, T4: they only emulate bfloat16, slowly),
    off on the CPU. Evaluation always runs in float32 (see ``loop.predict``)."""
    if not requested or device.type != "cuda":
        return AmpPolicy(device.type, None)
    major, _ = torch.cuda.get_device_capability(device)
    return AmpPolicy("cuda", torch.bfloat16 if major >= 8 else torch.float16)


def as_policy(amp: Union[bool, AmpPolicy], device: torch.device) -> AmpPolicy:
    """Accept the ``amp`` bool that scripts rendered by earlier versions pass."""
    return amp if isinstance(amp, AmpPolicy) else amp_policy(device, bool(amp))
