"""aigbench: train, test and stress-test detectors of AI-generated images.

Labels everywhere: real = 0, fake = 1. A model's ``pred_label`` is the probability of fake.
The top-level package imports nothing heavy, so ``bench --help`` stays fast.
"""

import os as _os
import sys as _sys

__version__ = "0.2.0"

# OpenMP threads that spin while they wait take CPUs from loader workers and other jobs
# (measured in benchmarks/threads.py). libgomp reads this once, when torch loads it: set it
# before torch is imported, unless the user chose a policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT).
if "torch" not in _sys.modules and not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(_os.environ):
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
