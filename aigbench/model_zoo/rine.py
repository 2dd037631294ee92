"""RINE: Koutlis & Papadopoulos, "Leveraging Representations from Intermediate Encoder-blocks
for Synthetic Image Detection", ECCV 2024. Official code: github.com/mever-team/rine
(``src/models.py``, ``src/utils.py``).

A frozen OpenAI CLIP ViT (ViT-L/14 in the released models) gives, for each of its n blocks, the
class token of ``ln_2``'s output (the normalised mid-block stream that feeds the MLP). A
trainable head (attribute ``rine``, the official key names inside it) then:

* projects each block's token with ``proj1`` (Dropout, then ``nproj`` x [Linear, ReLU, Dropout]);
* weights the blocks with the Trainable Importance Estimator ``alpha`` [1, n, d], softmax over
  the block axis, separately for each of the d features, and sums them;
* projects again (``proj2``) to the embedding z, and ``head`` (3 Linear layers, ReLU, Dropout)
  gives one logit.

Loss as the official training: the **summed** BCE of the batch plus ``factor`` x the supervised
contrastive loss (Khosla et al., temperature 0.07) of the L2-normalised z.

Preprocessing as the official test: a 224 centre crop without resizing (random crop + flip when
training), CLIP mean and std. (Images smaller than 224 are mirror-padded; torchvision's
``CenterCrop`` pads with zeros.)

Weights, local files only: ``--clip_path`` (CLIP, as UnivFD's) and ``--pretrained_path`` the
released ``ckpt/model_{1class,2class,4class,ldm}_trainable.pth``: a dict of the head's tensors
(``alpha``, ``proj1.1.weight``, ..., ``head.6.bias``), loaded strictly into ``rine``. The
released heads differ in ``--nproj``/``--proj_dim`` (4-class: 2/1024; 2-class: 4/128; 1-class
and LDM: 4/1024); a file that does not match says which flags it needs.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from aigbench.datasets.preprocess import Preprocess
from aigbench.engine.checkpoint import CheckpointError, load_model_weights
from aigbench.model_zoo.base import BinaryDetector, PublishedWeights, read_state_dict
from aigbench.model_zoo.univfd import CLIP_MEAN, CLIP_STD, frozen_clip_encoder, warn_random_clip
from aigbench.registry import MODELS

RINE_RELEASES = {  # file: (nproj, proj_dim, training data)
    "model_1class_trainable.pth": (4, 1024, "ProGAN horse"),
    "model_2class_trainable.pth": (4, 128, "ProGAN chair, horse"),
    "model_4class_trainable.pth": (2, 1024, "ProGAN car, cat, chair, horse"),
    "model_ldm_trainable.pth": (4, 1024, "Corvi et al. latent diffusion training set"),
}


def supervised_contrastive(z: torch.Tensor, label: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Khosla et al.'s SupCon loss with one view per image (contrast mode ``all``): for each
    image, the mean log-probability of the images of its class among all others."""
    f = F.normalize(z.float(), dim=1)
    sim = f @ f.T / temperature
    sim = sim - sim.max(dim=1, keepdim=True).values.detach()
    n = f.shape[0]
    not_self = 1.0 - torch.eye(n, device=f.device)
    positive = (label.view(-1, 1) == label.view(1, -1)).float() * not_self
    log_prob = sim - torch.log((sim.exp() * not_self).sum(dim=1, keepdim=True))
    count = positive.sum(dim=1)
    mean_pos = (positive * log_prob).sum(dim=1) / torch.where(count < 1e-6, torch.ones_like(count), count)
    return -mean_pos.mean()


