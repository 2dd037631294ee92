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
