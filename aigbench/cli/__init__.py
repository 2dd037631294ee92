"""The ``bench`` command line. Imports stay lazy: ``bench --help`` does not import torch."""
