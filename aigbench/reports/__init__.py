"""Plots (matplotlib) and the HTML / Markdown report (jinja2)."""
