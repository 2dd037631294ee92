"""Versions and device facts for ``bench env`` and bug reports."""

from __future__ import annotations

import importlib
import os
import platform
import sys


def _version(module: str) -> str:
    try:
        return str(getattr(importlib.import_module(module), "__version__", "installed"))
    except Exception as e:  # an import error is itself worth reporting
        return f"not importable ({type(e).__name__}: {e})"


def affinity_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity set; every CPU where the OS has none)."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


RESULT_PACKAGES = (("torch", "torch"), ("torchvision", "torchvision"), ("timm", "timm"), ("pillow", "PIL"))


def versions() -> dict[str, str]:
    """The versions that a result file records: aigbench, Python and the packages that shape its
    numbers (only those already imported are looked up, so this costs nothing)."""
    from aigbench import __version__

    out = {"aigbench": __version__, "python": sys.version.split()[0]}
    for name, module in RESULT_PACKAGES:
        mod = sys.modules.get(module)
        out[name] = str(getattr(mod, "__version__", "not imported")) if mod is not None else "not imported"
    return out


def collect_env() -> dict[str, str]:
    from aigbench import __version__

    info = {
        "aigbench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu cores": str(os.cpu_count()),
    }
    for name, module in [
        ("torch", "torch"),
        ("torchvision", "torchvision"),
        ("timm", "timm"),
        ("albumentations", "albumentations"),
        ("opencv", "cv2"),
        ("numpy", "numpy"),
        ("scikit-learn", "sklearn"),
        ("tensorboard", "tensorboard"),
    ]:
        info[name] = _version(module)
    try:
        import torch

        info["torch threads"] = str(torch.get_num_threads())
        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            info["device"] = f"cuda ({torch.cuda.device_count()}: {names}), CUDA {torch.version.cuda}"
        else:
            info["device"] = "cpu (CUDA not available)"
        info["distributed backends"] = (
            ", ".join(
                b
                for b, ok in [
                    ("gloo", torch.distributed.is_gloo_available()),
                    ("nccl", torch.distributed.is_nccl_available()),
                ]
                if ok
            )
            or "none"
        )
    except Exception as e:
        info["device"] = f"unknown ({e})"
    return info
