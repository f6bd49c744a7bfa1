"""The measuring subprocess: ``python -m tests.benchmarks.worker {timing,coldstart} ...``.

Each engine is measured in a process of its own, started by :mod:`tests.benchmarks.run`
with the environment under test (``FORGE_KERNELS``, ``OPENBLAS_*``, ``NUMBA_CACHE_DIR``).
The process prints one JSON object on its last line of output.

``timing ENGINE FOLDER --nets mlp,cnn``
    Opens each model, checks its output on the saved inputs against the saved ONNX
    Runtime reference (max abs diff <= ``TOLERANCE``) and only then times batch-1
    latency and batch-64/256 throughput. Reports the BLAS libraries that threadpoolctl
    sees (which OpenBLAS kernel, how many threads).
``latency ENGINE FOLDER NET --settings JSON``
    Opens one model and checks it as ``timing`` does, then serves bursts of batch-1
    calls: for each line ``SECONDS`` read from stdin it times calls for that long and
    answers one line, ``@@`` and a JSON summary (:func:`serve_latency`); ``quit`` or
    the end of stdin ends it. :func:`tests.benchmarks.run.run_paired_latency` runs
    every engine's server at once and asks them in turn.
``coldstart ENGINE NET FOLDER``
    Opens one model and makes one prediction, reporting ``time.monotonic()`` at each
    step (the parent subtracts the time it spawned the process: CLOCK_MONOTONIC is
    system-wide) and the process's peak RSS (:func:`peak_rss_mib`).

Only the standard library and :mod:`.engines` are imported before the engine itself.
"""
import argparse
import gc
import json
import os
import resource
import sys
import time

from .engines import Unavailable, kernel_check, open_engine

__all__ = ["TOLERANCE", "FOREIGN_LIMIT", "MARK", "CpuMeter", "quietly", "repeat",
           "summarize", "serve_latency", "peak_rss_mib", "main"]

#: Largest max-abs difference from the reference output that counts as the same result.
TOLERANCE = 1e-4

#: The start of each line the ``latency`` server answers with (before the JSON).
MARK = "@@ "

