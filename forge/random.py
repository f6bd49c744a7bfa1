"""forge.random (being written)."""
