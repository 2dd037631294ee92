"""Perturbations (registered in ``PERTURBATIONS``) and the robustness grid runner."""
