"""Runnable examples: ``python -m forge.examples.sequence``."""
