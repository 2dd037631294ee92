"""Community Forensics: Park & Owens, "Community Forensics: Using Thousands of Generators to Train
Fake Image Detectors", CVPR 2025. Official code: github.com/JeongsooP/Community-Forensics
(``models.py``: ``ViTClassifier``); released weights: Hugging Face ``OwensLab/commfor-model-224``
and ``OwensLab/commfor-model-384``.

The detector is timm's ViT (``vit_{small,tiny}_patch{16,32}_{224,384}.augreg_in21k_ft_in1k``:
class token, final norm, no layer scale) whose head is replaced by one linear layer to one logit,
held as the attribute ``vit``, so the released state dict's keys are ``vit.cls_token``,
``vit.blocks.N...`` and ``vit.head.weight [1, 384]``. The released models are ViT-S/16 at 224 and
at 384 (the paper's best).

Preprocessing as the official ``get_transform``: the shorter side resized to 256 (224 input) or
440 (384 input), bilinear, then the centre (test) or a random (train) crop, ImageNet mean and
std. Training adds RandomStateAugmentation (``--rsa_ops default``) between the resize and the crop.

``--pretrained_path`` takes, loaded strictly:

* a Hugging Face snapshot folder (``model.safetensors`` and the ``config.json`` that
  ``PyTorchModelHubMixin`` writes: ``model_size``, ``input_size``, ``patch_size``), or the hub
  cache folder ``models--OwensLab--commfor-model-384`` (its newest snapshot), or the
  ``model.safetensors`` file itself; ``config.json`` must agree with ``--model_size``,
  ``--image_size`` and ``--patch_size``;
* a training checkpoint of the official code (``{"model": ...}``, ``_orig_mod.`` prefixes of
  ``torch.compile`` removed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch

from aigbench.datasets.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from aigbench.engine.checkpoint import CheckpointError, load_model_weights
from aigbench.model_zoo.base import BinaryDetector, PublishedWeights, read_state_dict
from aigbench.registry import MODELS

WIDTHS = {"small": 384, "tiny": 192}
RESIZE_FOR_INPUT = {224: 256, 384: 440}  # the official determine_resize_crop_sizes


def snapshot_weights(path: str) -> tuple[Path, dict[str, Any]]:
    """The ``model.safetensors`` of a snapshot folder (or hub cache folder, or the file itself)
    and its ``config.json`` (empty when there is none)."""
    p = Path(path)
    if p.is_dir() and (p / "snapshots").is_dir():  # ~/.cache/huggingface/hub/models--OwensLab--commfor-model-384
        snaps = sorted(
            (s for s in (p / "snapshots").iterdir() if (s / "model.safetensors").is_file()),
            key=lambda s: s.stat().st_mtime,
        )
        if not snaps:
            raise CheckpointError(f"--pretrained_path {path!r}: no snapshots/*/model.safetensors in this hub folder")
        p = snaps[-1]
    if p.is_dir():
        if not (p / "model.safetensors").is_file():
            raise CheckpointError(
                f"--pretrained_path {path!r}: the folder has no model.safetensors; download the snapshot "
                "(huggingface-cli download OwensLab/commfor-model-384 --local-dir DIR) and pass DIR"
            )
        p = p / "model.safetensors"
    config_file = p.parent / "config.json"
    config: dict[str, Any] = {}
    if p.suffix == ".safetensors" and config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{config_file}: not valid JSON ({e})") from None
    return p, config


@MODELS.register_module()
class CommForViT(BinaryDetector):
    """Community Forensics' ViT detector (timm ViT, head to one logit)."""

    paper = "Park & Owens, Community Forensics: Using Thousands of Generators to Train Fake Image Detectors, CVPR 2025"
    checkpoints = (
        PublishedWeights(
            "OwensLab/commfor-model-384",
            "--pretrained_path <snapshot folder> --image_size 384",
            "https://huggingface.co/OwensLab/commfor-model-384 (model.safetensors + config.json)",
            note="PyTorchModelHubMixin snapshot, keys vit.* (vit.head.weight [1, 384]), ViT-S/16 at 384",
        ),
        PublishedWeights(
            "OwensLab/commfor-model-224",
            "--pretrained_path <snapshot folder> --image_size 224",
            "https://huggingface.co/OwensLab/commfor-model-224 (model.safetensors + config.json)",
            note="the same at 224 (86.7 MB float32)",
        ),
    )

    def __init__(
        self,
        model_size: Literal["small", "tiny"] = "small",
        image_size: int = 384,
        patch_size: Literal[16, 32] = 16,
        pretrained_path: str = "",
    ) -> None:
        super().__init__()
        import timm

        name = f"vit_{model_size}_patch{patch_size}_{384 if image_size > 224 else 224}.augreg_in21k_ft_in1k"
        self.vit = timm.create_model(name, pretrained=False, num_classes=1, img_size=image_size)
        self.settings = {"model_size": model_size, "input_size": image_size, "patch_size": patch_size}
        if pretrained_path:
            self.load_released(pretrained_path)
            self.pretrained = True

    cam_target_layer = "vit.blocks.-1.norm1"  # bench explain: the last block, class token dropped

    @classmethod
    def preprocess_cfg(cls, kwargs: dict[str, Any]) -> Preprocess:
        size = int(kwargs.get("image_size") or 384)
        resize = RESIZE_FOR_INPUT.get(size, round(size * 256 / 224))
        return Preprocess(size, IMAGENET_MEAN, IMAGENET_STD, "bilinear", "resize_crop", crop_pct=size / resize)

    def load_released(self, path: str) -> None:
        weights, config = snapshot_weights(path) if not str(path).endswith((".pt", ".pth")) else (Path(path), {})
        for key, ours in self.settings.items():
            if key in config and config[key] != ours:
                flag = {"input_size": "--image_size"}.get(key, f"--{key}")
                raise CheckpointError(
                    f"{weights.parent / 'config.json'}: {key} is {config[key]!r} but this model has {flag} {ours!r}; "
                    f"pass {flag} {config[key]}"
                )
        state = read_state_dict(str(weights))
        if state and all(k.startswith("_orig_mod.") for k in state):  # saved from torch.compile
            state = {k[len("_orig_mod.") :]: v for k, v in state.items()}
        pos = state.get("vit.pos_embed")
        if pos is not None and pos.shape != self.vit.pos_embed.shape:
            grid = int((pos.shape[1] - 1) ** 0.5) * self.vit.patch_embed.patch_size[0]
            raise CheckpointError(
                f"--pretrained_path {path}: vit.pos_embed {tuple(pos.shape)} is for {grid}-pixel inputs; "
                f"pass --image_size {grid}"
            )
        load_model_weights(self, state, f"--pretrained_path {path}")

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.outputs(self.vit(image).squeeze(1), label)
