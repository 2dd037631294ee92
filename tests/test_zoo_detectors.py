"""Zoo 2 detectors against re-implementations of their official code, with state dicts built in
the official key names and shapes (the released files cannot be downloaded here) and loaded
strictly. Weights are random, so a misplaced tensor or a wrong operation changes the outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from aigbench.engine.checkpoint import CheckpointError
from aigbench.registry import MODELS

from test_zoo_reference import TOL, labels, max_diff, openai_clip, resnet_stage_reference


@pytest.fixture(scope="module")
def clip_b32(tmp_path_factory):
    """A random OpenAI-architecture CLIP ViT-B/32 (open_clip) and its weights in OpenAI's layout."""
    return openai_clip("ViT-B-32-quickgelu", tmp_path_factory.mktemp("clip_b32"))


# --------------------------------------------------------------------------- FreqNet


def freqnet_official_state(seed=0):
    """4-classes-freqnet-v2.pth's layout: weight1..4/bias1..4 (raw 1x1 convs), realconv1..4 and
    imagconv1..4 (1x1, no bias), ResNet-50 layer1/layer2, fc1 (512 -> 1): 156 keys."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, (cout, cin) in enumerate(((64, 3), (64, 64), (256, 256), (256, 256)), start=1):
        state[f"weight{k}"] = torch.randn(cout, cin, 1, 1, generator=g) / cin**0.5
        state[f"bias{k}"] = torch.randn(cout, generator=g) * 0.1
    for k, c in enumerate((64, 64, 256, 256), start=1):
        for part in ("realconv", "imagconv"):
            state[f"{part}{k}.weight"] = torch.randn(c, c, 1, 1, generator=g) / c**0.5
    tv = torchvision.models.resnet50().state_dict()
    for key, v in tv.items():
        if key.startswith(("layer1.", "layer2.")):
            if key.endswith("running_var"):
                state[key] = torch.rand(v.shape, generator=g) + 0.5
            elif key.endswith("num_batches_tracked"):
                state[key] = torch.tensor(100)
            elif key.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "downsample.1.weight")):
                state[key] = torch.rand(v.shape, generator=g) * 0.5 + 0.5
            elif v.dim() == 4:
                state[key] = torch.randn(v.shape, generator=g) * (2 / (v.shape[1] * v.shape[2] * v.shape[3])) ** 0.5
            else:
                state[key] = torch.randn(v.shape, generator=g) * 0.1
    state["fc1.weight"] = torch.randn(1, 512, generator=g)
    state["fc1.bias"] = torch.randn(1, generator=g) * 0.1
    return state


def np_highpass_hw(x, scale=4):
    spec = np.fft.fftshift(np.fft.fft2(x, norm="ortho"), axes=(-2, -1))
    h, w = spec.shape[-2:]
    spec[..., h // 2 - h // scale : h // 2 + h // scale, w // 2 - w // scale : w // 2 + w // scale] = 0
    return np.maximum(np.fft.ifft2(np.fft.ifftshift(spec, axes=(-2, -1)), norm="ortho").real, 0)


def np_highpass_c(x, scale=4):
    spec = np.fft.fftshift(np.fft.fft(x, axis=1, norm="ortho"), axes=1)
    c = spec.shape[1]
    spec[:, c // 2 - c // scale : c // 2 + c // scale] = 0
    return np.maximum(np.fft.ifft(np.fft.ifftshift(spec, axes=1), axis=1, norm="ortho").real, 0)


def np_conv1x1(x, w, b=None, stride=1):
    x = x[..., ::stride, ::stride]
    out = np.einsum("oi,nihw->nohw", w[:, :, 0, 0], x)
    return out if b is None else out + b[None, :, None, None]


def np_fcl(x, state, k):
    spec = np.fft.fftshift(np.fft.fft2(x, norm="ortho"), axes=(-2, -1))
    real = np_conv1x1(spec.real, state[f"realconv{k}.weight"])
    imag = np_conv1x1(spec.imag, state[f"imagconv{k}.weight"])
    out = np.fft.ifft2(np.fft.ifftshift(real + 1j * imag, axes=(-2, -1)), norm="ortho").real
    return np.maximum(out, 0)


def freqnet_reference(state, x):
    """networks/freqnet.py's forward with numpy's FFT (float64) and torch's ResNet stages."""
    s = {k: v.double().numpy() for k, v in state.items() if v.is_floating_point()}
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    h = np_highpass_hw(x.double().numpy())
    h = relu(np_conv1x1(h, s["weight1"], s["bias1"]))
    h = np_fcl(np_highpass_c(h), s, 1)
    h = relu(np_conv1x1(np_highpass_hw(h), s["weight2"], s["bias2"], stride=2))
    h = np_fcl(np_highpass_c(h), s, 2)
    t = F.max_pool2d(torch.from_numpy(h), kernel_size=3, stride=2, padding=1)
    t = resnet_stage_reference({k: v.double() for k, v in state.items()}, t, "layer1", 3, 1)
    h = relu(np_conv1x1(np_highpass_hw(t.numpy()), s["weight3"], s["bias3"]))
    h = np_fcl(h, s, 3)
    h = relu(np_conv1x1(np_highpass_hw(h), s["weight4"], s["bias4"], stride=2))
    h = np_fcl(h, s, 4)
    t = resnet_stage_reference({k: v.double() for k, v in state.items()}, torch.from_numpy(h), "layer2", 4, 2)
    return (t.mean(dim=(2, 3)) @ state["fc1.weight"].double().T + state["fc1.bias"].double()).squeeze(1)