#: A measurement is "contended" when other processes used more than this many cores on
#: average while it ran (with a floor of 30 ms of CPU: /proc/stat counts 10 ms ticks).
#: On a shared 2-core machine one busy neighbour makes multi-threaded BLAS, OpenMP and
#: ONNX Runtime wait a scheduler time slice at every barrier: 10-100x slower figures.
FOREIGN_LIMIT = 0.1

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy_s():
    """CPU seconds the whole machine has spent busy (all CPUs), or None without /proc."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(values) - values[3] - values[4]) / _TICKS_PER_S  # minus idle, iowait


def _own_cpu_s():
    times = os.times()  # the whole process, every thread
    return times.user + times.system


class CpuMeter:
    """``with CpuMeter() as meter: ...`` then ``meter.foreign_cores``: the average number of
    cores that processes other than ours kept busy meanwhile (None without /proc/stat).

    ``own`` returns the CPU seconds that count as ours (default: this process).
    """

    def __init__(self, own=_own_cpu_s):
        self.own = own
        self.wall = self.foreign_s = None

    def __enter__(self):
        self._start = (time.monotonic(), _machine_busy_s(), self.own())
        return self

    def __exit__(self, *exc):
        wall0, busy0, own0 = self._start
        self.wall = time.monotonic() - wall0
        busy = _machine_busy_s()
        if busy is not None and busy0 is not None:
            self.foreign_s = max(0.0, (busy - busy0) - (self.own() - own0))
        return False

    @property
    def foreign_cores(self):
        return None if self.foreign_s is None else self.foreign_s / max(self.wall, 1e-9)

    @property
    def contended(self):
        return self.foreign_s is not None and self.foreign_s > max(FOREIGN_LIMIT * self.wall,
                                                                   0.03)


def quietly(run, attempts, own=_own_cpu_s):
    """Call ``run()`` up to ``attempts`` times, until other processes stayed (nearly) idle.

    Returns ``(result, foreign_cores, tries)`` of the least contended try.
    """
    best = None
    for tries in range(1, max(1, attempts) + 1):
        with CpuMeter(own) as meter:
            result = run()
        foreign = meter.foreign_cores
        if best is None or (foreign or 0.0) < (best[1] or 0.0):
            best = (result, foreign, tries)
        if not meter.contended:
            break
    return best[0], best[1], tries


def repeat(call, budget_s, min_reps, max_reps=1_000_000):
    """Call ``call(i)`` until ``budget_s`` seconds have passed and ``min_reps`` calls were
    made; return each call's duration in seconds (``time.perf_counter``).

    The garbage collector is off during the loop, as in ``timeit``.
    """
    durations = []
    gc.collect()
    gc.disable()
    try:
        end = time.perf_counter() + budget_s
        while len(durations) < max_reps and (len(durations) < min_reps
                                              or time.perf_counter() < end):
            start = time.perf_counter()
            call(len(durations))
            durations.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return durations


def summarize(durations):
    """Median, p90, mean, min (seconds) and count of a list of durations.

    >>> summarize([3.0, 1.0, 2.0])["median"]
    2.0
    """
    ordered = sorted(durations)
    n = len(ordered)

    def quantile(q):  # linear interpolation between the closest ranks
        position = q * (n - 1)
        low = int(position)
        high = min(low + 1, n - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"median": quantile(0.5), "p90": quantile(0.9), "mean": sum(ordered) / n,
            "min": ordered[0], "n": n}


def _blas_report():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    libraries = []
    for info in threadpool_info():
        library = {key: info.get(key) for key in ("user_api", "internal_api", "prefix",
                                                   "version", "architecture", "num_threads",
                                                   "threading_layer")}
        # which package ships it: site-packages/<package>/... or <package>.libs/...
        parts = os.path.normpath(info.get("filepath") or "").split(os.sep)
        if "site-packages" in parts and parts.index("site-packages") + 1 < len(parts):
            package = parts[parts.index("site-packages") + 1]
            library["package"] = package.removesuffix(".libs")
        libraries.append(library)
    return libraries


def _opened_and_checked(engine, net, folder):
    """``(engine's predict function, inputs, result dict)``, the dict holding the kernels
    and the max abs difference from the reference; or ``(None, None, dict)`` with
    ``unavailable`` or ``error`` when the engine cannot be timed."""
    import numpy as np

    try:
        opened = open_engine(engine, net, folder)
    except Unavailable as exc:
        return None, None, {"unavailable": str(exc)}
    inputs = np.load(os.path.join(folder, f"{net}.inputs.npy"))
    reference = np.load(os.path.join(folder, f"{net}.reference.npy"))
    output = opened.predict(inputs)
    backend, problem = kernel_check(engine, net)
    if problem:
        return None, None, {"unavailable": problem, "kernels": backend}
    diff = float(np.max(np.abs(output.astype(np.float64) - reference)))
    if not diff <= TOLERANCE:
        return None, None, {"error": f"{engine} differs from the ONNX Runtime reference on "
                                     f"{net} by {diff:.3g} (max abs), over {TOLERANCE:g}; "
                                     "not timed"}
    return opened.predict, inputs, {"kernels": backend, "max_abs_diff": diff}


def _singles(inputs):
    """64 different single items shaped like ``inputs``' (a batch-1 latency cycles them)."""
    import numpy as np

    pool = np.random.default_rng(2).random((64,) + inputs.shape[1:], dtype=np.float32)
    return [np.ascontiguousarray(pool[i:i + 1]) for i in range(len(pool))]


def _time_model(engine, net, folder, settings):
    import numpy as np

    predict, inputs, result = _opened_and_checked(engine, net, folder)
    if predict is None:
        return result
    result["throughput"] = {}
    singles = _singles(inputs)
    attempts = settings["attempts"]

    def single(i):
        predict(singles[i % 64])

    repeat(single, settings["warmup_s"], 10)
    durations, foreign, tries = quietly(
        lambda: repeat(single, settings["latency_s"], settings["latency_min"]), attempts)
    result["latency_ms"] = {k: (v * 1e3 if k != "n" else v)
                            for k, v in summarize(durations).items()}
    result["latency_ms"].update(foreign_cores=foreign, tries=tries)

    for batch in settings["batches"]:
        x = np.random.default_rng(3).random((batch,) + inputs.shape[1:], dtype=np.float32)

        def call(i, x=x):
            predict(x)

        repeat(call, settings["warmup_s"], 2)
        durations, foreign, tries = quietly(
            lambda call=call: repeat(call, settings["throughput_s"],
                                     settings["throughput_min"]),
            attempts)
        stats = summarize(durations)
        result["throughput"][str(batch)] = {
            "samples_per_s": batch / stats["median"], "batch_ms": stats["median"] * 1e3,
            "batch_ms_p90": stats["p90"] * 1e3, "n": stats["n"], "foreign_cores": foreign,
            "tries": tries}
    return result


def serve_latency(engine, net, folder, settings, requests=None, answers=None):
    """Serve bursts of batch-1 calls (the ``latency`` command): first an answer line with
    the check's result (``ready`` true, or ``unavailable``/``error``), then for each
    request line ``SECONDS`` one line with the burst's median, p90 and min (ms), its
    call count and ``foreign_cores`` (see :class:`CpuMeter`). ``requests`` and
    ``answers`` default to stdin and stdout."""
    requests = sys.stdin if requests is None else requests
    answers = sys.stdout if answers is None else answers

    def answer(payload):
        answers.write(MARK + json.dumps(payload) + "\n")
        answers.flush()

    predict, inputs, result = _opened_and_checked(engine, net, folder)
    if predict is None:
        answer(result)
        return
    singles = _singles(inputs)

    def single(i):
        predict(singles[i % 64])

    repeat(single, settings["warmup_s"], 10)
    answer(dict(result, ready=True))
    for line in requests:
        if line.strip() in ("", "quit"):
            break
        with CpuMeter() as meter:
            durations = repeat(single, float(line), settings["min_calls"])
        stats = summarize(durations)
        answer({"median": stats["median"] * 1e3, "p90": stats["p90"] * 1e3,
                "min": stats["min"] * 1e3, "n": stats["n"],
                "foreign_cores": meter.foreign_cores})


def timing(engine, folder, nets, settings):
    """Time ``engine`` on each of ``nets``; a JSON-ready dict."""
    results = {net: _time_model(engine, net, folder, settings) for net in nets}
    return {"engine": engine, "models": results, "blas": _blas_report(),
            "env": {k: os.environ.get(k) for k in ("FORGE_KERNELS", "OPENBLAS_CORETYPE",
                                                     "OPENBLAS_L2_SIZE")}}


def peak_rss_mib():
    """This process's peak resident set size in MiB: ``VmHWM`` from /proc/self/status.

    ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is the fallback only: on Linux it is
    carried across fork and execve, so a child of a large process reports its parent's
    peak (a child of the benchmark's parent, which has torch loaded, reports ~320 MiB
    whatever it does). ``VmHWM`` belongs to the address space the child execs into.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def coldstart(engine, net, folder):
    """One cold start, as monotonic timestamps, and the peak RSS (MiB)."""
    started = time.monotonic()
    try:
        opened = open_engine(engine, net, folder)
    except Unavailable as exc:
        return {"unavailable": str(exc)}
    import numpy as np

    x = np.load(os.path.join(folder, f"{net}.inputs.npy"))[:1].copy()
    y = opened.predict(x)
    predicted = time.monotonic()
    backend, problem = kernel_check(engine, net)
    reference = np.load(os.path.join(folder, f"{net}.reference.npy"))[:1]
    return {"started": started, "imported": opened.marks["imported"],
            "loaded": opened.marks["loaded"], "predicted": predicted,
            "peak_rss_mib": peak_rss_mib(),
            "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "kernels": backend, "problem": problem,
            "max_abs_diff": float(np.max(np.abs(y - reference)))}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.worker")
    commands = parser.add_subparsers(dest="command", required=True)
    timed = commands.add_parser("timing")
    timed.add_argument("engine")
    timed.add_argument("folder")
    timed.add_argument("--nets", default="mlp,cnn")
    timed.add_argument("--settings", required=True, help="JSON: budgets and batch sizes")
    served = commands.add_parser("latency")
    served.add_argument("engine")
    served.add_argument("folder")
    served.add_argument("net")
    served.add_argument("--settings", required=True, help="JSON: warmup_s, min_calls")
    cold = commands.add_parser("coldstart")
    cold.add_argument("engine")
    cold.add_argument("net")
    cold.add_argument("folder")
    args = parser.parse_args(argv)
    if args.command == "latency":
        serve_latency(args.engine, args.net, args.folder, json.loads(args.settings))
        return
    if args.command == "timing":
        result = timing(args.engine, args.folder, args.nets.split(","),
                        json.loads(args.settings))
    else:
        result = coldstart(args.engine, args.net, args.folder)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
