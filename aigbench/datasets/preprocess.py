"""Each model's preprocessing, declared in one explicit place (like timm's ``pretrained_cfg``).

A model class declares ``preprocess = Preprocess(...)`` or, when it depends on the model's
flags (a timm backbone's own mean/std), a classmethod ``preprocess_cfg(kwargs) -> Preprocess``.
Training, testing, robustness and prediction all build their transform from
:func:`resolve_preprocess`, which applies the flags that the user gave explicitly
(``--image_size``, ``--resize_mode``, ``--interpolation``, ``--crop_pct``) on top.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Optional

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("resize", "crop", "resize_crop", "none")


@dataclass(frozen=True)
class Preprocess:
    """How images become model inputs.

    * ``input_size``: side of the square input, pixels;
    * ``mean``/``std``: per-channel normalization of pixels scaled to [0, 1];
    * ``interpolation``: Pillow's filter, as torchvision on PIL images (antialiased when shrinking,
      see ``imageops.geometry``);
    * ``resize_mode``: ``resize`` (whole image to the square), ``crop`` (random crop when
      training, centre crop when testing; small images are padded), ``resize_crop``
      (shorter side to ``input_size / crop_pct``, then the crop: timm's evaluation transform)
      or ``none``;
    * ``crop_pct``: fraction of the resized image that the ``resize_crop`` crop keeps;
    * ``pad_mode``: images smaller than a crop are padded with zeros (``constant``, as
      torchvision's ``CenterCrop``) or mirrored (``reflect``).
    """

    input_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"
    resize_mode: str = "resize"
    crop_pct: float = 1.0
    pad_mode: str = "constant"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


OVERRIDE_FLAGS = {
    "image_size": "input_size",
    "resize_mode": "resize_mode",
    "interpolation": "interpolation",
    "crop_pct": "crop_pct",
    "pad_mode": "pad_mode",
}


def model_preprocess(cls: type, kwargs: Optional[Mapping[str, Any]] = None) -> Preprocess:
    """The model class's own declaration. A model that declares none gets ``Preprocess()``,
    with the default of its ``image_size`` parameter as input size when it has one."""
    if hasattr(cls, "preprocess_cfg"):
        return cls.preprocess_cfg(dict(kwargs or {}))
    cfg = getattr(cls, "preprocess", None)
    if isinstance(cfg, Preprocess):
        return cfg
    import inspect

    param = inspect.signature(cls.__init__).parameters.get("image_size")
    has_size = param is not None and isinstance(param.default, int)
    return _legacy_normalization(cls, kwargs, Preprocess(input_size=param.default) if has_size else Preprocess())


def _legacy_normalization(cls: type, kwargs: Optional[Mapping[str, Any]], base: Preprocess) -> Preprocess:
    """Models written for aigbench < 0.2 declared ``input_mean``/``input_std`` or a classmethod
    ``normalization(kwargs)``: honour them (with a warning), never drop them silently."""
    import logging

    if hasattr(cls, "normalization"):
        mean, std = cls.normalization(dict(kwargs or {}))
    elif hasattr(cls, "input_mean") or hasattr(cls, "input_std"):
        mean, std = getattr(cls, "input_mean", base.mean), getattr(cls, "input_std", base.std)
    else:
        return base
    logging.getLogger("aigbench").warning(
        "%s declares its normalization the old way (input_mean/input_std or normalization()); it is used, but "
        "declare `preprocess = Preprocess(mean=..., std=...)` instead (docs/contract.md)",
        cls.__name__,
    )
    return replace(base, mean=tuple(mean), std=tuple(std))


def resolve_preprocess(cls: type, kwargs: Optional[Mapping[str, Any]] = None, **flags: Any) -> Preprocess:
    """The model's declaration with the explicitly given flags (not None) applied on top."""
    cfg = model_preprocess(cls, kwargs)
    changes = {OVERRIDE_FLAGS[k]: v for k, v in flags.items() if k in OVERRIDE_FLAGS and v is not None}
    cfg = replace(cfg, **changes)
    from aigbench.errors import ConfigError

    if cfg.resize_mode not in RESIZE_MODES:
        raise ConfigError(f"--resize_mode must be one of {', '.join(RESIZE_MODES)}, got {cfg.resize_mode!r}")
    if not 0 < cfg.crop_pct <= 1:
        raise ConfigError(f"--crop_pct must be in (0, 1], got {cfg.crop_pct}")
    if cfg.pad_mode not in ("constant", "reflect", "wrap"):
        raise ConfigError(f"--pad_mode must be constant, reflect or wrap, got {cfg.pad_mode!r}")
    if cfg.input_size < 1:
        raise ConfigError(f"--image_size must be at least 1, got {cfg.input_size}")
    return cfg


def preprocess_from_args(cls: type, args: Any) -> Preprocess:
    """:func:`resolve_preprocess` for parsed command-line ``args`` (the model's flags and the
    preprocessing flags that were given)."""
    from aigbench.flags import kwargs_from_args

    return resolve_preprocess(
        cls,
        kwargs_from_args(cls, args),
        image_size=getattr(args, "image_size", None),
        resize_mode=getattr(args, "resize_mode", None),
        interpolation=getattr(args, "interpolation", None),
        crop_pct=getattr(args, "crop_pct", None),
        pad_mode=getattr(args, "pad_mode", None),
    )
