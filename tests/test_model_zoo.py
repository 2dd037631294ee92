"""Zoo models: forward/backward on CPU, official checkpoint layouts, and loading errors."""

import pytest
import torch
import torchvision

from aigbench.engine.checkpoint import CheckpointError
from aigbench.engine.contract import validate_output
from aigbench.registry import MODELS


def step(model, size=32, b=2):
    """One forward/backward step; returns the output dict."""
    model.train()
    image, label = torch.randn(b, 3, size, size), torch.tensor([0.0, 1.0])[:b]
    out = model(image, label, path=["a", "b"][:b], generator=["", ""][:b], index=torch.arange(b))
    validate_output(out, b, type(model).__name__)
    out["backward_loss"].backward()
    return out


def grads(module):
    return [p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters() if p.requires_grad]


@pytest.mark.parametrize(
    "name, kwargs, size",
    [
        ("CNNSpot", {}, 32),
        ("NPR", {}, 32),
        ("DCTDetector", {"image_size": 32, "width": 8}, 32),
        ("TimmDetector", {"backbone": "resnet18", "image_size": 32}, 32),
        ("UnivFD", {"clip_model": "ViT-B/32", "image_size": 64}, 64),
    ],
)
def test_forward_backward_small_cpu(name, kwargs, size):
    model = MODELS.get(name)(**kwargs)
    step(model, size)
    assert any(grads(model)), f"{name}: no gradient reached a trainable parameter"


def test_timm_probe_freezes_backbone_and_keeps_it_in_eval():
    model = MODELS.get("TimmDetector")(backbone="resnet18", mode="probe", image_size=32)
    model.train()
    assert not model.backbone.training and model.head.training
    assert all(not p.requires_grad for p in model.backbone.parameters())
    bn = model.backbone.bn1
    before = bn.running_mean.clone()
    step(model)
    assert torch.equal(before, bn.running_mean)  # frozen BatchNorm statistics did not move
    assert model.head.weight.grad is not None


def test_timm_tune_trains_everything():
    model = MODELS.get("TimmDetector")(backbone="resnet18", mode="tune", image_size=32)
    step(model)
    params = list(model.parameters())
    assert all(p.requires_grad for p in params)
    assert all(p.grad is not None for p in params)  # some are exactly 0: timm zero-inits each last block BN
    assert model.backbone.conv1.weight.grad.abs().sum() > 0


def test_timm_backbone_loads_torchvision_and_timm_weights(tmp_path):
    import timm

    tv = torchvision.models.resnet18()  # torchvision layout, 1000-class fc
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    model = MODELS.get("TimmDetector")(backbone="resnet18", pretrained_path=str(tmp_path / "tv.pth"), image_size=32)
    for k, v in tv.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(model.backbone.state_dict()[k], v), k
    src = timm.create_model("resnet18", num_classes=10)
    torch.save({"state_dict": src.state_dict()}, tmp_path / "timm.pth")
    model = MODELS.get("TimmDetector")(backbone="resnet18", pretrained_path=str(tmp_path / "timm.pth"), image_size=32)
    assert torch.equal(model.backbone.conv1.weight, src.conv1.weight)
    with pytest.raises(CheckpointError, match="does not exist"):
        MODELS.get("TimmDetector")(backbone="resnet18", pretrained_path=str(tmp_path / "missing.pth"))
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "r34.pth")
    with pytest.raises(CheckpointError, match="layer1.2"):
        MODELS.get("TimmDetector")(backbone="resnet18", pretrained_path=str(tmp_path / "r34.pth"))


def test_cnnspot_official_checkpoint_layout(tmp_path):
    # CNNDetection saves {"model": torchvision-style resnet50(num_classes=1).state_dict(), ...}
    ref = torchvision.models.resnet50(num_classes=1)
    for p in ref.parameters():
        torch.nn.init.normal_(p)
    official = {"model": ref.state_dict(), "optimizer": {}, "total_steps": 123}
    torch.save(official, tmp_path / "blur_jpg_prob0.5.pth")
    model = MODELS.get("CNNSpot")(pretrained_path=str(tmp_path / "blur_jpg_prob0.5.pth"))
    own = model.net.state_dict()
    assert set(own) == set(ref.state_dict())
    for k, v in ref.state_dict().items():
        assert torch.equal(own[k], v), k
    assert own["fc.weight"].shape == (1, 2048)


