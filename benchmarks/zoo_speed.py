"""Size and inference speed of every zoo detector at its paper's input size, on this machine.

Each model is built with random weights (nothing downloads) as its released checkpoint is
shaped, put in eval mode, and scores ``--batches`` batches of ``--batch_size`` random images
after one warm-up batch. Prints a Markdown table: model, input, parameters (all / trainable),
images/s (forward only, float32, ``--device``) and the checkpoint layout that the tests load.

    python benchmarks/zoo_speed.py [--only FreqNet,RINE] [--batch_size 4] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

# model → (constructor kwargs, input side, the checkpoint layout tested, source)
MODELS = {
    "CNNSpot": ({}, 224, "{'model': ResNet-50 keys} (blur_jpg_prob0.5.pth)", "github.com/PeterWang512/CNNDetection"),
    "UnivFD": ({}, 224, "fc_weights.pth + OpenAI CLIP ViT-L/14", "github.com/WisconsinAIVision/UniversalFakeDetect"),
    "NPR": ({}, 224, "NPR.pth (plain state dict)", "github.com/chuangchuangtan/NPR-DeepfakeDetection"),
    "FreqNet": ({}, 256, "4-classes-freqnet-v2.pth (156 keys)", "github.com/chuangchuangtan/FreqNet-DeepfakeDetection"),
    "RINE": (
        {"nproj": 2, "proj_dim": 1024},
        224,
        "model_4class_trainable.pth (head) + CLIP",
        "github.com/mever-team/rine",
    ),
    "DRCT": (
        {"backbone": "convnext_base"},
        224,
        "bare state dict, model.* + fc (ConvNeXt-B)",
        "github.com/beibuwandeluori/DRCT",
    ),
    "DRCT-clip": (
        {"backbone": "clip"},
        224,
        "bare state dict, whole CLIP as model.model.*",
        "github.com/beibuwandeluori/DRCT",
    ),
    "BFree": ({}, 504, "{'model': timm keys} (model_epoch_best.pth)", "github.com/grip-unina/B-Free"),
    "C2PCLIP": (
        {},
        224,
        "Hugging Face CLIPModel keys (394 tensors)",
        "github.com/chuangchuangtan/C2P-CLIP-DeepfakeDetection",
    ),
    "CommForViT": (
        {"image_size": 384},
        384,
        "HF snapshot model.safetensors + config.json",
        "huggingface.co/OwensLab/commfor-model-384",
    ),
    "dinov2_vitl14_probe": ({}, 224, "dinov2_vitl14_pretrain.pth (hub layout)", "github.com/MI-BioLab/AI-GenBench"),
    "RN50_clip_probe": ({}, 224, "OpenAI RN50 (visual.*)", "github.com/MI-BioLab/AI-GenBench"),
    "clipL14commonpool_probe": ({}, 224, "open_clip_pytorch_model.bin", "github.com/MI-BioLab/AI-GenBench"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated names of the table")
    ap.add_argument("--batch_size", type=int, default=4)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import logging

    import torch

    import aigbench.model_zoo  # noqa: F401  registers the zoo
    from aigbench.registry import MODELS as REGISTRY

    logging.getLogger("aigbench").setLevel(logging.ERROR)  # random-feature warnings are expected here
    device = torch.device(args.device)
    rows = []
    for name, (kwargs, side, layout, source) in MODELS.items():
        if args.only and name not in args.only.split(","):
            continue
        cls = REGISTRY.get(name.split("-")[0])
        model = cls(**kwargs).to(device).eval()
        n_all = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        x = torch.randn(args.batch_size, 3, side, side, device=device)
        y = torch.zeros(args.batch_size, device=device)
        with torch.no_grad():
            model(x, y)  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.batches):
                model(x, y)
            if device.type == "cuda":
                torch.cuda.synchronize()
        ips = args.batch_size * args.batches / (time.perf_counter() - start)
        rows.append((name, side, n_all, n_train, ips, layout, source))
        print(f"{name}: {ips:.2f} images/s", flush=True)
        del model
    print(
        f"\nforward only, float32, batch {args.batch_size}, {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\n"
    )
    print("| model | input | params | trainable | images/s | checkpoint layout tested | source |")
    print("|---|---|---|---|---|---|---|")
    for name, side, n_all, n_train, ips, layout, source in rows:
        print(f"| {name} | {side} | {n_all / 1e6:.1f} M | {n_train:,} | {ips:.2f} | {layout} | {source} |")


if __name__ == "__main__":
    main()
