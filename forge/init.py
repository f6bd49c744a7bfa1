"""forge.init (being written)."""
