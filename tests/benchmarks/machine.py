"""What the benchmark ran on: CPU, cores, memory, BLAS, package versions."""
import importlib.metadata
import os
import platform

__all__ = ["describe_machine", "PACKAGES"]

#: Packages whose versions the report lists (distribution names).
PACKAGES = ("numpy", "numba", "onnxruntime", "onnx", "torch", "pytensor", "jax", "jaxlib",
            "threadpoolctl")

_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


#: AMD's CPU families (``cpu family`` in /proc/cpuinfo), for CPUs a VM names "AMD EPYC".
_AMD_FAMILIES = {23: "Zen/Zen 2", 25: "Zen 3/Zen 4", 26: "Zen 5"}


def _cpuinfo():
    fields, flags = {}, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "flags":
                    flags = set(value.split())
                    break  # the first processor is enough
                fields.setdefault(key, value.strip())
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or "unknown"
    family = fields.get("cpu family")
    if family:
        model += f" (vendor {fields.get('vendor_id')}, family {family}, model {fields.get('model')}"
        if fields.get("vendor_id") == "AuthenticAMD" and family.isdigit():
            model += f": {_AMD_FAMILIES.get(int(family), 'unknown microarchitecture')}"
        model += ")"
    return model, [flag for flag in _FLAGS_OF_INTEREST if flag in flags]


def _memory_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _numpy_blas():
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
    except TypeError:  # numpy < 1.25
        return None
    blas = config.get("Build Dependencies", {}).get("blas", {})
    return {key: blas.get(key) for key in ("name", "version", "openblas configuration")}


def describe_machine():
    """A JSON-ready description of this machine and the installed packages."""
    model, flags = _cpuinfo()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": model, "cpu_flags": flags, "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": _memory_gib(), "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(), "versions": versions,
        "numpy_blas": _numpy_blas(),
        "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE",
                                                         "OPENBLAS_L2_SIZE")},
    }
