"""forge.objectives (being written)."""
