"""Image-level metrics for real (0) vs fake (1) detection."""

from aigbench.metrics.binary import (
    METRIC_NAMES,
    PAIRINGS,
    THRESHOLD_RULE,
    compute_metrics,
    generator_breakdown,
    is_fake,
    one_class_note,
    per_generator_metrics,
    youden_threshold,
)

__all__ = [
    "METRIC_NAMES",
    "PAIRINGS",
    "THRESHOLD_RULE",
    "compute_metrics",
    "generator_breakdown",
    "is_fake",
    "one_class_note",
    "per_generator_metrics",
    "youden_threshold",
]