def test_freqnet_official_layout_matches_numpy_reference(tmp_path):
    state = freqnet_official_state()
    assert len(state) == 156
    torch.save(state, tmp_path / "4-classes-freqnet-v2.pth")
    model = MODELS.get("FreqNet")(pretrained_path=str(tmp_path / "4-classes-freqnet-v2.pth")).eval()
    assert model.pretrained and sum(p.numel() for p in model.parameters()) == 1_850_433
    x = torch.randn(2, 3, 64, 48)  # non-square, as native-size test sets
    with torch.no_grad():
        got_logit = torch.logit(model(x, labels(2))["pred_label"].double(), eps=0)
    want_logit = freqnet_reference(state, x)
    scale = want_logit.abs().max().item()
    assert max_diff(got_logit, want_logit) < 1e-4 * max(1.0, scale), (got_logit, want_logit)
    cfg = MODELS.get("FreqNet").preprocess
    assert (cfg.input_size, cfg.resize_mode, cfg.mean) == (256, "resize", (0.485, 0.456, 0.406))


def test_freqnet_strict_loading(tmp_path):
    state = freqnet_official_state()
    state.pop("imagconv3.weight")
    torch.save({"model": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"imagconv3\.weight"):
        MODELS.get("FreqNet")(pretrained_path=str(tmp_path / "bad.pth"))


def test_freqnet_stays_float32_under_autocast():
    model = MODELS.get("FreqNet")().eval()
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        ref = model(x, labels(1))["pred_label"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x, labels(1))["pred_label"]
    assert torch.isfinite(out).all() and max_diff(out, ref) < 0.05


# --------------------------------------------------------------------------- RINE


def rine_official_head(nproj, d, width=768, blocks=12, seed=0):
    """ckpt/model_*_trainable.pth's layout: alpha [1, n, d]; proj1/proj2 Linear at Sequential
    indices 1, 4, 7, ...; head Linear at 0, 3, 6."""
    g = torch.Generator().manual_seed(seed)
    state = {"alpha": torch.randn(1, blocks, d, generator=g)}
    for i in range(nproj):
        state[f"proj1.{1 + 3 * i}.weight"] = (
            torch.randn(d, width if i == 0 else d, generator=g) / (width if i == 0 else d) ** 0.5
        )
        state[f"proj1.{1 + 3 * i}.bias"] = torch.randn(d, generator=g) * 0.1
        state[f"proj2.{1 + 3 * i}.weight"] = torch.randn(d, d, generator=g) / d**0.5
        state[f"proj2.{1 + 3 * i}.bias"] = torch.randn(d, generator=g) * 0.1
    for i, out in ((0, d), (3, d), (6, 1)):
        state[f"head.{i}.weight"] = torch.randn(out, d, generator=g) / d**0.5
        state[f"head.{i}.bias"] = torch.randn(out, generator=g) * 0.1
    return state


def rine_reference(ref, state, x, nproj):
    """src/models.py: hooks on every ln_2 of the CLIP visual transformer, class token, then the head."""
    outs = []
    blocks = ref.visual.transformer.resblocks
    hooks = [b.ln_2.register_forward_hook(lambda m, i, o: outs.append(o)) for b in blocks]
    with torch.no_grad():
        ref.encode_image(x)
    for h in hooks:
        h.remove()
    batch_first = getattr(ref.visual.transformer, "batch_first", False)
    tokens = torch.stack([o[:, 0] if batch_first else o[0] for o in outs], dim=1)  # [B, n, width]
    g = tokens
    for i in range(nproj):
        g = torch.relu(g @ state[f"proj1.{1 + 3 * i}.weight"].T + state[f"proj1.{1 + 3 * i}.bias"])
    z = (torch.softmax(state["alpha"], dim=1) * g).sum(dim=1)
    for i in range(nproj):
        z = torch.relu(z @ state[f"proj2.{1 + 3 * i}.weight"].T + state[f"proj2.{1 + 3 * i}.bias"])
    h = torch.relu(z @ state["head.0.weight"].T + state["head.0.bias"])
    h = torch.relu(h @ state["head.3.weight"].T + state["head.3.bias"])
    return (h @ state["head.6.weight"].T + state["head.6.bias"]).squeeze(1), tokens


@pytest.mark.parametrize("nproj, d", [(2, 64), (4, 32)])
def test_rine_matches_open_clip_ln2_tokens_and_official_head(clip_b32, tmp_path, nproj, d):
    ref, clip_path = clip_b32
    state = rine_official_head(nproj, d)
    torch.save(state, tmp_path / "model_trainable.pth")
    model = MODELS.get("RINE")(
        clip_model="ViT-B/32",
        clip_path=str(clip_path),
        pretrained_path=str(tmp_path / "model_trainable.pth"),
        nproj=nproj,
        proj_dim=d,
    ).eval()
    x = torch.randn(2, 3, 224, 224)
    want_logit, want_tokens = rine_reference(ref, state, x, nproj)
    with torch.no_grad():
        tokens = model.frozen_features(x)
        prob = model(x, labels(2))["pred_label"]
    assert tokens.shape == (2, 12, 768) and max_diff(tokens, want_tokens) < TOL
    want = torch.sigmoid(want_logit)
    assert max_diff(prob, want) < TOL
    assert 0.02 < want.min() and want.max() < 0.98


def test_rine_head_flags_must_match_the_file(tmp_path):
    torch.save(rine_official_head(4, 32, width=768), tmp_path / "model_2class_trainable.pth")
    with pytest.raises(CheckpointError, match="pass --nproj 4 --proj_dim 32"):
        MODELS.get("RINE")(clip_model="ViT-B/32", pretrained_path=str(tmp_path / "model_2class_trainable.pth"))


def test_rine_loss_is_summed_bce_plus_supcon():
    from aigbench.model_zoo.rine import supervised_contrastive

    torch.manual_seed(0)
    z, y = torch.randn(6, 8), torch.tensor([0, 1, 1, 0, 1, 0])
    f = F.normalize(z, dim=1)
    per_anchor = []
    for i in range(6):  # Khosla et al., eq. 2, one view per image
        others = [j for j in range(6) if j != i]
        denom = torch.logsumexp(torch.stack([f[i] @ f[a] / 0.07 for a in others]), 0)
        pos = [j for j in others if y[j] == y[i]]
        per_anchor.append(-torch.stack([f[i] @ f[p] / 0.07 - denom for p in pos]).mean())
    assert supervised_contrastive(z, y).item() == pytest.approx(torch.stack(per_anchor).mean().item(), rel=1e-5)
    model = MODELS.get("RINE")(clip_model="ViT-B/32", nproj=1, proj_dim=16, factor=0.4, image_size=64)
    x, lab = torch.randn(4, 3, 64, 64), torch.tensor([0.0, 1.0, 1.0, 0.0])
    model.eval()
    out = model(x, lab)
    logit = torch.logit(out["pred_label"].double())
    bce = F.binary_cross_entropy_with_logits(logit, lab.double(), reduction="sum")
    assert out["visual_loss"]["bce_sum"].item() == pytest.approx(bce.item(), rel=1e-4)
    assert out["backward_loss"].item() == pytest.approx(
        bce.item() + 0.4 * out["visual_loss"]["supcon"].item(), rel=1e-4
    )


# --------------------------------------------------------------------------- DRCT


def test_drct_contrastive_loss_equals_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    from aigbench.model_zoo.drct import contrastive_loss

    torch.manual_seed(0)
    for _ in range(5):
        e, y = torch.randn(12, 16), torch.randint(0, 2, (12,))
        want = pml.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0)(e, y)
        assert contrastive_loss(e, y).item() == pytest.approx(want.item(), rel=1e-5, abs=1e-6)


