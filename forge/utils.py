"""forge.utils (being written)."""