def test_cnnspot_imagenet_init_keeps_fresh_head(tmp_path):
    ref = torchvision.models.resnet50()  # 1000-class ImageNet layout
    torch.save(ref.state_dict(), tmp_path / "resnet50-imagenet.pth")
    model = MODELS.get("CNNSpot")(pretrained_path=str(tmp_path / "resnet50-imagenet.pth"))
    assert torch.equal(model.net.layer4[2].conv3.weight, ref.layer4[2].conv3.weight)
    assert model.net.fc.weight.shape == (1, 2048)


def test_cnnspot_mismatched_file_lists_keys(tmp_path):
    torch.save({"model": torchvision.models.resnet18(num_classes=1).state_dict()}, tmp_path / "r18.pth")
    with pytest.raises(CheckpointError) as e:
        MODELS.get("CNNSpot")(pretrained_path=str(tmp_path / "r18.pth"))
    msg = str(e.value)
    assert "missing keys" in msg and "layer1.0.conv3.weight" in msg and "shape mismatches" in msg


def npr_official_state():
    """NPR.pth layout: 3x3 stem, bn1, layer1/layer2 of torchvision's Bottleneck ResNet-50, fc1."""
    tv = torchvision.models.resnet50().state_dict()
    state = {
        k: (torch.rand_like(v) + 0.5 if k.endswith("running_var") else torch.randn_like(v) * 0.05)
        if v.is_floating_point()
        else v
        for k, v in tv.items()
        if k.startswith(("bn1.", "layer1.", "layer2."))
    }
    state["conv1.weight"] = torch.randn(64, 3, 3, 3)
    state["fc1.weight"] = torch.randn(1, 512)
    state["fc1.bias"] = torch.randn(1)
    return state


def test_npr_official_checkpoint_layout(tmp_path):
    state = npr_official_state()
    torch.save(state, tmp_path / "NPR.pth")
    model = MODELS.get("NPR")(pretrained_path=str(tmp_path / "NPR.pth"))
    own = model.net.state_dict()
    assert set(own) == set(state)
    for k, v in state.items():
        assert torch.equal(own[k], v), k
    state["layer3.0.conv1.weight"] = torch.randn(256, 512, 1, 1)
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unexpected keys \\(1\\): layer3.0.conv1.weight"):
        MODELS.get("NPR")(pretrained_path=str(tmp_path / "extra.pth"))


def test_npr_residual_is_zero_on_2x2_constant_blocks():
    from aigbench.model_zoo.npr import npr_residual

    x = torch.arange(16.0).view(1, 1, 4, 4)
    blocky = torch.nn.functional.interpolate(x[..., ::2, ::2], scale_factor=2, mode="nearest")
    assert torch.equal(npr_residual(blocky), torch.zeros_like(blocky))
    assert npr_residual(x).abs().sum() > 0


def openai_clip_vit_b32_state(width=768, layers=12, patch=32, grid=7, out_dim=512):
    """Random tensors in OpenAI CLIP's key layout (clip/model.py VisionTransformer + text keys)."""
    s = {
        "visual.class_embedding": torch.randn(width),
        "visual.positional_embedding": torch.randn(grid * grid + 1, width),
        "visual.proj": torch.randn(width, out_dim),
        "visual.conv1.weight": torch.randn(width, 3, patch, patch),
        "visual.ln_pre.weight": torch.randn(width),
        "visual.ln_pre.bias": torch.randn(width),
        "visual.ln_post.weight": torch.randn(width),
        "visual.ln_post.bias": torch.randn(width),
        "token_embedding.weight": torch.randn(10, 512),
        "logit_scale": torch.tensor(4.6),
        "transformer.resblocks.0.ln_1.weight": torch.randn(512),
    }
    for i in range(layers):
        b = f"visual.transformer.resblocks.{i}."
        s.update(
            {
                b + "attn.in_proj_weight": torch.randn(3 * width, width),
                b + "attn.in_proj_bias": torch.randn(3 * width),
                b + "attn.out_proj.weight": torch.randn(width, width),
                b + "attn.out_proj.bias": torch.randn(width),
                b + "ln_1.weight": torch.randn(width),
                b + "ln_1.bias": torch.randn(width),
                b + "ln_2.weight": torch.randn(width),
                b + "ln_2.bias": torch.randn(width),
                b + "mlp.c_fc.weight": torch.randn(4 * width, width),
                b + "mlp.c_fc.bias": torch.randn(4 * width),
                b + "mlp.c_proj.weight": torch.randn(width, 4 * width),
                b + "mlp.c_proj.bias": torch.randn(width),
            }
        )
    return s


