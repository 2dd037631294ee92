"""UnivFD: Ojha, Li, Lee. "Towards Universal Fake Image Detectors that Generalize Across
Generative Models". CVPR 2023. Official code: github.com/WisconsinAIVision/UniversalFakeDetect.

Frozen CLIP ViT-L/14 image features (``encode_image``: the class token after ``ln_post`` and
the 1024 → 768 projection) and a trainable linear layer ``fc`` (768 → 1). The CLIP image
encoder is built with timm (``vit_large_patch14_clip_224.openai``, whose ``head`` is CLIP's
projection); nothing is downloaded.

Weights, local files only:

* ``--clip_path``: OpenAI's ``ViT-L-14.pt`` (a TorchScript archive, as ``clip.load`` uses), or
  a CLIP state dict in OpenAI (``visual.conv1.weight``, ``visual.transformer.resblocks.N...``,
  ``visual.proj``), open_clip or timm layout. timm's converter maps it; the load is strict.
* ``--pretrained_path``: the official ``pretrained_weights/fc_weights.pth``, a state dict of
  ``fc`` alone (``weight`` [1, 768], ``bias`` [1]); or a whole UnivFD state dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from aigbench.engine.checkpoint import CheckpointError, load_model_weights
from aigbench.model_zoo.base import BinaryDetector, read_state_dict
from aigbench.registry import MODELS

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# CLIP name → (timm model, embedding size after the projection)
CLIP_MODELS = {
    "ViT-L/14": ("vit_large_patch14_clip_224.openai", 768),
    "ViT-B/16": ("vit_base_patch16_clip_224.openai", 512),
    "ViT-B/32": ("vit_base_patch32_clip_224.openai", 512),
}


def read_clip_state(path: str) -> dict[str, torch.Tensor]:
    """A CLIP checkpoint's tensors: a state dict file, or OpenAI's TorchScript archive."""
    try:
        return read_state_dict(path, "--clip_path")
    except CheckpointError:
        if not Path(path).is_file():
            raise
        try:  # OpenAI distributes TorchScript archives; their weights come out as a state dict
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        except Exception as e:
            raise CheckpointError(
                f"--clip_path {path!r} is neither a state dict nor a TorchScript archive: {e}"
            ) from None


def load_clip_visual(encoder: nn.Module, path: str) -> None:
    """Load CLIP image-encoder weights into a timm CLIP ViT, strictly (text tower ignored)."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    state = checkpoint_filter_fn(read_clip_state(path), encoder)
    load_model_weights(encoder, state, f"--clip_path {path}")


@MODELS.register_module()
class UnivFD(BinaryDetector):
    """Frozen CLIP ViT-L/14 image features and a linear head."""

    paper = "Ojha et al., Towards Universal Fake Image Detectors that Generalize Across Generative Models, CVPR 2023"
    input_mean = CLIP_MEAN
    input_std = CLIP_STD

    def __init__(
        self,
        clip_model: Literal["ViT-L/14", "ViT-B/16", "ViT-B/32"] = "ViT-L/14",
        clip_path: str = "",
        pretrained_path: str = "",
        image_size: int = 224,
    ) -> None:
        super().__init__()
        import timm

        timm_name, dim = CLIP_MODELS[clip_model]
        self.encoder = timm.create_model(timm_name, pretrained=False, num_classes=dim, img_size=image_size)
        if clip_path:
            load_clip_visual(self.encoder, clip_path)
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.fc = nn.Linear(dim, 1)
        if pretrained_path:
            self.load_head(pretrained_path)

    def load_head(self, path: str) -> None:
        """The official ``fc_weights.pth`` ({weight, bias}), or a whole UnivFD state dict."""
        state = read_state_dict(path)
        if set(state) == {"weight", "bias"}:
            load_model_weights(self.fc, state, f"--pretrained_path {path} (UnivFD fc)")
        elif set(state) == {"fc.weight", "fc.bias"}:
            load_model_weights(self.fc, {k[3:]: v for k, v in state.items()}, f"--pretrained_path {path} (UnivFD fc)")
        else:
            load_model_weights(self, state, f"--pretrained_path {path}")

    def train(self, mode: bool = True) -> UnivFD:
        super().train(mode)
        self.encoder.eval()  # frozen: dropout/drop-path stay off
        return self

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with torch.no_grad():
            features = self.encoder(image)
        return self.outputs(self.fc(features).squeeze(1), label)
