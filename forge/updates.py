"""forge.updates (being written)."""
