"""Registered detectors. Importing this package registers every model in it.

=============  ===========================================================================
TimmDetector   any timm backbone + single-logit head, probe or tune (AI-GenBench protocol)
CNNSpot        Wang et al., CVPR 2020: ResNet-50 + blur/JPEG augmentation
UnivFD         Ojha et al., CVPR 2023: frozen CLIP ViT-L/14 features + linear head
BFree          Guillaro et al., CVPR 2025: DINOv2-reg4 ViT-B/14 on five 504 crops of the full image
C2PCLIP        Tan et al., AAAI 2025: CLIP ViT-L/14 with merged category-prompt LoRA, linear head
DRCT           Chen et al., ICML 2024: ConvNeXt-B or CLIP ViT-L/14 embedding, contrastive training
RINE           Koutlis & Papadopoulos, ECCV 2024: CLIP ln_2 tokens of every block + importance estimator
NPR            Tan et al., CVPR 2024: neighbouring-pixel residuals + truncated ResNet-50
FreqNet        Tan et al., AAAI 2024: FFT high-pass + frequency convolutions + ResNet stages
DCTDetector    Frank et al., ICML 2020: log DCT spectrum + small CNN
PCALogReg      Bird & Lotfi, IEEE Access 2024 (CIFAKE): PCA + logistic regression
CommForViT     Park & Owens, CVPR 2025 (Community Forensics): ViT-S/16 at 224 or 384, one logit
*_probe/_tune  AI-GenBench's baselines (Pellegrini et al. 2025): dinov2_vitl14_tune, RN50_clip_probe, ...
=============  ===========================================================================
"""

from aigbench.model_zoo import (  # noqa: F401
    aigenbench,
    bfree,
    c2pclip,
    cnnspot,
    commfor,
    drct,
    freqnet,
    frequency,
    npr,
    pca_lr,
    rine,
    timm_backbone,
    univfd,
)
