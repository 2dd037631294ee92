"""The perturbation classes moved to :mod:`aigbench.imageops.perturbations` (pure image
operations, below the datasets and the engine that use them); this module re-exports them for
code written against earlier versions."""

from aigbench.imageops.perturbations import *  # noqa: F401,F403
