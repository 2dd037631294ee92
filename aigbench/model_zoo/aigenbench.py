"""AI-GenBench's baseline detectors: Pellegrini et al., "AI-GenBench: A New Ongoing Benchmark
for AI-Generated Image Detection", 2025. Official code: github.com/MI-BioLab/AI-GenBench
(``training_and_evaluation/``: model factories and ``training_configurations/*.yaml``).

Each model is a backbone and one linear layer giving one logit, in two variants, registered
under AI-GenBench's names:

* ``<family>_probe``: the backbone is frozen: no gradients, outside the optimizer, and kept
  in ``eval()`` mode for the whole run (AI-GenBench's README warns that ``requires_grad =
  False`` alone lets BatchNorm statistics drift). Checkpoints hold the head and the
  backbone file's identity only.
* ``<family>_tune``: everything trains.

=====================  ==============================================  =============================
family                 backbone (timm architecture, original weights)  features fed to the head
=====================  ==============================================  =============================
``RN50_clip``          OpenAI CLIP RN50 image encoder                   attention-pool output, 1024-d
                       (``resnet50_clip``; ``RN50.pt``)
``clipL14openai``      OpenAI CLIP ViT-L/14, QuickGELU                  projected embedding, 768-d,
                       (``vit_large_patch14_clip_quickgelu_224``)       L2-normalised
``clipL14commonpool``  OpenCLIP ViT-L-14, CommonPool.XL s13B b90K       projected embedding, 768-d,
                       (``vit_large_patch14_clip_224``)                 L2-normalised
``dinov2_vit{s,b,l,g}14``  DINOv2 (``vit_*_patch14_dinov2``;            final-norm class token
                       ``dinov2_vit*14_pretrain.pth``)
=====================  ==============================================  =============================

AI-GenBench's yaml names ``RN50_probe``/``RN50_tune`` are aliases of ``RN50_clip_*``.

Any other ``<timm name>_probe`` / ``<timm name>_tune`` (AI-GenBench's generic names:
``resnet50_tune``, ``convnext_tiny_probe``, ``vit_base_patch16_224.augreg_in21k_tune``) is
:class:`TimmDetector` with ``--backbone`` and ``--mode`` fixed by the name, built on first use by
a registry resolver (:func:`resolve_generic_name`): timm's network and timm's preprocessing of
it (not the CLIP statistics of the families above). torchvision's names that timm shares
(``resnet50``, ``densenet121``, ``vgg16``, ``wide_resnet50_2``, ...) are the same networks, and
torchvision's weight files for them load; a torchvision name timm does not use (``vit_b_16``)
is an error that names timm's twin (``vit_base_patch16_224``), whose weights are in another layout.

As in AI-GenBench: 224 x 224 inputs squashed with a bilinear resize (no crop), CLIP's mean and
std for every backbone (DINOv2 included), a linear head with PyTorch's default init (the
OpenCLIP heads: weight ~ N(0, 0.02)). DINOv2's positional embedding is resampled from its
37 x 37 grid with the official hub code's formula (bicubic, scale factor ``(grid + 0.1) / 37``,
no antialiasing), so the features equal ``torch.hub`` DINOv2's at the same input size.

Weights are local files only (``--pretrained_path``): OpenAI's ``RN50.pt``/``ViT-L-14.pt``
(TorchScript archives: ``--trust_torchscript``, or re-save their ``state_dict()``), open_clip's
``open_clip_pytorch_model.bin`` and DINOv2's ``dinov2_vitl14_pretrain.pth``, in their own
layouts, converted by timm's checkpoint filters and loaded strictly. Without one, the
backbone is random (a probe of random features warns).

The recipe (SGD lr 1e-3, momentum 0.9, weight decay 1e-4, OneCycleLR, gradient clipping at
norm 1, batch 512) is in the ``aigenbench_*`` entries of ``bench init model_zoo``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from aigbench.datasets.preprocess import Preprocess
from aigbench.model_zoo.base import BinaryDetector, PublishedWeights, weights_identity
from aigbench.model_zoo.timm_backbone import TimmDetector, create_backbone, timm_preprocess, warn_random_backbone
from aigbench.model_zoo.univfd import CLIP_MEAN, CLIP_STD, read_clip_state
from aigbench.registry import MODELS

AIGENBENCH_PREPROCESS = Preprocess(224, CLIP_MEAN, CLIP_STD, interpolation="bilinear", resize_mode="resize")
DINOV2_GRID = 37  # the official checkpoints' positional embedding: 518 / 14 patches a side
DINOV2_INTERPOLATE_OFFSET = 0.1  # the hub code's interpolate_offset


@dataclass(frozen=True)
class Family:
    timm_name: str
    num_classes: int  # timm head kept as CLIP's projection (0: none)
    normalize: bool  # L2-normalise the features (AI-GenBench's OpenCLIP models)
    head_std: Optional[float]  # N(0, std) init of the head's weight; None: PyTorch's default
    weights: PublishedWeights


def _dinov2(size: str, width: int) -> Family:
    url = f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{size}14/dinov2_vit{size}14_pretrain.pth"
    return Family(
        f"vit_{ {'s': 'small', 'b': 'base', 'l': 'large', 'g': 'giant'}[size] }_patch14_dinov2",
        0,
        False,
        None,
        PublishedWeights(
            f"dinov2_vit{size}14_pretrain.pth",
            f"--pretrained_path dinov2_vit{size}14_pretrain.pth",
            url + " (what torch.hub.load('facebookresearch/dinov2', ...) downloads)",
            note=f"plain state dict, DINOv2 keys (blocks.N.ls1.gamma, mask_token), pos_embed [1, 1370, {width}]",
        ),
    )


FAMILIES: dict[str, Family] = {
    "RN50_clip": Family(
        "resnet50_clip.openai",
        1024,
        False,
        None,
        PublishedWeights(
            "RN50.pt",
            "--pretrained_path RN50.pt --trust_torchscript",
            "https://openaipublic.azureedge.net/clip/models/"
            "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
            sha256="afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762 (in OpenAI's URL)",
            note="OpenAI CLIP TorchScript archive (visual.* keys); or its re-saved state_dict()",
        ),
    ),
    "clipL14openai": Family(
        "vit_large_patch14_clip_quickgelu_224.openai",
        768,
        True,
        0.02,
        PublishedWeights(
            "ViT-L-14.pt",
            "--pretrained_path ViT-L-14.pt --trust_torchscript",
            "https://openaipublic.azureedge.net/clip/models/"
            "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
            sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836 (in OpenAI's URL)",
            note="OpenAI CLIP TorchScript archive (visual.* keys); or its re-saved state_dict()",
        ),
    ),
    "clipL14commonpool": Family(
        "vit_large_patch14_clip_224",
        768,
        True,
        0.02,
        PublishedWeights(
            "open_clip_pytorch_model.bin",
            "--pretrained_path open_clip_pytorch_model.bin",
            "https://huggingface.co/laion/CLIP-ViT-L-14-CommonPool.XL-s13B-b90K (open_clip_pytorch_model.bin)",
            note="open_clip state dict (visual.conv1.weight, visual.transformer.resblocks.N..., visual.proj)",
        ),
    ),
    "dinov2_vits14": _dinov2("s", 384),
    "dinov2_vitb14": _dinov2("b", 768),
    "dinov2_vitl14": _dinov2("l", 1024),
    "dinov2_vitg14": _dinov2("g", 1536),
}
ALIASES = {"RN50_probe": "RN50_clip_probe", "RN50_tune": "RN50_clip_tune"}  # AI-GenBench's yaml names


def dinov2_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """The official DINOv2 positional embedding ``[1, 1 + M*M, D]`` at a ``grid x grid`` patch
    input, computed as the hub code does at run time (``interpolate_pos_encoding``)."""
    n = pos_embed.shape[1] - 1
    m = int(math.isqrt(n))
    if m * m != n or m == grid:
        return pos_embed
    cls_pos, patch_pos = pos_embed[:, :1].float(), pos_embed[:, 1:].float()
    scale = (grid + DINOV2_INTERPOLATE_OFFSET) / m
    patch_pos = F.interpolate(
        patch_pos.reshape(1, m, m, -1).permute(0, 3, 1, 2),
        scale_factor=(scale, scale),
        mode="bicubic",
        antialias=False,
    )
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)
    return torch.cat([cls_pos, patch_pos], dim=1).to(pos_embed.dtype)


class AIGenBenchDetector(TimmDetector):
    """An AI-GenBench baseline: ``family`` backbone + linear head, ``mode`` probe or tune."""

    family: str = ""
    mode_of_name: str = ""
    preprocess = AIGENBENCH_PREPROCESS

    def __init__(self, pretrained_path: str = "", image_size: int = 224, trust_torchscript: bool = False) -> None:
        BinaryDetector.__init__(self)  # TimmDetector's flags (--backbone, --mode) are fixed by the name here
        fam = FAMILIES[self.family]
        self.mode = self.mode_of_name
        self.frozen = self.mode == "probe"
        self.normalize = fam.normalize
        state = self.read_weights(pretrained_path, image_size, trust_torchscript) if pretrained_path else None
        self.backbone = create_backbone(fam.timm_name, image_size, pretrained_path, fam.num_classes, state)
        self._frozen_identity = (
            {"backbone": fam.timm_name, **weights_identity(pretrained_path)}
            if self.mode == "probe" and pretrained_path
            else None
        )
        self.pretrained = bool(pretrained_path)
        self.head = nn.Linear(fam.num_classes or self.backbone.num_features, 1)
        if fam.head_std is not None:
            nn.init.normal_(self.head.weight, std=fam.head_std)
        if self.mode == "probe":
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        if not self.pretrained:
            warn_random_backbone(type(self).__name__, self.mode, fam.timm_name.split(".")[0], fam.weights.name)

    def read_weights(self, path: str, image_size: int, trust_torchscript: bool) -> dict[str, torch.Tensor]:
        """The file's tensors in its own layout; DINOv2's positional embedding at this input size."""
        state = read_clip_state(path, trust_torchscript, flag="--pretrained_path")
        if self.family.startswith("dinov2"):
            state = {k: v for k, v in state.items() if k != "mask_token"}  # masked pretraining only
            if "pos_embed" in state:
                state["pos_embed"] = dinov2_pos_embed(state["pos_embed"], image_size // 14)
        return state

    @classmethod
    def preprocess_cfg(cls, kwargs: dict[str, Any]) -> Preprocess:
        return AIGENBENCH_PREPROCESS

    def forward_head(self, features: torch.Tensor, label: torch.Tensor) -> dict[str, Any]:
        if self.normalize:
            features = F.normalize(features.float(), dim=-1)
        return self.outputs(self.head(features).squeeze(1), label)


def _register() -> None:
    for family, fam in FAMILIES.items():
        for mode in ("probe", "tune"):
            name = f"{family}_{mode}"
            cls = type(
                name,
                (AIGenBenchDetector,),
                {
                    "family": family,
                    "mode_of_name": mode,
                    "paper": "Pellegrini et al., AI-GenBench: A New Ongoing Benchmark for AI-Generated Image "
                    f"Detection, 2025 ({family} {mode})",
                    "checkpoints": (fam.weights,),
                    "__doc__": f"AI-GenBench {mode}: {fam.timm_name.split('.')[0]} + linear head"
                    + (" (frozen backbone in eval mode)" if mode == "probe" else " (everything trains)"),
                    "__module__": __name__,
                },
            )
            globals()[name] = cls
            MODELS.register_module(name=name, module=cls)
    for alias, name in ALIASES.items():
        MODELS.register_module(name=alias, module=globals()[name])


_register()


# ---- AI-GenBench's generic names: <timm name>_probe / <timm name>_tune --------------------------

GENERIC_MODES = ("probe", "tune")
# torchvision's names of networks that timm builds under another name. Their torchvision weight
# files do not load into timm's twin (other keys), so these names are an error naming the twin.
TORCHVISION_TWINS = {
    "vit_b_16": "vit_base_patch16_224",
    "vit_b_32": "vit_base_patch32_224",
    "vit_l_16": "vit_large_patch16_224",
    "vit_l_32": "vit_large_patch32_224",
    "swin_t": "swin_tiny_patch4_window7_224",
    "swin_s": "swin_small_patch4_window7_224",
    "swin_b": "swin_base_patch4_window7_224",
    "mobilenet_v2": "mobilenetv2_100",
    "mobilenet_v3_large": "mobilenetv3_large_100",
    "mobilenet_v3_small": "mobilenetv3_small_100",
    "regnet_y_400mf": "regnety_004",
    "regnet_y_1_6gf": "regnety_016",
    "regnet_y_16gf": "regnety_160",
    "regnet_x_400mf": "regnetx_004_tv",
}


class GenericTimmDetector(TimmDetector):
    """Base of AI-GenBench's generic ``<timm name>_probe`` / ``_tune``: a TimmDetector whose
    ``--backbone`` and ``--mode`` are fixed by its registered name."""

    timm_name: str = ""
    mode_of_name: str = "tune"

    def __init__(self, pretrained_path: str = "", image_size: int = 224, drop_rate: float = 0.0) -> None:
        super().__init__(self.timm_name, self.mode_of_name, pretrained_path, image_size, drop_rate)

    def run_name(self) -> str:
        return type(self).__name__

    @classmethod
    def preprocess_cfg(cls, kwargs: dict[str, Any]) -> Preprocess:
        """timm's ``pretrained_cfg`` of the backbone, as ``TimmDetector --backbone``."""
        return timm_preprocess(cls.timm_name)


