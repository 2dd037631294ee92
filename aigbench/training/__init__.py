"""Training as an application: :mod:`~aigbench.training.policy` runs the epochs (train, validate
and select, test for the record, log), records each step, and resumes or branches an interrupted
run. It uses the loop of :mod:`aigbench.engine` and the evaluation of :mod:`aigbench.evaluation`.
"""
