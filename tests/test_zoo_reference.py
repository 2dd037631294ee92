"""Each zoo model's forward against a reference computed independently, with the same weights and input.

The references: open_clip's OpenAI CLIP (QuickGELU) for UnivFD and timm OpenAI CLIP backbones,
torchvision's ResNet-50 for CNNSpot, a functional re-implementation of the official NPR code,
scipy's DCT for DCTDetector and scikit-learn for PCALogReg. Weights are random, so every
tensor that the model misplaces or every operation it gets wrong changes the outputs.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from aigbench.registry import MODELS

TOL = 1e-5  # float32, same weights, different implementations


def max_diff(a, b):
    return (torch.as_tensor(a, dtype=torch.float64) - torch.as_tensor(b, dtype=torch.float64)).abs().max().item()


def labels(b):
    return torch.arange(b, dtype=torch.float32) % 2


# --------------------------------------------------------------------------- CLIP (open_clip)


def openai_clip(name, tmp_dir, image_size=None, seed=0):
    """A random open_clip model with OpenAI's architecture, and its weights saved in OpenAI's layout.

    open_clip's CLIP keeps OpenAI's key names (``visual.conv1.weight``,
    ``visual.transformer.resblocks.N.attn.in_proj_weight``, ``visual.proj``, ...). The file holds the
    whole image tower and, like OpenAI's files, text-tower keys without the ``visual.`` prefix
    (``positional_embedding`` among them), which the loaders must ignore.
    """
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(seed)
    extra = {"force_image_size": image_size} if image_size else {}
    ref = open_clip.create_model(name, pretrained=None, **extra).eval()
    with torch.no_grad():  # open_clip starts with zero biases and unit LayerNorms: make every tensor count
        for n, p in ref.visual.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.1)
            elif "ln_" in n:
                p.uniform_(0.5, 1.5)
    full = ref.state_dict()
    state = {k: v for k, v in full.items() if k.startswith("visual.")}
    state.update({k: full[k] for k in ("positional_embedding", "text_projection", "logit_scale", "ln_final.weight")})
    path = tmp_dir / f"{name}-openai-layout.pth"
    torch.save(state, path)
    return ref, path


@pytest.fixture(scope="module")
def clip_b32(tmp_path_factory):
    return openai_clip("ViT-B-32-quickgelu", tmp_path_factory.mktemp("clip_b32"))


def check_univfd(ref, clip_path, clip_model, size, tmp_path):
    fc = {"weight": torch.randn(1, ref.visual.output_dim) * 0.05, "bias": torch.randn(1)}
    torch.save(fc, tmp_path / "fc_weights.pth")
    model = MODELS.get("UnivFD")(
        clip_model=clip_model,
        clip_path=str(clip_path),
        pretrained_path=str(tmp_path / "fc_weights.pth"),
        image_size=size,
    )
    model.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want = ref.encode_image(x)
        got = model.encoder(x)
        prob = model(x, labels(2))["pred_label"]
    want_prob = torch.sigmoid(want @ fc["weight"].T + fc["bias"]).squeeze(1)
    assert model.pretrained
    assert max_diff(got, want) < TOL, f"{clip_model} features differ from open_clip's by {max_diff(got, want):.2e}"
    assert max_diff(prob, want_prob) < TOL
    assert 0.02 < want_prob.min() and want_prob.max() < 0.98  # probabilities not saturated: the check bites
    return model


def test_univfd_vit_b32_matches_open_clip_quickgelu(clip_b32, tmp_path):
    import timm

    from aigbench.model_zoo.univfd import load_clip_visual

    ref, path = clip_b32
    model = check_univfd(ref, path, "ViT-B/32", 224, tmp_path)
    # The test tells the architectures apart: timm's GELU CLIP with the same weights is far off.
    gelu = timm.create_model("vit_base_patch32_clip_224.openai", pretrained=False, num_classes=512).eval()
    load_clip_visual(gelu, str(path))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert max_diff(gelu(x), ref.encode_image(x)) > 100 * TOL
        assert max_diff(model.encoder(x), ref.encode_image(x)) < TOL


def test_univfd_vit_b16_matches_open_clip_quickgelu(tmp_path):
    ref, path = openai_clip("ViT-B-16-quickgelu", tmp_path, image_size=112)
    check_univfd(ref, path, "ViT-B/16", 112, tmp_path)


@pytest.mark.slow
def test_univfd_vit_l14_matches_open_clip_quickgelu(tmp_path):
    # The paper's encoder, at 84 px (6x6 patches). Building and saving 300M random weights dominates.
    ref, path = openai_clip("ViT-L-14-quickgelu", tmp_path, image_size=84)
    model = check_univfd(ref, path, "ViT-L/14", 84, tmp_path)
    assert model.fc.in_features == 768 and model.encoder.embed_dim == 1024


@pytest.mark.parametrize(
    "clip_model, open_clip_name", [("ViT-L/14", "ViT-L-14"), ("ViT-B/16", "ViT-B-16"), ("ViT-B/32", "ViT-B-32")]
)
def test_univfd_clip_models_have_openai_architecture(clip_model, open_clip_name):
    """Every CLIP_MODELS entry (ViT-L/14 included) has the shape of open_clip's OpenAI config, QuickGELU."""
    open_clip = pytest.importorskip("open_clip")
    import timm
    from timm.layers import QuickGELU

    from aigbench.model_zoo.univfd import CLIP_MODELS

    cfg = open_clip.get_model_config(f"{open_clip_name}-quickgelu")
    vision = cfg["vision_cfg"]
    timm_name, dim = CLIP_MODELS[clip_model]
    with torch.device("meta"):  # structure only: no memory, no initialization
        enc = timm.create_model(timm_name, pretrained=False, num_classes=dim)
    assert cfg["quick_gelu"] and all(isinstance(b.mlp.act, QuickGELU) for b in enc.blocks)
    assert (enc.embed_dim, len(enc.blocks), enc.patch_embed.patch_size[0]) == (
        vision["width"],
        vision["layers"],
        vision["patch_size"],
    )
    assert enc.blocks[0].attn.num_heads == vision["width"] // vision.get("head_width", 64)
    assert enc.patch_embed.img_size[0] == vision["image_size"] and dim == cfg["embed_dim"]
    assert enc.global_pool == "token" and not isinstance(enc.norm_pre, torch.nn.Identity)
    assert enc.head.out_features == cfg["embed_dim"]


