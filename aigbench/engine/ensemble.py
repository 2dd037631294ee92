"""Moved to :mod:`aigbench.evaluation.ensemble` (issue 20). This name stays for scripts that ``bench init``
generated before the move: it is that module itself, so ``from aigbench.engine import ensemble``
keeps working. Nothing in aigbench imports it (tests/test_layers.py)."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("aigbench.evaluation.ensemble")
