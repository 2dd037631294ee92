"""Moved to :mod:`aigbench.audit` (issue 20). This name stays for code written against aigbench
1.x: it is the package :mod:`aigbench.audit` itself, so ``from aigbench.datasets.check import
check_dataset`` keeps working. Nothing in aigbench imports it (tests/test_layers.py)."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("aigbench.audit")