def test_timm_openai_clip_backbone_matches_open_clip(clip_b32, aigbench_log):
    from timm.layers import QuickGELU

    ref, path = clip_b32
    model = MODELS.get("TimmDetector")(
        backbone="vit_base_patch32_clip_224.openai", mode="probe", pretrained_path=str(path)
    )
    assert "vit_base_patch32_clip_quickgelu_224.openai" in aigbench_log.text
    assert "RANDOM" not in aigbench_log.text and model.pretrained
    assert all(isinstance(b.mlp.act, QuickGELU) for b in model.backbone.blocks)
    with torch.no_grad():
        model.head.weight.normal_(0, 0.05)
    model.eval()
    x = torch.randn(2, 3, 224, 224)
    proj = ref.visual.proj
    try:
        ref.visual.proj = None  # the pooled, ln_post-normalized class token before CLIP's projection
        with torch.no_grad():
            want = ref.visual(x)
    finally:
        ref.visual.proj = proj
    with torch.no_grad():
        got = model.features(x)
        prob = model(x, labels(2))["pred_label"]
        want_prob = torch.sigmoid(model.head(want)).squeeze(1)
    assert got.shape == (2, 768)
    assert max_diff(got, want) < TOL, f"features differ from open_clip's by {max_diff(got, want):.2e}"
    assert max_diff(prob, want_prob) < TOL
    assert 0.02 < want_prob.min() and want_prob.max() < 0.98


# --------------------------------------------------------------------------- CNNSpot (torchvision)


