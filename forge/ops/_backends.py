"""Register the ops with PyTensor's JAX and Numba backends when those load.

The backends' dispatch modules import jax and numba (half a second together, and
PyTensor's JAX module switches jax's float64 support on or off from ``floatX`` as it
loads), so forge does not import them itself. Instead, a one-shot import hook runs the registration right after
PyTensor first imports ``pytensor.link.jax.dispatch`` or
``pytensor.link.numba.dispatch``, which it does when a function is compiled for
that backend; if the module is already loaded, registration happens at once.
"""
import importlib.abc
import sys

__all__ = ["install"]


class _RunAfterLoader(importlib.abc.Loader):
    """Wrap a module's loader to call ``callback(module)`` once it has executed."""

    def __init__(self, loader, callback):
        self._loader = loader
        self._callback = callback

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._callback(module)

    def __getattr__(self, name):
        # get_code, get_source, is_package, ...: whatever the real loader offers.
        return getattr(self._loader, name)


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Find nothing itself; hand the real finder's spec a wrapped loader, once."""

    def __init__(self, name, callback):
        self.name = name
        self.callback = callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            spec.loader = _RunAfterLoader(spec.loader, self.callback)
        return spec


def _after_import(name, callback):
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
    elif not any(isinstance(f, _AfterImportFinder) and f.name == name
                 for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImportFinder(name, callback))


def _register_jax(module):
    from . import _jax

    _jax.register(module.jax_funcify)


def _register_numba(module):
    from . import _numba

    _numba.register()


def install():
    """Arrange for the ops to be registered with the JAX and Numba backends."""
    _after_import("pytensor.link.jax.dispatch", _register_jax)
    _after_import("pytensor.link.numba.dispatch", _register_numba)