def test_univfd_official_layouts(tmp_path):
    clip = openai_clip_vit_b32_state()
    torch.save(clip, tmp_path / "ViT-B-32-state.pth")
    fc = {"weight": torch.randn(1, 512), "bias": torch.randn(1)}
    torch.save(fc, tmp_path / "fc_weights.pth")
    model = MODELS.get("UnivFD")(
        clip_model="ViT-B/32",
        clip_path=str(tmp_path / "ViT-B-32-state.pth"),
        pretrained_path=str(tmp_path / "fc_weights.pth"),
    )
    enc = model.encoder
    expected = {
        enc.cls_token.view(-1): clip["visual.class_embedding"],
        enc.pos_embed[0]: clip["visual.positional_embedding"],
        enc.patch_embed.proj.weight: clip["visual.conv1.weight"],
        enc.norm_pre.weight: clip["visual.ln_pre.weight"],
        enc.norm.bias: clip["visual.ln_post.bias"],
        enc.head.weight: clip["visual.proj"].T,
        model.fc.weight: fc["weight"],
        model.fc.bias: fc["bias"],
    }
    for i in range(12):
        blk, b = enc.blocks[i], f"visual.transformer.resblocks.{i}."
        expected.update(
            {
                blk.attn.qkv.weight: clip[b + "attn.in_proj_weight"],
                blk.attn.qkv.bias: clip[b + "attn.in_proj_bias"],
                blk.attn.proj.weight: clip[b + "attn.out_proj.weight"],
                blk.norm1.weight: clip[b + "ln_1.weight"],
                blk.norm2.bias: clip[b + "ln_2.bias"],
                blk.mlp.fc1.weight: clip[b + "mlp.c_fc.weight"],
                blk.mlp.fc2.weight: clip[b + "mlp.c_proj.weight"],
                blk.mlp.fc2.bias: clip[b + "mlp.c_proj.bias"],
            }
        )
    for got, want in expected.items():
        assert torch.equal(got, want)
    assert torch.equal(enc.head.bias, torch.zeros(512))  # CLIP's projection has no bias
    assert not any(p.requires_grad for p in enc.parameters())
    # encode_image = ln_post(class token) @ proj: checked on the loaded encoder
    x = torch.randn(1, 3, 224, 224)
    feats = enc.forward_head(enc.forward_features(x), pre_logits=True)
    assert torch.allclose(enc(x), feats @ clip["visual.proj"], atol=1e-3, rtol=1e-4)


def test_univfd_bad_files(tmp_path):
    torch.save({"weight": torch.randn(1, 768), "bias": torch.randn(1)}, tmp_path / "fc_l14.pth")
    with pytest.raises(CheckpointError, match="shape mismatches.*weight: file \\[1, 768\\] vs model \\[1, 512\\]"):
        MODELS.get("UnivFD")(clip_model="ViT-B/32", pretrained_path=str(tmp_path / "fc_l14.pth"))
    with pytest.raises(CheckpointError, match="does not exist"):
        MODELS.get("UnivFD")(clip_model="ViT-B/32", clip_path=str(tmp_path / "nope.pt"))


def test_dct_matches_scipy_and_detector_standardizes():
    import numpy as np
    from scipy.fft import dctn

    from aigbench.model_zoo.frequency import dct_matrix, log_dct_spectrum

    x = torch.randn(2, 3, 8, 8)
    ours = dct_matrix(8) @ x @ dct_matrix(8).T
    ref = dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    assert np.allclose(ours.numpy(), ref, atol=1e-5)
    assert torch.allclose(log_dct_spectrum(x, dct_matrix(8), 1e-4), torch.log(ours.abs() + 1e-4))


def test_pca_logreg_matches_sklearn_pipeline():
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    from aigbench.datasets.transforms import decode_image

    from conftest import cifake_subset

    items = cifake_subset("train", 150)
    x = np.stack([decode_image(p) for p, _ in items]).astype(np.float32) / 255.0
    y = np.array([label for _, label in items], dtype=np.float32)
    images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    model = MODELS.get("PCALogReg")(n_components=20)
    model.train()
    for i in range(0, len(images), 64):
        out = model(images[i : i + 64], torch.from_numpy(y[i : i + 64]))
        out["backward_loss"].backward()
    model.eval()  # fits
    flat = images.flatten(1).numpy().astype(np.float64)
    pca = PCA(n_components=20, random_state=0).fit(flat)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(pca.transform(flat), y)
    ref = lr.predict_proba(pca.transform(flat))[:, 1]
    got = model(images, torch.from_numpy(y))["pred_label"].detach().numpy()
    assert np.allclose(got, ref, atol=1e-4)
    assert bool(model.fitted) and model.anchor.grad is not None and model.anchor.grad.abs().sum() == 0
