"""Image-level metrics for real (0) vs fake (1) detection."""

from aigbench.metrics.binary import METRIC_NAMES, compute_metrics, per_generator_metrics

__all__ = ["METRIC_NAMES", "compute_metrics", "per_generator_metrics"]
