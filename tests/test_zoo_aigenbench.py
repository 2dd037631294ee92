"""AI-GenBench's model family: names, probe semantics, and the backbones against references
(open_clip for OpenAI CLIP RN50 and OpenCLIP ViT-L-14; the official DINOv2 hub formula for the
positional embedding), with weights in each project's own file layout, loaded strictly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aigbench.engine.checkpoint import CheckpointError, model_state
from aigbench.model_zoo.univfd import CLIP_MEAN, CLIP_STD
from aigbench.registry import MODELS

from test_model_zoo import step
from test_zoo_reference import TOL, labels, max_diff, openai_clip, randomize_bn_


def test_aigenbench_names_and_preprocessing():
    for name in (
        "dinov2_vitl14_tune",
        "dinov2_vitl14_probe",
        "RN50_clip_probe",
        "RN50_clip_tune",
        "clipL14commonpool_probe",
        "clipL14openai_tune",
        "RN50_probe",
    ):
        cls = MODELS.get(name)
        cfg = cls.preprocess_cfg({})
        assert (cfg.input_size, cfg.resize_mode, cfg.interpolation) == (224, "resize", "bilinear")
        assert cfg.mean == CLIP_MEAN and cfg.std == CLIP_STD  # CLIP statistics for DINOv2 too, as AI-GenBench
        assert cls.checkpoints and cls.checkpoints[0].source.startswith("https://")
    assert MODELS.get("RN50_probe") is MODELS.get("RN50_clip_probe")


def test_probe_keeps_backbone_in_eval_and_checkpoints_only_the_head(tmp_path):
    net = MODELS.get("dinov2_vits14_tune")(image_size=28)
    torch.save(net.backbone.state_dict(), tmp_path / "dinov2_vits14_pretrain.pth")  # timm keys = DINOv2 keys
    model = MODELS.get("dinov2_vits14_probe")(
        pretrained_path=str(tmp_path / "dinov2_vits14_pretrain.pth"), image_size=28
    )
    model.train()
    assert not model.backbone.training and model.head.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    step(model, size=28)
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
    assert model.head.weight.grad is not None
    assert set(model_state(model)["model"]) == {"head.weight", "head.bias"}  # the backbone is the file's
    tune = MODELS.get("dinov2_vits14_tune")(image_size=28)
    step(tune, size=28)
    assert tune.backbone.training is True and tune.backbone.blocks[0].attn.qkv.weight.grad is not None


def test_rn50_clip_matches_open_clip_attention_pool(tmp_path):
    ref, path = openai_clip("RN50", tmp_path)
    randomize_bn_(ref.visual, 3)
    torch.save({k: v for k, v in ref.state_dict().items()}, path)  # OpenAI layout, BN statistics included
    model = MODELS.get("RN50_clip_probe")(pretrained_path=str(path)).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = ref.encode_image(x)  # attention-pool output, not normalised
        model.head.weight.copy_(torch.randn(1, 1024) / want.norm(dim=1).mean())
        got = model.features(x)
        prob = model(x, labels(2))["pred_label"]
        want_prob = torch.sigmoid(model.head(want)).squeeze(1)
    assert got.shape == (2, 1024) and model.pretrained
    assert max_diff(got, want) < TOL * want.abs().max().item(), f"{max_diff(got, want):.2e}"
    assert max_diff(prob, want_prob) < TOL
    assert 0.02 < want_prob.min() and want_prob.max() < 0.98


@pytest.mark.slow
def test_clip_l14_commonpool_matches_open_clip_normalised_embedding(tmp_path):
    # OpenCLIP's ViT-L-14 (GELU, as CommonPool.XL) at 84 px; open_clip's own key names
    ref, path = openai_clip("ViT-L-14", tmp_path, image_size=84)
    model = MODELS.get("clipL14commonpool_probe")(pretrained_path=str(path), image_size=84).eval()
    assert abs(model.head.weight.std().item() - 0.02) < 0.004  # AI-GenBench's head init for OpenCLIP
    x = torch.randn(2, 3, 84, 84)
    with torch.no_grad():
        want = ref.encode_image(x, normalize=True)
        model.head.weight.normal_(0, 1.0)
        got = F.normalize(model.features(x), dim=-1)
        prob = model(x, labels(2))["pred_label"]
        want_prob = torch.sigmoid(model.head(want)).squeeze(1)
    assert max_diff(got, want) < TOL, f"{max_diff(got, want):.2e}"
    assert max_diff(prob, want_prob) < TOL


def hub_pos_embed(pos_embed, w, patch=14, offset=0.1):
    """The official DINOv2 ``interpolate_pos_encoding`` for a square ``w x w`` input."""
    n = pos_embed.shape[1] - 1
    m = int(n**0.5)
    w0 = w // patch
    patch_pos = F.interpolate(
        pos_embed[:, 1:].float().reshape(1, m, m, -1).permute(0, 3, 1, 2),
        mode="bicubic",
        antialias=False,
        scale_factor=(float(w0 + offset) / m, float(w0 + offset) / m),
    )
    return torch.cat([pos_embed[:, :1], patch_pos.permute(0, 2, 3, 1).reshape(1, w0 * w0, -1)], dim=1)


def official_dinov2_state(seed=0):
    """A random ViT-S/14 state dict in DINOv2's official layout: 518-px (37 x 37) positional
    embedding and the mask token of masked pretraining."""
    import timm

    torch.manual_seed(seed)
    net = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0, img_size=518)
    state = net.state_dict()
    with torch.no_grad():
        for k, v in state.items():
            if k.endswith("gamma"):
                v.uniform_(0.5, 1.5)  # LayerScale starts at 1e-5: make the blocks count
            elif k.endswith("bias"):
                v.normal_(0, 0.1)
    state["mask_token"] = torch.zeros(1, 384)
    assert state["pos_embed"].shape == (1, 1370, 384)
    return net, state


def test_dinov2_official_layout_and_hub_positional_embedding(tmp_path):
    import timm

    net, state = official_dinov2_state()
    torch.save(state, tmp_path / "dinov2_vits14_pretrain.pth")
    model = MODELS.get("dinov2_vits14_tune")(pretrained_path=str(tmp_path / "dinov2_vits14_pretrain.pth")).eval()
    want_pos = hub_pos_embed(state["pos_embed"], 224)
    assert max_diff(model.backbone.pos_embed, want_pos) < 1e-6
    # the features: the hub model's final-norm class token, with that positional embedding
    ref = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0, img_size=224).eval()
    ref.load_state_dict({**{k: v for k, v in state.items() if k != "mask_token"}, "pos_embed": want_pos})
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = ref.forward_features(x)[:, 0]
        got = model.features(x)
    assert max_diff(got, want) < TOL
    # timm's own resampling (antialiased, size-based) gives other features: the formula matters
    other = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0, img_size=224).eval()
    from timm.models.vision_transformer import checkpoint_filter_fn

    other.load_state_dict(checkpoint_filter_fn({k: v for k, v in state.items() if k != "mask_token"}, other))
    assert max_diff(other.pos_embed, want_pos) > 1e-4


def test_aigenbench_loader_is_strict(tmp_path):
    _, state = official_dinov2_state()
    del state["blocks.3.mlp.fc2.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"blocks\.3\.mlp\.fc2\.weight"):
        MODELS.get("dinov2_vits14_probe")(pretrained_path=str(tmp_path / "broken.pth"))
    with pytest.raises(CheckpointError, match="does not exist"):
        MODELS.get("dinov2_vits14_probe")(pretrained_path=str(tmp_path / "missing.pth"))


def test_clip_projection_is_part_of_the_weights(tmp_path):
    """CLIP's projection is the backbone's timm head here: a file without it is an error, never a
    random projection."""
    ref, path = openai_clip("RN50", tmp_path)
    state = {k: v for k, v in ref.state_dict().items() if k != "visual.attnpool.c_proj.weight"}
    torch.save(state, tmp_path / "no_proj.pth")
    with pytest.raises(CheckpointError, match=r"head\.proj\.weight"):
        MODELS.get("RN50_clip_probe")(pretrained_path=str(tmp_path / "no_proj.pth"))
