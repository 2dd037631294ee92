"""UnivFD: Ojha, Li, Lee. "Towards Universal Fake Image Detectors that Generalize Across
Generative Models". CVPR 2023. Official code: github.com/WisconsinAIVision/UniversalFakeDetect.

Frozen CLIP ViT-L/14 image features (``encode_image``: the class token after ``ln_post`` and
the 1024 → 768 projection) and a trainable linear layer ``fc`` (768 → 1). The CLIP image
encoder is built with timm as OpenAI's architecture, QuickGELU activations included
(``vit_large_patch14_clip_quickgelu_224.openai``, whose ``head`` is CLIP's projection; timm's
``vit_large_patch14_clip_224`` uses GELU and computes other features from the same weights);
nothing is downloaded.

Weights, local files only:

* ``--clip_path``: a CLIP state dict in OpenAI (``visual.conv1.weight``,
  ``visual.transformer.resblocks.N...``, ``visual.proj``), open_clip or timm layout, read with
  ``weights_only=True``; timm's converter maps it and the load is strict. OpenAI's own
  ``ViT-L-14.pt`` (what ``clip.load`` uses) is a TorchScript archive: loading it runs code stored
  in the file, so it is refused unless ``--trust_torchscript`` is given. Better, convert it once
  (``torch.save(torch.jit.load("ViT-L-14.pt").state_dict(), "ViT-L-14-state.pth")``) and pass
  the state dict.
* ``--pretrained_path``: the official ``pretrained_weights/fc_weights.pth``, a state dict of
  ``fc`` alone (``weight`` [1, 768], ``bias`` [1]); or a whole UnivFD state dict.

Without ``--clip_path`` (or a whole UnivFD state dict) the encoder is random: the model then
probes random features, and says so in a warning.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any, Literal, Optional

import torch
from torch import nn

from aigbench.datasets.preprocess import Preprocess
from aigbench.engine.checkpoint import CheckpointError, load_model_weights
from aigbench.model_zoo.base import BinaryDetector, PublishedWeights, read_state_dict, weights_identity
from aigbench.registry import MODELS

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# CLIP name → (timm model with OpenAI's QuickGELU, embedding size after the projection)
CLIP_MODELS = {
    "ViT-L/14": ("vit_large_patch14_clip_quickgelu_224.openai", 768),
    "ViT-B/16": ("vit_base_patch16_clip_quickgelu_224.openai", 512),
    "ViT-B/32": ("vit_base_patch32_clip_quickgelu_224.openai", 512),
}


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` is a TorchScript zip archive (it holds ``constants.pkl``, and code)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(name.split("/", 1)[-1] == "constants.pkl" for name in z.namelist())


def read_clip_state(path: str, trust_torchscript: bool = False, flag: str = "--clip_path") -> dict[str, torch.Tensor]:
    """A CLIP checkpoint's tensors: a state dict file, or (if trusted) OpenAI's TorchScript archive."""
    if not (Path(path).is_file() and is_torchscript_archive(path)):
        return read_state_dict(path, flag)
    if not trust_torchscript:
        raise CheckpointError(
            f"{flag} {path!r} looks like a TorchScript archive (as OpenAI's ViT-L-14.pt is); loading it "
            "runs code stored in the file. If you trust the file, pass --trust_torchscript; or re-save its "
            f'weights once, torch.save(torch.jit.load({path!r}).state_dict(), "clip-state.pth"), '
            f"and pass that file as {flag}"
        )
    try:
        return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    except Exception as e:
        raise CheckpointError(f"{flag} {path!r}: cannot load the TorchScript archive: {e}") from None


def load_clip_visual(encoder: nn.Module, path: str, trust_torchscript: bool = False, flag: str = "--clip_path") -> None:
    """Load CLIP image-encoder weights into a timm CLIP ViT, strictly (text tower ignored)."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    state = checkpoint_filter_fn(read_clip_state(path, trust_torchscript, flag), encoder)
    load_model_weights(encoder, state, f"{flag} {path}")


