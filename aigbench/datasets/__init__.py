"""Dataset layouts, transforms and the embedded demo data."""