def test_drct_convnext_official_layout(tmp_path):
    import timm

    torch.manual_seed(0)
    ref = timm.create_model("convnext_base.fb_in22k", pretrained=False, num_classes=1024).eval()
    with torch.no_grad():
        for n, p in ref.named_parameters():
            if n.endswith("gamma"):
                p.uniform_(0.5, 1.0)  # layer scale starts at 1e-6: make the blocks count
    fc = torch.nn.Linear(1024, 2)
    state = {
        **{f"model.{k}": v for k, v in ref.state_dict().items()},
        **{f"fc.{k}": v for k, v in fc.state_dict().items()},
    }
    assert len(state) == 346 and state["model.head.fc.weight"].shape == (1024, 1024)
    torch.save(state, tmp_path / "14_acc0.9996.pth")  # a bare state dict, as released
    model = MODELS.get("DRCT")(pretrained_path=str(tmp_path / "14_acc0.9996.pth")).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = fc(ref(x))
        want = torch.softmax(logits, dim=1)[:, 1]
        got = model(x, labels(2))["pred_label"]
    assert max_diff(got, want) < TOL
    state.pop("model.stages.2.blocks.5.mlp.fc1.bias")
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"model\.stages\.2\.blocks\.5\.mlp\.fc1\.bias"):
        MODELS.get("DRCT")(pretrained_path=str(tmp_path / "bad.pth"))


