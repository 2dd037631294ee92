"""aigbench: train, test and stress-test detectors of AI-generated images.

Labels everywhere: real = 0, fake = 1. A model's ``pred_label`` is the probability of fake.
The top-level package imports nothing heavy, so ``bench --help`` stays fast.
"""

__version__ = "0.2.0"
