"""Evaluation protocols: the cross-generator matrix and AI-GenBench's chronological sliding windows."""
