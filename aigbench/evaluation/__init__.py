"""Evaluation: scoring a trained model and choosing among its checkpoints.

* :mod:`~aigbench.evaluation.evaluate`: test sets scored into metrics.json, predictions.csv,
  per-generator tables and TensorBoard, with the provenance of every number;
* :mod:`~aigbench.evaluation.selection`: the validation step that picks ``checkpoint-best.pth``
  and the threshold calibrated on validation data;
* :mod:`~aigbench.evaluation.predict`: ``bench predict`` on loose files;
* :mod:`~aigbench.evaluation.ensemble`: ``bench ensemble`` of several runs' scores.

It sits above :mod:`aigbench.engine` (the loop that produces predictions) and below the
applications that use it (:mod:`aigbench.training`, :mod:`aigbench.protocols`, the suites).
"""
