"""forge.layers (being written)."""
