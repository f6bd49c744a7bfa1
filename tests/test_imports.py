"""Import boundaries between the packages.

``runtime`` runs on CPU-only edge boxes with numpy alone: importing and running it must
not load PyTensor, forge, SciPy, the web stack, or numba (which, with its llvmlite,
will only ever be imported lazily, inside a kernel). ``service`` serves bundles and must
not load the training side either.
"""
import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOT_FOR_RUNTIME = {"pytensor", "forge", "scipy", "fastapi", "pydantic", "numba", "llvmlite"}
LAZY_IN_RUNTIME = {"numba", "llvmlite"}  # inside functions only
NEVER_IN_RUNTIME = {"pytensor", "forge", "scipy", "fastapi", "pydantic", "service",
                    "starlette", "uvicorn", "theano", "lasagne"}
NOT_FOR_SERVICE = {"pytensor", "forge"}
#: Optional integrations inside runtime/ that ``import runtime`` never imports, and what
#: each may import besides numpy (tests/runtime/test_dask.py checks it stays unimported).
OPTIONAL_MODULES = {"dask.py": {"dask", "distributed", "pandas"}}


def modules_after(code):
    """Top-level module names loaded by a fresh interpreter after running ``code``."""
    report = "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    script = f"import sys, json\n{code}\n{report}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_importing_runtime_loads_no_heavy_dependency():
    loaded = modules_after("import runtime")
    assert "runtime" in loaded and "numpy" in loaded
    assert not loaded & NOT_FOR_RUNTIME, sorted(loaded & NOT_FOR_RUNTIME)


def test_loading_and_running_a_bundle_loads_no_heavy_dependency(tmp_path):
    from tests.runtime.helpers import mlp_builder

    path = mlp_builder()[0].write(tmp_path / "mlp.npz")
    loaded = modules_after(
        "import numpy as np, runtime\n"
        f"model = runtime.load({str(path)!r})\n"
        "model(np.zeros((2, 4)))\n"
        "model.run({'input': np.zeros((1, 4))}, outputs=['dense_1'])\n"
        "print(model.describe())")
    assert not loaded & NOT_FOR_RUNTIME, sorted(loaded & NOT_FOR_RUNTIME)


@pytest.mark.skipif(not (ROOT / "service" / "__init__.py").exists(),
                    reason="the service package does not exist yet")
def test_importing_service_loads_neither_forge_nor_pytensor():
    loaded = modules_after("import service")
    assert "service" in loaded
    assert not loaded & NOT_FOR_SERVICE, sorted(loaded & NOT_FOR_SERVICE)


def imports_in(path):
    """(module, level, inside_function, line) for every import statement in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                       ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, 0, in_function, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.append((child.module or "", child.level, in_function, child.lineno))
            visit(child, nested)

    visit(tree, False)
    return found


def import_problems(path, depth, label, also=()):
    """What is wrong with ``path``'s imports, for a file ``depth`` levels into runtime/
    (``also``: top-level modules this file may import as well)."""
    allowed = set(sys.stdlib_module_names) | {"numpy", "runtime"} | set(also)
    problems = []
    for module, level, in_function, line in imports_in(path):
        root = module.split(".")[0]
        if level:
            if level > depth:
                problems.append(f"{label}:{line}: relative import leaves the runtime package")
        elif root in NEVER_IN_RUNTIME:
            problems.append(f"{label}:{line}: imports {module}")
        elif root not in allowed and not (in_function and root in LAZY_IN_RUNTIME):
            problems.append(f"{label}:{line}: imports {module} at module level")
    return problems


def test_runtime_sources_import_only_numpy_and_the_standard_library():
    sources = sorted((ROOT / "runtime").rglob("*.py"))
    assert len(sources) > 10, "runtime sources not found"
    problems = []
    for path in sources:
        relative = path.relative_to(ROOT / "runtime")
        problems += import_problems(path, len(relative.parts), f"runtime/{relative}",
                                    OPTIONAL_MODULES.get(str(relative), ()))
    assert not problems, "\n".join(problems)


def test_the_static_check_catches_forbidden_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy, json\nimport pytensor.tensor as T\nimport numba\n"
                   "from ... import forge\n"
                   "def kernel():\n    import numba\n    from forge import layers\n")
    assert import_problems(bad, 1, "bad.py") == [
        "bad.py:2: imports pytensor.tensor", "bad.py:3: imports numba at module level",
        "bad.py:4: relative import leaves the runtime package", "bad.py:7: imports forge"]
