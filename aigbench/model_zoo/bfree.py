"""B-Free: Guillaro, Zingarini, Cozzolino, Verdoliva. "A Bias-Free Training Paradigm for More
General AI-generated Image Detection". CVPR 2025. Official code (inference only):
github.com/grip-unina/B-Free (``code/networks/wrapper5crops.py``). Code and weights are licensed
for non-profit use only.

timm's DINOv2 ViT-B/14 with four registers (``vit_base_patch14_reg4_dinov2``) at 504 x 504 and a
one-logit head, applied to the **whole image without resizing**, as the official wrapper does:

1. the patch embedding (14 x 14, stride 14) of the whole image: an ``h x w`` grid of tokens
   (trailing rows and columns that do not fill a patch are ignored);
2. a grid smaller than 36 on either side is tiled periodically and cut to 36 x 36 (both sides,
   as the official ``replicate_wrap``);
3. five 36 x 36 crops of the grid (centre, top-left, bottom-left, bottom-right, top-right), each
   through the transformer; the logit is the mean of the five.

Preprocessing: none but ImageNet mean and std (``--resize_mode none``; evaluation runs one image
per batch). Training uses random 504 crops without resizing (``--train_crop random_crop``).

Weights (``--pretrained_path``): the released ``BFREE_dino2reg4/model_epoch_best.pth``,
``{"model": state dict}`` with timm's own keys (177 tensors, ``pos_embed [1, 1296, 768]``),
loaded strictly.
"""

from __future__ import annotations

from typing import Any

import torch

from aigbench.datasets.preprocess import Preprocess
from aigbench.engine.checkpoint import load_model_weights
from aigbench.model_zoo.base import BinaryDetector, PublishedWeights, read_state_dict
from aigbench.registry import MODELS

GRID = 36  # 504 / 14 patches a side


def five_crops(tokens: torch.Tensor, size: int = GRID) -> torch.Tensor:
    """[B, C, h, w] patch embeddings → [5B, C, size, size]: tiled and cut to ``size`` x ``size`` when
    a side is shorter than ``size``, then the centre,
    top-left, bottom-left, bottom-right and top-right crops (the official order)."""
    b, c, h, w = tokens.shape
    if h < size or w < size:  # the official replicate_wrap: tiled, then both sides cut to size
        tokens = tokens.repeat(1, 1, max(-(-size // h), 1), max(-(-size // w), 1))[:, :, :size, :size]
    h, w = tokens.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    starts = [(top, left), (0, 0), (h - size, 0), (h - size, w - size), (0, w - size)]
    return torch.cat([tokens[:, :, y : y + size, x : x + size] for y, x in starts], dim=0)


@MODELS.register_module()
class BFree(BinaryDetector):
    """DINOv2 ViT-B/14 (4 registers) on five 504-pixel crops of the patch grid, logits averaged."""

    paper = "Guillaro et al., A Bias-Free Training Paradigm for More General AI-generated Image Detection, CVPR 2025"
    checkpoints = (
        PublishedWeights(
            "BFREE_dino2reg4.zip",
            "--pretrained_path BFREE_dino2reg4/model_epoch_best.pth",
            "https://www.grip.unina.it/download/prog/B-Free/weights/BFREE_dino2reg4.zip",
            sha256="none; the authors publish the zip's MD5 f3f53fa647848b16cf81c913f148a198",
            note="{'model': timm state dict}, 177 tensors, pos_embed [1, 1296, 768]; non-profit licence",
        ),
    )
    preprocess = Preprocess(504, resize_mode="none")
    cam_target_layer = "model.blocks.-1.norm1"  # bench explain: tokens of the five crops, see cam_reshape

    def __init__(self, pretrained_path: str = "", image_size: int = 504) -> None:
        super().__init__()
        import timm

        self.grid = image_size // 14
        self.model = timm.create_model(
            "vit_base_patch14_reg4_dinov2", pretrained=False, num_classes=1, img_size=image_size
        )
        if pretrained_path:
            state = read_state_dict(pretrained_path)
            load_model_weights(self.model, state, f"--pretrained_path {pretrained_path} (B-Free)")
            self.pretrained = True

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """The mean logit of the five crops of each image [B]."""
        vit = self.model
        tokens = five_crops(vit.patch_embed.proj(image), self.grid)  # [5B, C, grid, grid]
        x = vit.patch_embed.norm(tokens.flatten(2).transpose(1, 2))
        x = vit.norm_pre(vit._pos_embed(x))
        x = vit.norm(vit.blocks(x))
        out = vit.forward_head(x).squeeze(1)
        return out.view(5, image.shape[0]).mean(dim=0)

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.outputs(self.logits(image), label)

    def cam_reshape(self, tokens: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        """``bench explain``: the target layer's tokens ``[5B, N, C]`` (registers and class token
        first) of the five crops -> ``[B, C, h, w]`` on the image's whole patch grid, each patch
        the mean over the crops that hold it (tiled grids fold back onto the image's patches)."""
        vit, size = self.model, self.grid
        h, w = image_hw[0] // 14, image_hw[1] // 14
        crops = tokens[:, vit.num_prefix_tokens :, :]
        c = crops.shape[-1]
        crops = crops.reshape(5, -1, size, size, c).permute(0, 1, 4, 2, 3)  # [5, B, C, size, size]
        th, tw = (size, size) if h < size or w < size else (h, w)  # the (tiled) grid that five_crops cut
        top, left = (th - size) // 2, (tw - size) // 2
        starts = [(top, left), (0, 0), (th - size, 0), (th - size, tw - size), (0, tw - size)]
        total = crops.new_zeros(crops.shape[1], c, h * w)
        count = crops.new_zeros(h * w)
        for crop, (y0, x0) in zip(crops, starts):
            ys = (torch.arange(y0, y0 + size) % h)[:, None]
            xs = (torch.arange(x0, x0 + size) % w)[None, :]
            index = (ys * w + xs).reshape(-1).to(crop.device)
            total.index_add_(2, index, crop.reshape(crop.shape[0], c, -1))
            count.index_add_(0, index, torch.ones_like(index, dtype=count.dtype))
        return (total / count.clamp(min=1)).reshape(-1, c, h, w)
