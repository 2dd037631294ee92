"""Community Forensics' ViT: the Hugging Face snapshot layout (model.safetensors + config.json,
keys vit.*), strict loading, the official preprocessing, and its outputs against timm's ViT."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from aigbench.engine.checkpoint import CheckpointError
from aigbench.registry import MODELS

from test_zoo_reference import TOL, labels, max_diff


def released_snapshot(folder, input_size=224, seed=0):
    """A random ViT-S/16 saved as PyTorchModelHubMixin saves ViTClassifier: model.safetensors with
    ``vit.`` keys and the JSON of its __init__ arguments."""
    import timm

    torch.manual_seed(seed)
    ref = timm.create_model(f"vit_small_patch16_{input_size}.augreg_in21k_ft_in1k", pretrained=False)
    ref.head = torch.nn.Linear(384, 1)
    with torch.no_grad():
        for n, p in ref.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.05)
    ref.eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_file({f"vit.{k}": v.contiguous() for k, v in ref.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_size": "small",
                "input_size": input_size,
                "patch_size": 16,
                "freeze_backbone": False,
                "device": "cuda",
            }
        )
    )
    return ref


def test_hf_snapshot_loads_strictly_and_matches_timm(tmp_path):
    snap = tmp_path / "models--OwensLab--commfor-model-224" / "snapshots" / "26afc31e"
    ref = released_snapshot(snap)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = torch.sigmoid(ref(x).squeeze(1))
    for path in (snap, snap.parent.parent, snap / "model.safetensors"):  # snapshot, hub cache folder, file
        model = MODELS.get("CommForViT")(image_size=224, pretrained_path=str(path)).eval()
        with torch.no_grad():
            got = model(x, labels(2))["pred_label"]
        assert model.pretrained and max_diff(got, want) < TOL
    assert 0.02 < want.min() and want.max() < 0.98
    keys = set(model.state_dict())
    assert "vit.head.weight" in keys and model.vit.head.weight.shape == (1, 384)


def test_official_preprocessing():
    cls = MODELS.get("CommForViT")
    for size, resize in ((224, 256), (384, 440)):
        cfg = cls.preprocess_cfg({"image_size": size})
        assert cfg.resize_mode == "resize_crop" and round(cfg.input_size / cfg.crop_pct) == resize
        assert cfg.mean == (0.485, 0.456, 0.406) and cfg.std == (0.229, 0.224, 0.225)


def test_config_and_weights_must_match_the_flags(tmp_path):
    snap = tmp_path / "snap384"
    released_snapshot(snap, input_size=384)
    with pytest.raises(CheckpointError, match=r"config\.json: input_size is 384 .* pass --image_size 384"):
        MODELS.get("CommForViT")(image_size=224, pretrained_path=str(snap))
    (snap / "config.json").unlink()  # without config.json the positional embedding tells
    with pytest.raises(CheckpointError, match="pass --image_size 384"):
        MODELS.get("CommForViT")(image_size=224, pretrained_path=str(snap))
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        MODELS.get("CommForViT")(pretrained_path=str(tmp_path))
    torch.save(
        {
            "model": {
                "_orig_mod." + k: v
                for k, v in MODELS.get("CommForViT")(image_size=224).state_dict().items()
                if k != "vit.norm.bias"
            }
        },
        tmp_path / "ckpt.pt",
    )
    with pytest.raises(CheckpointError, match=r"vit\.norm\.bias"):
        MODELS.get("CommForViT")(image_size=224, pretrained_path=str(tmp_path / "ckpt.pt"))
