"""C2P-CLIP: Tan, Tao, Liu, Gu, Wei, Zhao, Liu, Wei. "C2P-CLIP: Injecting Category Common Prompt
in CLIP to Enhance Generalization in Deepfake Detection". AAAI 2025. Official code:
github.com/chuangchuangtan/C2P-CLIP-DeepfakeDetection (``inference.py``).

The released detector is Hugging Face's ``CLIPModel`` (``openai/clip-vit-large-patch14``) without
its text tower, the LoRA of its image encoder merged into the weights, and a linear layer on the
L2-normalised image embedding::

    e = visual_projection(vision_model(x).pooler_output);  logit = fc(e / ||e||)

The image encoder is built here with timm (OpenAI's QuickGELU CLIP); the released file's Hugging
Face keys (``model.vision_model.encoder.layers.N.self_attn.q_proj.weight``, ...,
``model.visual_projection.weight``, ``model.fc.*``: 394 tensors) are converted exactly (q, k, v
concatenated into one projection, ``visual_projection`` transposed into CLIP's ``proj``) and the
load is strict.

Preprocessing as the official test: shorter side to 224 (bilinear), centre crop 224, CLIP mean
and std.

Training: the paper trains LoRA on the image encoder with a CLIP contrastive loss against
ClipCap captions wrapped in category prompts ("Deepfake" / "Camera") plus BCE; that training code
is not in the official snapshot and needs a caption model, so aigbench trains ``fc`` on the frozen
encoder (``--freeze_backbone``, the default) or the whole encoder with BCE (``--no-freeze_backbone``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from aigbench.datasets.preprocess import Preprocess
from aigbench.engine.checkpoint import CheckpointError, load_model_weights
from aigbench.model_zoo.base import BinaryDetector, PublishedWeights, read_state_dict, weights_identity
from aigbench.model_zoo.univfd import CLIP_MEAN, CLIP_MODELS, CLIP_STD, load_clip_visual, warn_random_clip
from aigbench.registry import MODELS

HF_LAYER_NAMES = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def hf_clip_vision_to_openai(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Hugging Face ``CLIPModel`` image-tower keys under ``prefix`` → OpenAI CLIP's ``visual.*``."""
    vm = f"{prefix}vision_model."
    out: dict[str, torch.Tensor] = {}
    simple = {
        "embeddings.class_embedding": "class_embedding",
        "embeddings.patch_embedding.weight": "conv1.weight",
        "embeddings.position_embedding.weight": "positional_embedding",
        "pre_layrnorm.weight": "ln_pre.weight",
        "pre_layrnorm.bias": "ln_pre.bias",
        "post_layernorm.weight": "ln_post.weight",
        "post_layernorm.bias": "ln_post.bias",
    }
    for hf, oa in simple.items():
        out[f"visual.{oa}"] = state[vm + hf]
    n_layers = 1 + max(
        int(k[len(vm + "encoder.layers.") :].split(".")[0]) for k in state if k.startswith(vm + "encoder.layers.")
    )
    for i in range(n_layers):
        src, dst = f"{vm}encoder.layers.{i}.", f"visual.transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{kind}"] = torch.cat([state[f"{src}self_attn.{p}_proj.{kind}"] for p in "qkv"])
            for hf, oa in HF_LAYER_NAMES.items():
                out[f"{dst}{oa}.{kind}"] = state[f"{src}{hf}.{kind}"]
    out["visual.proj"] = state[f"{prefix}visual_projection.weight"].T.contiguous()
    return out


