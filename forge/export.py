"""forge.export (being written)."""


def export(layer_or_layers, path, *, metadata=None, check=True):
    raise NotImplementedError("forge.export is being written")