def resolve_generic_name(name: str) -> Optional[type]:
    """The class of ``<timm name>_probe`` / ``<timm name>_tune`` (registered under ``name`` in
    this module), None for a name of another shape; ``KeyError`` naming the timm model to use for
    a torchvision-only name or a near miss of a timm name."""
    import timm

    base, sep, mode = name.rpartition("_")
    if not sep or not base or mode.lower() not in GENERIC_MODES:
        return None
    mode = mode.lower()
    arch = base if timm.is_model(base) else base.lower()
    if timm.is_model(arch):
        cls = type(
            name,
            (GenericTimmDetector,),
            {
                "timm_name": arch,
                "mode_of_name": mode,
                "paper": "timm (Wightman 2019); AI-GenBench's generic backbone names (Pellegrini et al. 2025)",
                "__doc__": f"AI-GenBench {mode}: timm {arch} + linear head"
                + (" (frozen backbone in eval mode)" if mode == "probe" else " (everything trains)"),
                "__module__": __name__,
                "__qualname__": name,
            },
        )
        globals()[name] = cls
        return cls
    frozen = "a frozen" if mode == "probe" else "a trained"
    generic = f"<timm name>_{mode} is AI-GenBench's generic name of {frozen} timm backbone with a linear head"
    twin = TORCHVISION_TWINS.get(arch)
    if twin:
        raise KeyError(
            f"{base!r} is torchvision's name; aigbench builds backbones with timm, which calls this network "
            f"{twin!r}: use --model {twin}_{mode}, with --pretrained_path weights in timm's layout "
            f"(torchvision's {base} files have other keys and do not load). {generic}."
        )
    close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.75)
    if close:
        names = " or ".join(repr(f"{c}_{mode}") for c in close)
        raise KeyError(
            f"{base!r} is not a timm model name, so {name!r} is not a generic name either; did you mean "
            f"{names}? {generic} (timm.list_models() lists timm's names)."
        )
    return None


MODELS.add_resolver(resolve_generic_name)
