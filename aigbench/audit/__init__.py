"""The data audit behind ``bench data check`` (docs/data_check.md), one module per concern:

* :mod:`~aigbench.audit.files`: one file's format, size, mode, JPEG quality and integrity;
* :mod:`~aigbench.audit.counts`: counts per split, class, generator and category, and metadata
  histograms per class;
* :mod:`~aigbench.audit.duplicates`: byte-identical files, leaks between splits or PATHs, label
  conflicts;
* :mod:`~aigbench.audit.shortcuts`: can metadata alone tell real from fake, and what to do;
* :mod:`~aigbench.audit.report`: the terminal text and the JSON file;
* :mod:`~aigbench.audit.check`: :func:`check_dataset`, which puts them together.
"""

from aigbench.audit.check import check_dataset
from aigbench.audit.files import FileInfo, estimate_jpeg_quality, ijg_table, inspect_bytes, inspect_file
from aigbench.audit.report import format_report, write_report
from aigbench.audit.shortcuts import FEATURE_WORDS, SHORTCUT_THRESHOLD, shortcut_audit

__all__ = [
    "FEATURE_WORDS",
    "SHORTCUT_THRESHOLD",
    "FileInfo",
    "check_dataset",
    "estimate_jpeg_quality",
    "format_report",
    "ijg_table",
    "inspect_bytes",
    "inspect_file",
    "shortcut_audit",
    "write_report",
]
