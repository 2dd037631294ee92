"""Where a detector looks (``bench explain``): class-activation maps of any model with sanity
checks (:mod:`~aigbench.explain.cam`), drawn over the view the model scored and over the full
image, with a CSV, grids per class and generator and TensorBoard images
(:mod:`~aigbench.explain.run`). Needs the ``explain`` extra (pytorch-grad-cam)."""