def test_drct_clip_official_layout_with_text_tower(clip_b32, tmp_path):
    ref, _ = clip_b32
    torch.manual_seed(1)
    model_fc, fc = torch.nn.Linear(512, 1024), torch.nn.Linear(1024, 2)
    state = {f"model.model.{k}": v for k, v in ref.state_dict().items()}  # the whole CLIP, text tower included
    assert any(k.startswith("model.model.token_embedding") for k in state)
    state.update({f"model.fc.{k}": v for k, v in model_fc.state_dict().items()})
    state.update({f"fc.{k}": v for k, v in fc.state_dict().items()})
    torch.save(state, tmp_path / "13_acc0.9664.pth")
    model = MODELS.get("DRCT")(
        backbone="clip", clip_model="ViT-B/32", pretrained_path=str(tmp_path / "13_acc0.9664.pth")
    )
    model.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = torch.softmax(fc(model_fc(ref.encode_image(x))), dim=1)[:, 1]
        got = model(x, labels(2))["pred_label"]
    assert max_diff(got, want) < TOL
    state["model.model.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="extra.weight"):
        MODELS.get("DRCT")(backbone="clip", clip_model="ViT-B/32", pretrained_path=str(tmp_path / "bad.pth"))


def test_drct_loss_mixes_cross_entropy_and_contrastive():
    from aigbench.model_zoo.drct import contrastive_loss

    model = MODELS.get("DRCT")(image_size=32).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0.0, 1.0, 1.0, 0.0])
    with torch.no_grad():
        out = model(x, y)
        logits = model.fc(model.model(x))
    ce = F.cross_entropy(logits, y.long())
    assert out["visual_loss"]["ce"].item() == pytest.approx(ce.item(), rel=1e-5)
    want = 0.7 * ce + 0.3 * contrastive_loss(model.model(x), y)
    assert out["backward_loss"].item() == pytest.approx(want.item(), rel=1e-5)


# --------------------------------------------------------------------------- B-Free


