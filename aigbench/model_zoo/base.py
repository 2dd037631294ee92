"""Shared pieces of the zoo: the single-logit output dict, weight-file reading and float32 regions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from aigbench.engine.checkpoint import CheckpointError, load_checkpoint


@dataclass(frozen=True)
class PublishedWeights:
    """A checkpoint that a model's authors publish: ``bench models --pretrained`` lists it.

    ``flags`` load it (e.g. ``--pretrained_path fc_weights.pth``); ``sha256`` is the checksum the
    authors publish, empty when they publish none (then check the file's size against ``note``).
    """

    name: str
    flags: str
    source: str
    sha256: str = ""
    note: str = ""


class BinaryDetector(nn.Module):
    """Base class for zoo detectors that produce one logit per image (fake > 0).

    ``pretrained`` is True when real backbone weights were loaded from a file (``--pretrained_path``
    or ``--clip_path``); each model sets it in its ``__init__``.
    """

    paper: str = ""
    checkpoints: tuple[PublishedWeights, ...] = ()  # the authors' released weights, if any
    backbone_name: str = "backbone"  # the attribute that holds the backbone (``encoder`` for CLIP heads)

    def __init__(self) -> None:
        super().__init__()
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.pretrained: bool = False
        self.frozen: bool = False  # a frozen backbone: no gradients, and kept in eval() by train()
        # gradients through the frozen backbone all the same: class-activation maps (bench explain)
        # need them w.r.t. its activations; its weights stay frozen
        self.grads_through_frozen: bool = False
        self._frozen_identity: Optional[dict[str, Any]] = None  # what a frozen backbone's weights are

    def train(self, mode: bool = True) -> BinaryDetector:
        super().train(mode)
        if self.frozen:  # frozen BatchNorm statistics, Dropout and drop-path stay in inference mode
            getattr(self, self.backbone_name).eval()
        return self

    def frozen_parts(self) -> Optional[dict[str, Any]]:
        """A frozen backbone: ``{"prefixes": state-dict key prefixes of the frozen part, "identity":
        what its weights are}``, or None (none frozen, or a random one: saved whole to be rebuilt).
        Checkpoints then store only the trainable weights and that identity; ``--cache_features``
        computes ``frozen_features`` once and trains :meth:`forward_head` on them."""
        if not self.frozen or self._frozen_identity is None:
            return None
        return {"prefixes": [f"{self.backbone_name}."], "identity": self._frozen_identity}

    def frozen_features(self, image: torch.Tensor) -> torch.Tensor:
        """Features of the frozen backbone (only called when :meth:`frozen_parts` is not None)."""
        with torch.set_grad_enabled(self.grads_through_frozen and torch.is_grad_enabled()):
            return getattr(self, self.backbone_name)(image)

    def forward_head(self, features: torch.Tensor, label: torch.Tensor) -> dict[str, Any]:
        """The output dict from precomputed ``frozen_features``."""
        raise NotImplementedError

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """What :meth:`forward_head` takes: the backbone's features (without gradients when frozen)."""
        return self.frozen_features(image) if self.frozen else getattr(self, self.backbone_name)(image)

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Backbone then head, for models built as :meth:`features` + :meth:`forward_head`;
        with ``features_precomputed=True`` (``--cache_features``) ``image`` already holds the
        features. Detectors of another shape override ``forward``."""
        if kwargs.get("features_precomputed"):
            return self.forward_head(image, label)
        return self.forward_head(self.features(image), label)

    def outputs(
        self, logit: torch.Tensor, label: torch.Tensor, visual_image: Optional[Mapping[str, torch.Tensor]] = None
    ) -> dict[str, Any]:
        """The output-dict contract from ``logit [B]``: BCE loss and sigmoid probability of fake."""
        logit = logit.float()
        loss = self.loss_fn(logit, label.float())
        return {
            "backward_loss": loss,
            "pred_label": torch.sigmoid(logit),
            "visual_loss": {"bce": loss.detach()},
            "visual_image": dict(visual_image or {}),
        }


def bottleneck_layer(inplanes: int, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """A ResNet-50 stage (torchvision's ``Bottleneck``, stride on the 3x3, a 1x1 + BN downsample
    on the first block where the shape changes): ``layerN`` of the official NPR/FreqNet code."""
    from torchvision.models.resnet import Bottleneck

    downsample = None
    if stride != 1 or inplanes != planes * Bottleneck.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * Bottleneck.expansion),
        )
    layers = [Bottleneck(inplanes, planes, stride, downsample)]
    layers += [Bottleneck(planes * Bottleneck.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def init_resnet_(module: nn.Module) -> None:
    """torchvision's ResNet init: Kaiming-normal (fan out) convolutions, BatchNorm 1 and 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


@contextmanager
def float32_region(device_type: str) -> Iterator[None]:
    """Switch autocast off for a block, so that its matmuls run in float32 inside ``torch.autocast``.

    Cast the block's inputs with ``.float()``: tensors that an autocast region already produced
    may be float16/bfloat16. Devices without autocast (e.g. ``meta``) run the block unchanged.
    """
    available = getattr(torch.amp, "is_autocast_available", lambda d: d in ("cpu", "cuda"))
    if not available(device_type):
        yield
        return
    with torch.autocast(device_type, enabled=False):
        yield


def weights_identity(path: str) -> dict[str, Any]:
    """What a weight file is: its name, size and the SHA-256 of its first and last 4 MiB
    (cheap on multi-GB files, and different for two trainings of one architecture)."""
    import hashlib

    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read(4 << 20))
        if size > 8 << 20:
            f.seek(size - (4 << 20))
            h.update(f.read())
    return {"file": p.name, "bytes": size, "sha256_head_tail": h.hexdigest()}


def read_state_dict(path: Union[str, os.PathLike], flag: str = "--pretrained_path") -> dict[str, torch.Tensor]:
    """Tensors of a weight file (``.pth``/``.pt``/``.bin`` via ``weights_only=True``, or ``.safetensors``).

    Unwraps the usual containers (``{"model": ...}``, ``{"state_dict": ...}``) and strips the
    ``module.`` prefix that DataParallel/DDP checkpoints carry.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{flag} {str(path)!r} does not exist; download the weights and pass a local file")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(p))
    else:
        try:
            state = load_checkpoint(p)
        except CheckpointError as e:
            raise CheckpointError(f"{flag}: {e}") from None
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{flag} {str(path)!r} holds no state_dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state
