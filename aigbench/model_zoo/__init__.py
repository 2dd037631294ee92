"""Registered detectors. Importing this package registers every model in it."""

from aigbench.model_zoo import timm_backbone  # noqa: F401