def frozen_clip_encoder(
    clip_model: str, clip_path: str, image_size: int, trust_torchscript: bool = False
) -> tuple[nn.Module, Optional[dict[str, Any]]]:
    """A frozen CLIP image encoder (timm, OpenAI's QuickGELU architecture; ``head`` = CLIP's
    projection) in ``eval()`` mode, with ``--clip_path`` weights when given, and the identity of
    that file (None for a random encoder, which checkpoints then save whole)."""
    import timm

    timm_name, dim = CLIP_MODELS[clip_model]
    encoder = timm.create_model(timm_name, pretrained=False, num_classes=dim, img_size=image_size)
    if clip_path:
        load_clip_visual(encoder, clip_path, trust_torchscript)
    encoder.requires_grad_(False)
    encoder.eval()
    return encoder, ({"clip_model": clip_model, **weights_identity(clip_path)} if clip_path else None)


def warn_random_clip(model: str, clip_model: str) -> None:
    logging.getLogger("aigbench").warning(
        "%s without --clip_path probes RANDOM features of a randomly initialized CLIP %s "
        "(nothing is downloaded); pass --clip_path <CLIP weights file> to load the real encoder",
        model,
        clip_model,
    )


@MODELS.register_module()
class UnivFD(BinaryDetector):
    """Frozen CLIP ViT-L/14 image features and a linear head."""

    backbone_name = "encoder"

    paper = "Ojha et al., Towards Universal Fake Image Detectors that Generalize Across Generative Models, CVPR 2023"
    checkpoints = (
        PublishedWeights(
            "fc_weights.pth",
            "--clip_path ViT-L-14.pt --trust_torchscript --pretrained_path fc_weights.pth",
            "https://github.com/WisconsinAIVision/UniversalFakeDetect (pretrained_weights/fc_weights.pth); "
            "CLIP from https://openaipublic.azureedge.net/clip/models/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
            sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836 (ViT-L-14.pt, in OpenAI's URL)",
            note="fc alone: weight [1, 768], bias [1]",
        ),
    )
    # the official code: CLIP normalization, random (train) or centre (test) 224 crop, no resize
    preprocess = Preprocess(224, CLIP_MEAN, CLIP_STD, interpolation="bicubic", resize_mode="crop")
    cam_target_layer = "encoder.blocks.-1.norm1"  # bench explain: CLIP's last block, class token dropped

    def __init__(
        self,
        clip_model: Literal["ViT-L/14", "ViT-B/16", "ViT-B/32"] = "ViT-L/14",
        clip_path: str = "",
        pretrained_path: str = "",
        image_size: int = 224,
        trust_torchscript: bool = False,
    ) -> None:
        super().__init__()
        # identity of the frozen encoder, read once from its weight file (none: random, saved whole)
        self.encoder, self._frozen_identity = frozen_clip_encoder(clip_model, clip_path, image_size, trust_torchscript)
        self.frozen = True
        self.fc = nn.Linear(CLIP_MODELS[clip_model][1], 1)
        whole = self.load_head(pretrained_path) if pretrained_path else False
        self.pretrained = bool(clip_path) or whole
        if not self.pretrained:
            warn_random_clip("UnivFD", clip_model)

    def load_head(self, path: str) -> bool:
        """The official ``fc_weights.pth`` ({weight, bias}), or a whole UnivFD state dict.

        Returns True when the file held the whole model, encoder included.
        """
        state = read_state_dict(path)
        if set(state) == {"weight", "bias"}:
            load_model_weights(self.fc, state, f"--pretrained_path {path} (UnivFD fc)")
            return False
        if set(state) == {"fc.weight", "fc.bias"}:
            load_model_weights(self.fc, {k[3:]: v for k, v in state.items()}, f"--pretrained_path {path} (UnivFD fc)")
            return False
        load_model_weights(self, state, f"--pretrained_path {path}")
        return True

    def forward_head(self, features: torch.Tensor, label: torch.Tensor) -> dict[str, Any]:
        return self.outputs(self.fc(features).squeeze(1), label)
