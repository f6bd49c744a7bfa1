"""forge.nonlinearities (being written)."""
