"""Zoo models: forward/backward on CPU, official checkpoint layouts, loading errors, mixed precision,
random-feature warnings and the ``pretrained`` attribute."""

import logging

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


def warnings_about_random_features(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "RANDOM" in r.getMessage()]


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
    assert model.pretrained  # a state dict needs no --trust_torchscript
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


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")
def test_univfd_torchscript_clip_needs_trust(tmp_path, monkeypatch):
    archive = tmp_path / "ViT-L-14.pt"
    torch.jit.script(torch.nn.Linear(4, 2)).save(str(archive))  # a real (tiny) TorchScript archive
    calls = []
    jit_load = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append(a) or jit_load(*a, **k))
    with pytest.raises(CheckpointError) as e:
        MODELS.get("UnivFD")(clip_model="ViT-B/32", clip_path=str(archive), image_size=32)
    msg = str(e.value)
    assert str(archive) in msg and "--clip_path" in msg and "TorchScript archive" in msg
    assert "runs code" in msg and "--trust_torchscript" in msg and "state_dict" in msg
    assert calls == []  # nothing in the file was run
    # Trusted: its state dict ({weight, bias} of the Linear) is read, then fails the strict CLIP load.
    with pytest.raises(
        CheckpointError, match="does not fit VisionTransformer(.|\\n)*unexpected keys \\(2\\): weight, bias"
    ):
        MODELS.get("UnivFD")(clip_model="ViT-B/32", clip_path=str(archive), image_size=32, trust_torchscript=True)
    assert len(calls) == 1


def test_univfd_flags_include_trust_torchscript():
    import argparse

    from aigbench.flags import add_signature_flags, kwargs_from_args

    parser = argparse.ArgumentParser()
    add_signature_flags(parser, MODELS.get("UnivFD"))
    assert kwargs_from_args(MODELS.get("UnivFD"), parser.parse_args([]))["trust_torchscript"] is False
    assert kwargs_from_args(MODELS.get("UnivFD"), parser.parse_args(["--trust_torchscript"]))["trust_torchscript"]


def test_probe_on_random_features_warns_every_time(aigbench_log, tmp_path):
    for _ in range(2):
        model = MODELS.get("TimmDetector")(backbone="resnet18", mode="probe", image_size=32)
        assert model.pretrained is False
    msgs = warnings_about_random_features(aigbench_log)
    assert len(msgs) == 2 and "--pretrained_path" in msgs[0] and "resnet18" in msgs[0]

    aigbench_log.clear()
    assert MODELS.get("TimmDetector")(backbone="resnet18", mode="tune", image_size=32).pretrained is False
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    model = MODELS.get("TimmDetector")(backbone="resnet18", mode="probe", pretrained_path=str(tmp_path / "r18.pth"))
    assert model.pretrained is True
    assert warnings_about_random_features(aigbench_log) == []


def test_univfd_without_clip_weights_warns_every_time(aigbench_log, tmp_path):
    src = MODELS.get("UnivFD")(clip_model="ViT-B/32", image_size=32)
    assert src.pretrained is False
    torch.save(src.state_dict(), tmp_path / "univfd.pth")
    torch.save({"weight": torch.randn(1, 512), "bias": torch.randn(1)}, tmp_path / "fc_weights.pth")
    head = MODELS.get("UnivFD")(clip_model="ViT-B/32", image_size=32, pretrained_path=str(tmp_path / "fc_weights.pth"))
    assert head.pretrained is False  # the official head alone leaves the encoder random
    msgs = warnings_about_random_features(aigbench_log)
    assert len(msgs) == 2 and "--clip_path" in msgs[0] and "UnivFD" in msgs[0]
    # A whole UnivFD state dict holds the encoder: real weights, no warning.
    whole = MODELS.get("UnivFD")(clip_model="ViT-B/32", image_size=32, pretrained_path=str(tmp_path / "univfd.pth"))
    assert whole.pretrained is True and len(warnings_about_random_features(aigbench_log)) == 2


def test_pretrained_attribute_of_every_model(tmp_path):
    assert set(MODELS.list()) >= {"CNNSpot", "NPR", "DCTDetector", "PCALogReg", "TimmDetector", "UnivFD"}
    assert MODELS.get("CNNSpot")().pretrained is False
    torch.save({"model": torchvision.models.resnet50(num_classes=1).state_dict()}, tmp_path / "cnnspot.pth")
    assert MODELS.get("CNNSpot")(pretrained_path=str(tmp_path / "cnnspot.pth")).pretrained is True
    assert MODELS.get("NPR")().pretrained is False
    torch.save(npr_official_state(), tmp_path / "NPR.pth")
    assert MODELS.get("NPR")(pretrained_path=str(tmp_path / "NPR.pth")).pretrained is True
    assert MODELS.get("DCTDetector")(image_size=8, width=4).pretrained is False
    pca = MODELS.get("PCALogReg")(n_components=2, image_size=8)
    assert pca.pretrained is False and "pretrained" not in pca.state_dict()  # a plain attribute