class RINEHead(nn.Module):
    """The trainable part, with the official attribute (key) names."""

    def __init__(self, blocks: int, width: int, nproj: int, proj_dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.randn(1, blocks, proj_dim))
        layers1: list[nn.Module] = [nn.Dropout()]
        layers2: list[nn.Module] = [nn.Dropout()]
        for i in range(nproj):
            layers1 += [nn.Linear(width if i == 0 else proj_dim, proj_dim), nn.ReLU(), nn.Dropout()]
            layers2 += [nn.Linear(proj_dim, proj_dim), nn.ReLU(), nn.Dropout()]
        self.proj1 = nn.Sequential(*layers1)
        self.proj2 = nn.Sequential(*layers2)
        self.head = nn.Sequential(
            nn.Linear(proj_dim, proj_dim),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(proj_dim, proj_dim),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(proj_dim, 1),
        )

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens`` [B, n, width] → (logit [B], embedding z [B, d])."""
        g = self.proj1(tokens.float())
        z = self.proj2((torch.softmax(self.alpha, dim=1) * g).sum(dim=1))
        return self.head(z).squeeze(1), z


@MODELS.register_module()
class RINE(BinaryDetector):
    """Class tokens of every CLIP block's ln_2, weighted by a trainable importance estimator."""

    backbone_name = "encoder"

    paper = (
        "Koutlis & Papadopoulos, Leveraging Representations from Intermediate Encoder-blocks for Synthetic "
        "Image Detection, ECCV 2024"
    )
    checkpoints = tuple(
        PublishedWeights(
            name,
            f"--clip_path ViT-L-14.pt --trust_torchscript --pretrained_path {name} --nproj {nproj} --proj_dim {dim}",
            f"https://github.com/mever-team/rine/raw/main/ckpt/{name}",
            sha256="680d301b6d191da85b9dabcebf42cd3df20c5c669fa8320c498f835d02bf5ccb (computed from the "
            "repository's file, not published)"
            if name == "model_2class_trainable.pth"
            else "",
            note=f"head only (alpha, proj1.*, proj2.*, head.*), trained on {data}",
        )
        for name, (nproj, dim, data) in RINE_RELEASES.items()
    )
    preprocess = Preprocess(224, CLIP_MEAN, CLIP_STD, interpolation="bicubic", resize_mode="crop")
    cam_target_layer = "encoder.blocks.-1.norm1"  # bench explain: CLIP's last block, class token dropped

    def __init__(
        self,
        clip_model: Literal["ViT-L/14", "ViT-B/16", "ViT-B/32"] = "ViT-L/14",
        clip_path: str = "",
        pretrained_path: str = "",
        nproj: int = 2,
        proj_dim: int = 1024,
        factor: float = 0.2,
        image_size: int = 224,
        trust_torchscript: bool = False,
    ) -> None:
        super().__init__()
        self.encoder, self._frozen_identity = frozen_clip_encoder(clip_model, clip_path, image_size, trust_torchscript)
        self.frozen = True
        self.factor = factor
        self.rine = RINEHead(len(self.encoder.blocks), self.encoder.embed_dim, nproj, proj_dim)
        if pretrained_path:
            self.load_released(pretrained_path, nproj, proj_dim)
        self.pretrained = bool(clip_path)
        if not clip_path:
            warn_random_clip("RINE", clip_model)

    def load_released(self, path: str, nproj: int, proj_dim: int) -> None:
        state = read_state_dict(path)
        if "alpha" not in state and "rine.alpha" in state:  # a whole RINE state dict of aigbench
            load_model_weights(self, state, f"--pretrained_path {path}")
            return
        n_linear = len([k for k in state if k.startswith("proj1.") and k.endswith(".weight")])
        alpha = state.get("alpha")
        if alpha is not None and (n_linear, alpha.shape[-1]) != (nproj, proj_dim):
            raise CheckpointError(
                f"--pretrained_path {path}: a RINE head with {n_linear} projection layers of width "
                f"{alpha.shape[-1]}; pass --nproj {n_linear} --proj_dim {alpha.shape[-1]}"
            )
        load_model_weights(self.rine, state, f"--pretrained_path {path} (RINE head)")

    def frozen_features(self, image: torch.Tensor) -> torch.Tensor:
        """[B, n blocks, width]: the class token of each block's ``norm2`` (CLIP's ``ln_2``) output."""
        tokens: list[torch.Tensor] = []
        hooks = [b.norm2.register_forward_hook(lambda m, i, out: tokens.append(out[:, 0])) for b in self.encoder.blocks]
        try:
            with torch.set_grad_enabled(self.grads_through_frozen and torch.is_grad_enabled()):
                self.encoder.forward_features(image)
        finally:
            for h in hooks:
                h.remove()
        return torch.stack(tokens, dim=1)

    def forward_head(self, features: torch.Tensor, label: torch.Tensor) -> dict[str, Any]:
        logit, z = self.rine(features)
        out = self.outputs(logit, label)
        bce = F.binary_cross_entropy_with_logits(logit.float(), label.float(), reduction="sum")
        supcon = supervised_contrastive(z, label)
        out["backward_loss"] = bce + self.factor * supcon
        out["visual_loss"] = {"bce_sum": bce.detach(), "supcon": supcon.detach()}
        return out
