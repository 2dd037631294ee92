"""Training and evaluation machinery. Knows the output-dict contract; knows no CLI."""