def test_timm_openai_clip_backbone_is_built_with_quickgelu(aigbench_log):
    from timm.layers import QuickGELU

    from aigbench.model_zoo.timm_backbone import openai_clip_quickgelu_name

    model = MODELS.get("TimmDetector")(backbone="vit_base_patch32_clip_224.openai", image_size=64)
    assert all(isinstance(b.mlp.act, QuickGELU) for b in model.backbone.blocks)
    infos = [r.getMessage() for r in aigbench_log.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "vit_base_patch32_clip_quickgelu_224.openai" in infos[0]
    assert (
        openai_clip_quickgelu_name("vit_large_patch14_clip_336.openai") == "vit_large_patch14_clip_quickgelu_336.openai"
    )
    for unchanged in (
        "vit_base_patch16_clip_224.laion2b",  # open_clip weights: GELU
        "vit_base_patch16_clip_224.openai_ft_in1k",  # fine-tuned by timm with GELU
        "vit_base_patch16_clip_quickgelu_224.openai",
        "resnet50_clip.openai",
        "vit_base_patch16_clip_224",
    ):
        assert openai_clip_quickgelu_name(unchanged) == unchanged


def autocast_bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_dct_spectrum_stays_float32_under_autocast():
    torch.manual_seed(0)
    model = MODELS.get("DCTDetector")(image_size=16, width=4)
    model.train()
    model(torch.randn(8, 3, 16, 16), torch.zeros(8))  # running statistics for eval
    model.eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        fp32 = model(x, torch.zeros(4))["visual_image"]["log_dct"]
        with autocast_bf16():
            mixed = model(x, torch.zeros(4))["visual_image"]["log_dct"]
    assert torch.allclose(mixed.float(), fp32, atol=1e-6, rtol=0), (mixed.float() - fp32).abs().max()
    assert mixed.dtype == torch.float32


def test_pca_logreg_decision_stays_float32_under_autocast():
    from aigbench.engine.loop import fit_from_data

    torch.manual_seed(0)
    model = MODELS.get("PCALogReg")(n_components=8, image_size=8)
    images, y = torch.rand(64, 3, 8, 8), (torch.arange(64) % 2).float()
    model.train()
    model(images + 0.3 * y[:, None, None, None], y)
    model.eval()
    fit_from_data(model)
    x = torch.rand(16, 3, 8, 8) + 0.15  # halfway between the classes: probabilities away from 0 and 1
    with torch.no_grad():
        fp32 = model(x, torch.zeros(16))["pred_label"]
        with autocast_bf16():
            mixed = model(x, torch.zeros(16))["pred_label"]
            logit = model.decision(x.flatten(1))
    assert logit.dtype == torch.float32
    assert torch.allclose(mixed, fp32, atol=1e-6, rtol=0), (mixed - fp32).abs().max()
    assert 0.05 < fp32.min() and fp32.max() < 0.95


def test_npr_residual_is_exact_under_autocast():
    from aigbench.model_zoo.npr import npr_residual

    model = MODELS.get("NPR")().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), autocast_bf16():
        npr = model(x, torch.zeros(2))["visual_image"]["npr"]
    assert npr.dtype == torch.float32
    assert torch.equal(npr, npr_residual(x).abs())


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
    from aigbench.engine.loop import fit_from_data

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
    model.eval()
    assert not bool(model.fitted)  # nothing is fitted in eval() or forward()
    stats = fit_from_data(model)  # the loop's fit step, before the checkpoint is written
    assert stats["fit_components"] == 20 and 0 < stats["fit_explained_variance"] < 1
    flat = images.flatten(1).numpy().astype(np.float64)
    pca = PCA(n_components=20, random_state=0).fit(flat)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(pca.transform(flat), y)
    ref = lr.predict_proba(pca.transform(flat))[:, 1]
    got = model(images, torch.from_numpy(y))["pred_label"].detach().numpy()
    assert np.allclose(got, ref, atol=1e-4)
    assert bool(model.fitted) and model.anchor.grad is not None and model.anchor.grad.abs().sum() == 0
