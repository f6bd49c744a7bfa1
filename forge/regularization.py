"""forge.regularization (being written)."""