def randomize_bn_(module, seed):
    """Random affine parameters and running statistics for every BatchNorm (eval mode uses them)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.1)


def test_cnnspot_matches_torchvision_resnet50(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.resnet50(num_classes=1)
    randomize_bn_(ref, 1)
    ref.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = torch.flatten(
            ref.avgpool(ref.layer4(ref.layer3(ref.layer2(ref.layer1(ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))))))), 1
        )
        ref.fc.weight.copy_(torch.randn(1, 2048) / (feats.norm(dim=1).mean() + 1e-6))  # logits of order 1
        want = torch.sigmoid(ref(x).squeeze(1))
    torch.save({"model": ref.state_dict()}, tmp_path / "blur_jpg_prob0.5.pth")
    model = MODELS.get("CNNSpot")(pretrained_path=str(tmp_path / "blur_jpg_prob0.5.pth")).eval()
    with torch.no_grad():
        got = model(x, labels(2))["pred_label"]
    assert model.pretrained
    assert max_diff(got, want) < TOL
    assert 0.02 < want.min() and want.max() < 0.98


# --------------------------------------------------------------------------- NPR (official code, re-implemented)


def bn_eval(x, state, prefix, eps=1e-5):
    mean, var = state[prefix + "running_mean"], state[prefix + "running_var"]
    w, b = state[prefix + "weight"], state[prefix + "bias"]
    return (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + eps) * w[:, None, None] + b[:, None, None]


def npr_reference(state, x):
    """NPR-DeepfakeDetection networks/resnet.py, written out with plain tensor operations.

    NPR = x - up(down(x)) with nearest resampling: each 2x2 block minus its top-left pixel; then
    conv1 (3x3, stride 2) on NPR * 2/3, bn1, relu, maxpool 3/2, layer1 (3 Bottlenecks, 64), layer2
    (4 Bottlenecks, 128, stride 2 on the 3x3 conv and the 1x1 downsample), global mean, fc1.
    """
    top_left = x[..., ::2, ::2].repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    npr = x - top_left
    h = F.conv2d(npr * 2.0 / 3.0, state["conv1.weight"], stride=2, padding=1)
    h = F.max_pool2d(torch.relu(bn_eval(h, state, "bn1.")), kernel_size=3, stride=2, padding=1)
    h = resnet_stage_reference(state, h, "layer1", 3, 1)
    h = resnet_stage_reference(state, h, "layer2", 4, 2)
    return h.mean(dim=(2, 3)) @ state["fc1.weight"].T + state["fc1.bias"], npr


def resnet_stage_reference(state, h, layer, blocks, stride):
    """A torchvision ResNet-50 stage (Bottlenecks, stride on the 3x3) from its state dict."""
    for i in range(blocks):
        p, s = f"{layer}.{i}.", stride if i == 0 else 1
        out = torch.relu(bn_eval(F.conv2d(h, state[p + "conv1.weight"]), state, p + "bn1."))
        out = torch.relu(bn_eval(F.conv2d(out, state[p + "conv2.weight"], stride=s, padding=1), state, p + "bn2."))
        out = bn_eval(F.conv2d(out, state[p + "conv3.weight"]), state, p + "bn3.")
        if p + "downsample.0.weight" in state:
            h = bn_eval(F.conv2d(h, state[p + "downsample.0.weight"], stride=s), state, p + "downsample.1.")
        h = torch.relu(out + h)
    return h


def test_npr_matches_reimplementation_of_official_code(tmp_path):
    torch.manual_seed(0)
    src = MODELS.get("NPR")().net
    randomize_bn_(src, 2)
    state = {k: v.clone() for k, v in src.state_dict().items()}
    x = torch.randn(2, 3, 48, 32)  # non-square
    with torch.no_grad():
        pooled = npr_reference({**state, "fc1.weight": torch.eye(512), "fc1.bias": torch.zeros(512)}, x)[0]
    state["fc1.weight"] = torch.randn(1, 512) / (pooled.norm(dim=1).mean() + 1e-6)  # logits of order 1
    state["fc1.bias"] = torch.randn(1) * 0.1
    torch.save(state, tmp_path / "NPR.pth")
    model = MODELS.get("NPR")(pretrained_path=str(tmp_path / "NPR.pth")).eval()
    with torch.no_grad():
        out = model(x, labels(2))
        logit, npr = npr_reference(state, x)
    want = torch.sigmoid(logit.squeeze(1))
    assert model.pretrained
    assert torch.equal(out["visual_image"]["npr"], npr.abs())  # the residual is exact
    assert max_diff(out["pred_label"], want) < TOL
    assert 0.02 < want.min() and want.max() < 0.98


# --------------------------------------------------------------------------- DCTDetector (scipy)


def test_dct_detector_matches_scipy_spectrum_and_functional_cnn():
    from scipy.fft import dctn

    torch.manual_seed(0)
    model = MODELS.get("DCTDetector")(image_size=16, width=8)
    randomize_bn_(model, 3)
    with torch.no_grad():
        model.standardize.running_mean.normal_(0, 1)
        model.standardize.running_var.uniform_(0.5, 2.0)
        model.head.weight.normal_(0, 4.0)  # scores spread over the images
    model.eval()
    noise = torch.rand(3, 16, 16) * 2 - 1
    ramp = torch.linspace(-1, 1, 16)
    smooth = ramp[:, None] * ramp[None, :] + 0.05 * noise  # energy in the low frequencies
    x = torch.stack([noise, smooth, 0.1 * noise])
    seen = {}
    hook = model.standardize.register_forward_hook(lambda m, inp, out: seen.update(spec=inp[0].detach().clone()))
    with torch.no_grad():
        out = model(x, labels(3))
    hook.remove()

    spec = np.log(np.abs(dctn(x.double().numpy(), type=2, norm="ortho", axes=(-2, -1))) + model.eps)
    assert max_diff(seen["spec"], spec.reshape(3, -1)) < 1e-3  # log amplifies float32 rounding near 0
    assert max_diff(seen["spec"].exp(), np.exp(spec.reshape(3, -1))) < TOL

    # The rest of the forward, functionally, from scipy's spectrum: standardize, 3 x (conv, BN, ReLU,
    # max-pool 2), global mean, linear.
    bn = model.standardize
    h = torch.from_numpy(spec).float().flatten(1)
    h = ((h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)).view(3, 3, 16, 16)
    want_std = h
    for i in range(3):
        conv, bn2 = model.cnn[4 * i], model.cnn[4 * i + 1]
        h = F.conv2d(h, conv.weight, conv.bias, padding=1)
        h = bn_eval(h, {k: v.detach() for k, v in bn2.state_dict().items()}, "")
        h = F.max_pool2d(torch.relu(h), 2)
    logit = h.mean(dim=(2, 3)) @ model.head.weight.detach().T + model.head.bias.detach()
    want = torch.sigmoid(logit.squeeze(1))
    assert max_diff(out["visual_image"]["log_dct"], want_std.mean(1, keepdim=True)) < 1e-3
    assert max_diff(out["pred_label"], want) < TOL
    assert want.std() > 0.05  # the images get different scores


# --------------------------------------------------------------------------- PCALogReg (scikit-learn)


def test_pca_logreg_matches_sklearn_on_random_images():
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(0)
    n, size = 160, 8
    y = (torch.arange(n) % 2).float()
    pattern = torch.rand(3, size, size, generator=g)
    images = (torch.rand(n, 3, size, size, generator=g) * 0.8 + 0.2 * y[:, None, None, None] * pattern).clamp(0, 1)
    test_images = torch.rand(40, 3, size, size, generator=g)

    model = MODELS.get("PCALogReg")(n_components=12, image_size=size)
    model.train()
    for i in range(0, n, 64):
        model(images[i : i + 64], y[i : i + 64])
    from aigbench.engine.loop import fit_from_data

    model.eval()
    fit_from_data(model)  # the contract's fit step, as the training loop calls it
    with torch.no_grad():
        got = model(test_images, labels(40))["pred_label"]

    flat = images.flatten(1).double().numpy()
    pca = PCA(n_components=12, random_state=0).fit(flat)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(pca.transform(flat), y.numpy())
    want = lr.predict_proba(pca.transform(test_images.flatten(1).double().numpy()))[:, 1]
    assert not model.pretrained
    assert max_diff(got, want) < TOL
    assert np.std(want) > 1e-2