@MODELS.register_module()
class C2PCLIP(BinaryDetector):
    """CLIP ViT-L/14 image embedding (category-prompt LoRA merged), L2-normalised, linear head."""

    backbone_name = "encoder"

    paper = (
        "Tan et al., C2P-CLIP: Injecting Category Common Prompt in CLIP to Enhance Generalization in Deepfake "
        "Detection, AAAI 2025"
    )
    checkpoints = (
        PublishedWeights(
            "C2P_CLIP_release_20240901.pth",
            "--pretrained_path C2P_CLIP_release_20240901.pth",
            "https://www.now61.com/f/95OefW/C2P_CLIP_release_20240901.zip (a zip holding the .pth, what inference.py's "
            "torch.hub.load_state_dict_from_url fetches)",
            note="whole detector, Hugging Face CLIPModel keys model.vision_model.*, model.visual_projection.weight, "
            "model.fc.*; 394 tensors, about 1.2 GB",
        ),
    )
    preprocess = Preprocess(224, CLIP_MEAN, CLIP_STD, interpolation="bilinear", resize_mode="resize_crop", crop_pct=1.0)
    cam_target_layer = "encoder.blocks.-1.norm1"  # bench explain: CLIP's last block, class token dropped

    def __init__(
        self,
        clip_model: Literal["ViT-L/14", "ViT-B/16", "ViT-B/32"] = "ViT-L/14",
        pretrained_path: str = "",
        clip_path: str = "",
        freeze_backbone: bool = True,
        image_size: int = 224,
        trust_torchscript: bool = False,
    ) -> None:
        super().__init__()
        import timm

        timm_name, dim = CLIP_MODELS[clip_model]
        self.encoder = timm.create_model(timm_name, pretrained=False, num_classes=dim, img_size=image_size)
        self.fc = nn.Linear(dim, 1)
        nn.init.normal_(self.fc.weight, 0.0, 0.02)
        self.frozen = freeze_backbone
        if clip_path:
            load_clip_visual(self.encoder, clip_path, trust_torchscript)
        if pretrained_path:
            self.load_released(pretrained_path)
        self.pretrained = bool(pretrained_path or clip_path)
        weights = pretrained_path or clip_path
        self._frozen_identity = {"clip_model": clip_model, **weights_identity(weights)} if weights else None
        if freeze_backbone:
            self.encoder.requires_grad_(False)
            self.encoder.eval()
            if not weights:
                warn_random_clip("C2PCLIP", clip_model)

    def load_released(self, path: str) -> None:
        state = read_state_dict(path)
        if "model.visual_projection.weight" not in state:
            raise CheckpointError(
                f"--pretrained_path {path}: no model.visual_projection.weight; expected C2P-CLIP's released file "
                "(Hugging Face CLIPModel keys under model.)"
            )
        from timm.models.vision_transformer import checkpoint_filter_fn

        expected = {"model.fc.weight", "model.fc.bias", "model.visual_projection.weight"}
        extra = sorted(k for k in state if not k.startswith("model.vision_model.") and k not in expected)
        if extra:
            raise CheckpointError(f"--pretrained_path {path}: unexpected keys {extra[:5]} for C2P-CLIP")
        try:
            openai = hf_clip_vision_to_openai(state, "model.")
        except KeyError as e:
            raise CheckpointError(f"--pretrained_path {path}: missing key {e.args[0]}") from None
        used = {"model.vision_model.embeddings.position_ids"}  # a buffer older transformers saved
        n_hf = len([k for k in state if k.startswith("model.vision_model.") and k not in used])
        n_layers = len([k for k in openai if k.endswith("attn.in_proj_weight")])
        if n_hf != 7 + n_layers * 16:  # every image-tower tensor was converted: none left over
            raise CheckpointError(f"--pretrained_path {path}: {n_hf} image-tower tensors, expected {7 + n_layers * 16}")
        own = {f"encoder.{k}": v for k, v in checkpoint_filter_fn(openai, self.encoder).items()}
        own.update({"fc.weight": state["model.fc.weight"], "fc.bias": state["model.fc.bias"]})
        load_model_weights(self, own, f"--pretrained_path {path} (C2P-CLIP)")

    def forward_head(self, features: torch.Tensor, label: torch.Tensor) -> dict[str, Any]:
        return self.outputs(self.fc(F.normalize(features.float(), dim=-1)).squeeze(1), label)
