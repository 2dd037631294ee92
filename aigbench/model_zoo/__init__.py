"""Registered detectors. Importing this package registers every model in it."""