def bfree_reference(vit, x, size):
    """The official wrapper's result as the plain timm model averaged over pixel crops: five
    ``size`` crops at multiples of 14 (centre, top-left, bottom-left, bottom-right, top-right) of the
    image cut to whole patches; when a side is smaller than ``size`` the image is tiled and both
    sides cut to ``size`` (the official ``replicate_wrap`` on the patch grid)."""
    h, w = (x.shape[-2] // 14) * 14, (x.shape[-1] // 14) * 14
    x = x[..., :h, :w]
    if h < size or w < size:  # the official replicate_wrap cuts both sides when either is short
        x = x.repeat(1, 1, max(-(-size // h), 1), max(-(-size // w), 1))[..., :size, :size]
    gh, gw, g = x.shape[-2] // 14, x.shape[-1] // 14, size // 14
    starts = [((gh - g) // 2, (gw - g) // 2), (0, 0), (gh - g, 0), (gh - g, gw - g), (0, gw - g)]
    outs = [vit(x[..., y * 14 : y * 14 + size, c * 14 : c * 14 + size]) for y, c in starts]
    return torch.stack(outs).mean(0).squeeze(1)


def test_bfree_official_layout_and_five_crops_of_the_full_image(tmp_path):
    import timm

    torch.manual_seed(0)
    size = 112  # 8 x 8 patches instead of 36 x 36: the same code path, cheap on a CPU
    vit = timm.create_model("vit_base_patch14_reg4_dinov2", pretrained=False, num_classes=1, img_size=size).eval()
    with torch.no_grad():
        for n, p in vit.named_parameters():
            if n.endswith("gamma"):
                p.uniform_(0.5, 1.0)
    state = vit.state_dict()
    assert len(state) == 177 and set(state) >= {"reg_token", "head.weight", "blocks.11.ls2.gamma"}
    torch.save({"model": state}, tmp_path / "model_epoch_best.pth")
    model = MODELS.get("BFree")(pretrained_path=str(tmp_path / "model_epoch_best.pth"), image_size=size).eval()
    for shape in ((150, 200), (80, 100), (112, 300)):  # larger, smaller (tiled), one side smaller
        x = torch.randn(1, 3, *shape)
        with torch.no_grad():
            want = torch.sigmoid(bfree_reference(vit, x, size))
            got = model(x, labels(1))["pred_label"]
        assert max_diff(got, want) < TOL, shape
    cfg = MODELS.get("BFree").preprocess
    assert (cfg.resize_mode, cfg.input_size, cfg.mean) == ("none", 504, (0.485, 0.456, 0.406))


def test_bfree_evaluates_full_images_one_per_batch():
    from aigbench.engine.args import parse_args, test_parser
    from aigbench.engine.build import eval_batch_size

    args = parse_args(test_parser(), ["--model", "BFree", "--batch_size", "32"])
    assert eval_batch_size(args) == 1
    args = parse_args(test_parser(), ["--model", "BFree", "--batch_size", "32", "--eval_crop", "center_crop"])
    assert eval_batch_size(args) == 32


# --------------------------------------------------------------------------- C2P-CLIP (Hugging Face CLIP)


def hf_clip(seed=0):
    """A random Hugging Face CLIPModel with OpenAI ViT-B/32's image tower (QuickGELU)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.CLIPConfig(
        vision_config=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            image_size=224,
            patch_size=32,
            hidden_act="quick_gelu",
        ),
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2),
        projection_dim=512,
    )
    model = transformers.CLIPModel(config).eval()
    with torch.no_grad():
        for n, p in model.vision_model.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.1)
            elif "layer_norm" in n or "layrnorm" in n:
                p.uniform_(0.5, 1.5)
    return model


def c2p_release(hf, fc):
    """C2P_CLIP_release_20240901.pth's layout: the CLIPModel without text tower, under ``model.``, and model.fc."""
    state = {
        f"model.{k}": v for k, v in hf.state_dict().items() if k.startswith(("vision_model.", "visual_projection."))
    }
    state.update({f"model.fc.{k}": v for k, v in fc.state_dict().items()})
    return state


def test_c2pclip_release_matches_hugging_face_clip(tmp_path):
    hf = hf_clip()
    fc = torch.nn.Linear(512, 1)
    torch.nn.init.normal_(fc.weight, 0, 1.0)
    state = c2p_release(hf, fc)
    assert "model.vision_model.encoder.layers.11.self_attn.q_proj.weight" in state
    torch.save(state, tmp_path / "C2P_CLIP_release_20240901.pth")
    model = MODELS.get("C2PCLIP")(
        clip_model="ViT-B/32", pretrained_path=str(tmp_path / "C2P_CLIP_release_20240901.pth")
    )
    model.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        e = hf.visual_projection(hf.vision_model(pixel_values=x).pooler_output)
        want = torch.sigmoid(fc(e / e.norm(p=2, dim=-1, keepdim=True)).squeeze(1))
        got = model(x, labels(2))["pred_label"]
    assert max_diff(got, want) < TOL
    assert 0.02 < want.min() and want.max() < 0.98
    cfg = MODELS.get("C2PCLIP").preprocess
    assert (cfg.resize_mode, cfg.crop_pct, cfg.interpolation) == ("resize_crop", 1.0, "bilinear")


def test_c2pclip_loader_is_strict(tmp_path):
    hf = hf_clip()
    state = c2p_release(hf, torch.nn.Linear(512, 1))
    state.pop("model.vision_model.encoder.layers.3.mlp.fc2.bias")
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"layers\.3\.mlp\.fc2\.bias"):
        MODELS.get("C2PCLIP")(clip_model="ViT-B/32", pretrained_path=str(tmp_path / "bad.pth"))
    state = c2p_release(hf, torch.nn.Linear(512, 1))
    state["model.text_projection.weight"] = torch.zeros(512, 64)
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="text_projection"):
        MODELS.get("C2PCLIP")(clip_model="ViT-B/32", pretrained_path=str(tmp_path / "extra.pth"))
