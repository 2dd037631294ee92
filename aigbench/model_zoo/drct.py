"""DRCT: Chen, Zeng, Yang, Huang, Li, Zhu, Wang. "DRCT: Diffusion Reconstruction Contrastive
Training towards Universal Detection of Diffusion Generated Images". ICML 2024 (spotlight).
Official code: github.com/beibuwandeluori/DRCT (``network/models.py``: ``ContrastiveModels``).

A backbone whose own head outputs a 1024-d embedding (``model``) and a linear layer to two
classes (``fc``, index 1 = fake), in the official key names:

* ``--backbone convnext_base``: timm's ConvNeXt-B (``convnext_base.fb_in22k``) with ``head.fc``
  1024 → 1024; keys ``model.stem.0.weight`` ... ``model.head.fc.bias``, ``fc.weight [2, 1024]``;
* ``--backbone clip``: OpenAI CLIP ViT-L/14 (``model.model``, whole CLIP in the file, text tower
  included) whose 768-d image embedding goes through ``model.fc`` (768 → 1024). The image
  encoder is timm's QuickGELU CLIP; the file's ``model.model.visual.*`` keys are converted, its
  text tower is checked and left out.

The score is ``softmax(fc)[1]`` = ``sigmoid(l1 - l0)``; training minimises ``(1 - alpha)`` x the
cross-entropy plus ``alpha`` x the contrastive loss of pytorch-metric-learning's
``ContrastiveLoss(pos_margin=0, neg_margin=1)`` on the L2-normalised embeddings (alpha 0.3).

Preprocessing as the released test scripts: a 224 centre crop without resizing, ImageNet mean and
std for both backbones (the official code pads small images with zeros, aigbench mirror-pads).

Weights: ``--pretrained_path`` a released ``*.pth`` (a bare state dict, loaded strictly); to train,
``--backbone_path`` initial backbone weights (``convnext_base_22k_224.pth`` of the ConvNeXt release,
or CLIP's ``ViT-L-14.pt`` with ``--trust_torchscript``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from aigbench.datasets.preprocess import Preprocess
from aigbench.engine.checkpoint import CheckpointError, load_model_weights
from aigbench.model_zoo.base import BinaryDetector, PublishedWeights, read_state_dict
from aigbench.model_zoo.timm_backbone import create_backbone
from aigbench.model_zoo.univfd import CLIP_MODELS, load_clip_visual
from aigbench.registry import MODELS

DRCT_RELEASES = (  # in pretrained.zip of the ModelScope dataset BokingChen/DRCT-2M
    ("DRCT-2M/sdv14/convnext_base_in22k_224_drct_amp_crop/14_acc0.9996.pth", "convnext_base"),
    ("DRCT-2M/sdv2/convnext_base_in22k_224_drct_amp_crop/16_acc0.9993.pth", "convnext_base"),
    ("DRCT-2M/sdv14/clip-ViT-L-14_224_drct_amp_crop/13_acc0.9664.pth", "clip"),
    ("DRCT-2M/sdv2/clip-ViT-L-14_224_drct_amp_crop/last_acc0.9112.pth", "clip"),
    ("GenImage/sdv14/convnext_base_in22k_224_drct_amp_crop/last_acc0.9991.pth", "convnext_base"),
    ("GenImage/sdv14/clip-ViT-L-14_224_drct_amp_crop/2_acc0.9558.pth", "clip"),
)
# OpenAI CLIP's text tower: in the released CLIP files, unused by the detector
CLIP_TEXT_KEYS = (
    "positional_embedding",
    "text_projection",
    "logit_scale",
    "token_embedding.",
    "ln_final.",
    "transformer.",
)


def contrastive_loss(embedding: torch.Tensor, label: torch.Tensor, neg_margin: float = 1.0) -> torch.Tensor:
    """pytorch-metric-learning's ``ContrastiveLoss(pos_margin=0, neg_margin)``: Euclidean distances
    of L2-normalised embeddings; positive pairs cost ``d``, negative pairs ``relu(neg_margin - d)``;
    each kind averaged over its pairs with a non-zero cost (``AvgNonZeroReducer``), then summed."""
    e = F.normalize(embedding.float(), dim=1)
    d = torch.cdist(e, e).clamp_min(0)
    same = label.view(-1, 1) == label.view(1, -1)
    not_self = ~torch.eye(len(e), dtype=torch.bool, device=e.device)
    total = e.new_zeros(())
    for pairs, cost in ((same & not_self, d), (~same, F.relu(neg_margin - d))):
        losses = cost[pairs]
        nonzero = losses > 0
        if nonzero.any():
            total = total + losses[nonzero].mean()
    return total


class DRCTCLIP(nn.Module):
    """``CLIPModelV2``: the CLIP image embedding then ``fc`` (768 → 1024)."""

    def __init__(self, clip_model: str, image_size: int) -> None:
        super().__init__()
        import timm

        timm_name, dim = CLIP_MODELS[clip_model]
        self.model = timm.create_model(timm_name, pretrained=False, num_classes=dim, img_size=image_size)
        self.fc = nn.Linear(dim, 1024)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.model(x))


@MODELS.register_module()
class DRCT(BinaryDetector):
    """ConvNeXt-B or CLIP ViT-L/14 embedding (1024-d) and a two-class linear layer."""

    paper = (
        "Chen et al., DRCT: Diffusion Reconstruction Contrastive Training towards Universal Detection of "
        "Diffusion Generated Images, ICML 2024"
    )
    checkpoints = tuple(
        PublishedWeights(
            path.split("/", 1)[1].replace("/", "_"),
            f"--backbone {backbone} --pretrained_path {path.rsplit('/', 1)[1]}",
            f"https://modelscope.cn/datasets/BokingChen/DRCT-2M/files (pretrained.zip: {path})",
            note="bare state dict, keys model.* (+ model.model.* whole CLIP, model.fc) and fc [2, 1024]; "
            f"trained on {path.split('/')[0]} {path.split('/')[1]}",
        )
        for path, backbone in DRCT_RELEASES
    )
    # the released test scripts: 224 centre crop, no resize, ImageNet statistics for both backbones
    preprocess = Preprocess(224, resize_mode="crop")

    def __init__(
        self,
        backbone: Literal["convnext_base", "clip"] = "convnext_base",
        clip_model: Literal["ViT-L/14", "ViT-B/16", "ViT-B/32"] = "ViT-L/14",
        pretrained_path: str = "",
        backbone_path: str = "",
        freeze_extractor: bool = False,
        alpha: float = 0.3,
        image_size: int = 224,
        trust_torchscript: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.alpha = alpha
        if backbone == "clip":
            self.model: nn.Module = DRCTCLIP(clip_model, image_size)
            if backbone_path:
                load_clip_visual(self.model.model, backbone_path, trust_torchscript, flag="--backbone_path")
            if freeze_extractor:
                self.model.model.requires_grad_(False)
        else:
            self.model = create_backbone(
                "convnext_base", image_size, backbone_path, num_classes=1024, fresh_head=True, flag="--backbone_path"
            )
        self.fc = nn.Linear(1024, 2)
        if pretrained_path:
            self.load_released(pretrained_path)
        self.pretrained = bool(pretrained_path or backbone_path)

    def load_released(self, path: str) -> None:
        state = read_state_dict(path)
        if self.backbone == "clip" and any(k.startswith("model.model.visual.") for k in state):
            from timm.models.vision_transformer import checkpoint_filter_fn

            clip = {k[len("model.model.") :]: v for k, v in state.items() if k.startswith("model.model.")}
            others = sorted(k for k in clip if not k.startswith("visual.") and not k.startswith(CLIP_TEXT_KEYS))
            if others:
                raise CheckpointError(f"--pretrained_path {path}: unexpected CLIP keys model.model.{others[:5]}")
            visual = checkpoint_filter_fn({k: v for k, v in clip.items() if k.startswith("visual.")}, self.model.model)
            state = {
                **{f"model.model.{k}": v for k, v in visual.items()},
                **{k: v for k, v in state.items() if not k.startswith("model.model.")},
            }
        load_model_weights(self, state, f"--pretrained_path {path} (DRCT {self.backbone})")

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        embedding = self.model(image)
        logits = self.fc(embedding).float()
        out = self.outputs(logits[:, 1] - logits[:, 0], label)  # sigmoid(l1 - l0) = softmax(logits)[1]
        ce = out["backward_loss"]  # two-class cross-entropy
        contrast = contrastive_loss(embedding, label)
        out["backward_loss"] = (1 - self.alpha) * ce + self.alpha * contrast
        out["visual_loss"] = {"ce": ce.detach(), "contrastive": contrast.detach()}
        return out
