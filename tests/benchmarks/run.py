"""Benchmark Forge's runtime against ONNX Runtime and PyTorch: ``python -m tests.benchmarks.run``.

One run builds both networks from one seed, writes them for every engine, checks that
the engines agree (max abs diff <= 1e-4 on the output and the last hidden layer) before
timing anything, then measures, each engine in a subprocess of its own:

- batch-1 latency (median, p90), with the engines interleaved (:func:`run_paired_latency`),
  and batch-64/256 throughput (:func:`run_timing`);
- cold start: a new process that imports the engine, loads the model and makes one
  prediction, with that process's peak RSS (numba: with a warm and an empty cache);
- all of it twice when ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` are set: as set, and
  in subprocesses whose environment drops both (this process's environment is never
  changed);
- a training step of the CNN (forge per PyTensor mode, PyTorch), when forge has
  ``Conv2DLayer``.

Examples
--------
::

    python -m tests.benchmarks.run --output docs/benchmarks.md   # about 10 minutes
    python -m tests.benchmarks.run --quick                       # under a minute
    python -m tests.benchmarks.run --from-forge --output /tmp/b.md
"""
import argparse
import compileall
import copy
import datetime
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import runtime

from . import networks
from .engines import ENGINES, THREADS
from .machine import describe_machine
from .report import REFERENCE, render
from .worker import MARK, TOLERANCE, CpuMeter, quietly

__all__ = ["SETTINGS", "OPENBLAS_VARS", "preserved_block", "main"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: The environment variables dropped for the "unset" measurements.
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: Budgets: seconds per measurement, minimum repetitions, cold-start repetitions.
SETTINGS = {
    "full": {
        "timing": {"warmup_s": 0.5, "latency_s": 1.0, "latency_min": 50,
                   "throughput_s": 2.0, "throughput_min": 5, "batches": [64, 256],
                   "attempts": 3},
        "timing_rounds": 3,
        "paired": {"cycles": 15, "burst_s": 0.2, "gap_s": 0.2, "warmup_s": 0.5,
                   "min_calls": 20},
        "cold_reps": 5, "cold_prime": True, "cold_attempts": 2, "quiet_wait_s": 30.0,
        "quiet_total_s": 150.0,
        "training_s": 5.0, "training_min": 5, "timeout_s": 300,
    },
    "quick": {
        "timing": {"warmup_s": 0.05, "latency_s": 0.15, "latency_min": 10,
                   "throughput_s": 0.1, "throughput_min": 2, "batches": [64, 256],
                   "attempts": 1},
        "timing_rounds": 1,
        "paired": {"cycles": 2, "burst_s": 0.05, "gap_s": 0.2, "warmup_s": 0.05,
                   "min_calls": 5},
        "cold_reps": 1, "cold_prime": False, "cold_attempts": 1, "quiet_wait_s": 0.0,
        "quiet_total_s": 0.0,
        "training_s": 0.0, "training_min": 0, "timeout_s": 120,
    },
}

#: Cold-start cases: (label, engine, numba cache: None, "warm" or "empty").
COLD_CASES = (
    ("runtime-numpy", "runtime-numpy", None),
    ("runtime-numba, warm cache", "runtime-numba", "warm"),
    ("runtime-numba, empty cache", "runtime-numba", "empty"),
    ("runtime-auto, warm cache", "runtime-auto", "warm"),
    ("runtime-auto, empty cache", "runtime-auto", "empty"),
    ("onnxruntime", "onnxruntime", None),
    ("torch", "torch", None),
)

TRAINING_MODES = ("NUMBA", "CVM", "JAX", "torch")


def _log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ours_cpu_s():
    """CPU seconds of this process and its finished children (the measured ones)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


#: Seconds :func:`wait_quiet` may still spend in this run (set by :func:`main`).
_quiet_budget = [0.0]


def wait_quiet(max_s):
    """Wait (up to ``max_s``, and what is left of the run's budget) for a second in which
    other processes leave the CPUs idle.

    Returns the other processes' load (cores) in the last second waited, or None.
    """
    start = time.monotonic()
    limit = min(max_s, _quiet_budget[0])
    foreign = None
    while limit > 0:
        with CpuMeter(_ours_cpu_s) as meter:
            time.sleep(1.0)
        foreign = meter.foreign_cores
        if not meter.contended or time.monotonic() - start >= limit:
            break
    _quiet_budget[0] -= time.monotonic() - start
    return foreign


def _last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def _python(module, args, env, timeout):
    """Run ``python -m module args`` in the repository root; (result dict, seconds)."""
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}, start
    try:
        result = _last_json(done.stdout)
    except ValueError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit status {done.returncode}: {' | '.join(tail)[:500]}"}, start
    return result, start


# -- environments -------------------------------------------------------------------------

def _variants():
    """The OpenBLAS environments to measure: [(name, description, env without it)]."""
    found = {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ}
    base = {k: v for k, v in os.environ.items() if k not in ("FORGE_KERNELS",
                                                             "NUMBA_CACHE_DIR")}
    if not found:
        return [("default", "no OPENBLAS_* variable set", base)]
    set_text = " ".join(f"{k}={v}" for k, v in found.items())
    unset = {k: v for k, v in base.items() if k not in OPENBLAS_VARS}
    return [("as set", set_text, base), ("unset", f"{' and '.join(found)} removed", unset)]


def _timing_env(base, engine, numba_cache):
    """A timing process's environment: ``numba_cache``, the one the timing processes
    share, for the engines that may run numba."""
    return _engine_env(base, engine, numba_cache if engine in ("runtime-numba",
                                                               "runtime-auto") else None)


def _engine_env(base, engine, numba_cache=None):
    env = dict(base)
    if engine.startswith("runtime-"):
        env["FORGE_KERNELS"] = engine.split("-", 1)[1]
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache
    return env


# -- build and verify -------------------------------------------------------------------------

def build(folder, nets, seed, from_forge):
    """Write every engine's files for ``nets``; the weights, by net."""
    all_weights = {}
    for net in nets:
        weights = networks.make_weights(net, seed)
        use_forge = from_forge
        networks.write_all(folder, net, weights, from_forge=use_forge)
        np.savez(os.path.join(folder, f"{net}.weights.npz"), **weights)
        all_weights[net] = weights
        _log(f"wrote {net}: bundle {'via forge.export' if use_forge else 'hand-built'}, "
             "ONNX graph, PyTorch state dict")
    return all_weights


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def verify(folder, net, weights):
    """Run the three engines on the same inputs; compare output and last hidden layer.

    Saves the inputs and ONNX Runtime's output as the reference every worker checks
    against. Returns the verification record; ``ok`` is False if any pair differs.
    """
    import onnxruntime as ort
    import torch

    import runtime
    from runtime.errors import BundleError

    paths = networks.files(folder, net)
    hidden = networks.HIDDEN[net]
    x = networks.make_inputs(net, 16, seed=1)
    results = {}

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    session = ort.InferenceSession(
        networks.onnx_model(net, weights, extra_outputs=[hidden]).SerializeToString(),
        options, providers=["CPUExecutionProvider"])
    ort_outputs = session.run(["output", hidden], {"input": x})
    results["onnxruntime"] = {"output": ort_outputs[0], hidden: ort_outputs[1]}
    module = networks.torch_module(net)
    module.load_state_dict(torch.load(paths["torch"], weights_only=True), assign=True)
    with torch.inference_mode():
        xt = torch.from_numpy(x)
        results["torch"] = {"output": module(xt).numpy(),
                            hidden: networks.torch_hidden(module, hidden)(xt).numpy()}
    record = {"batch": len(x), "tolerance": TOLERANCE, "pairs": [], "pending": {}}
    try:
        model = runtime.load(paths["bundle"])
        results["runtime"] = model.run({"input": x}, outputs=["output", hidden])
    except BundleError as exc:
        record["pending"]["runtime"] = str(exc)

    engines = list(results)
    for i, first in enumerate(engines):
        for second in engines[i + 1:]:
            for layer in ("output", hidden):
                diff = _max_diff(results[first][layer], results[second][layer])
                record["pairs"].append({"engines": [first, second], "layer": layer,
                                        "max_abs_diff": diff, "ok": diff <= TOLERANCE})
    reference = results["onnxruntime"]["output"]
    record["output_max_prob_mean"] = float(reference.max(axis=1).mean())
    record["ok"] = all(pair["ok"] for pair in record["pairs"])
    np.save(paths["inputs"], x)
    np.save(paths["reference"], reference.astype(np.float32))
    return record


# -- measurements -----------------------------------------------------------------------------

def run_timing(folder, nets, variant_env, settings, numba_cache):
    """Time every engine, one subprocess each, in ``settings["timing_rounds"]`` rounds
    (each round starts one engine later in :data:`ENGINES`); results by engine, each
    figure from its median round (:func:`median_round`)."""
    rounds = {engine: [] for engine in ENGINES}
    count = settings.get("timing_rounds", 1)
    for number in range(count):
        start = number % len(ENGINES)
        for engine in ENGINES[start:] + ENGINES[:start]:
            args = ["timing", engine, folder, "--nets", ",".join(nets),
                    "--settings", json.dumps(settings["timing"])]
            wait_quiet(settings["quiet_wait_s"])
            result, _ = _python("tests.benchmarks.worker", args,
                                _timing_env(variant_env, engine, numba_cache),
                                settings["timeout_s"])
            if "error" in result:
                result = {"engine": engine, "models": {net: dict(result) for net in nets}}
            rounds[engine].append(result)
            summary = ", ".join(
                f"{net}: " + (f"{m['latency_ms']['median']:.3g} ms" if "latency_ms" in m
                              else (m.get("unavailable") or m.get("error", "?"))[:60])
                for net, m in result["models"].items())
            _log(f"  timing {engine} (round {number + 1} of {count}): {summary}")
    return {engine: median_round(results) for engine, results in rounds.items()}


def run_paired_latency(folder, nets, variant_env, settings, numba_cache):
    """Batch-1 latency with the engines interleaved: per model, one ``latency`` server
    process per engine (:func:`tests.benchmarks.worker.serve_latency`), all loaded and
    warm, asked in turn for bursts of ``burst_s`` seconds, ``cycles`` times (each cycle
    starting one engine later, a pause of ``gap_s`` before each burst, so that the
    previous engine's threads have stopped spinning). A neighbour's load then falls on
    every engine alike, where separate processes minutes apart each met their own.

    Returns ``{engine: {net: entry}}``: the medians of the bursts' medians and p90s
    (ms), the bursts' medians, the calls, the bursts' median other load, and the
    median of each cycle's ratio to ONNX Runtime's burst of the same cycle
    (``median_ratio``, ``p90_ratio``), the paired estimate the report gives; or the
    server's ``unavailable``/``error``.
    """
    paired = settings["paired"]
    results = {engine: {} for engine in ENGINES}
    for net in nets:
        servers = {}
        for engine in ENGINES:
            args = [sys.executable, "-m", "tests.benchmarks.worker", "latency", engine,
                    folder, net, "--settings", json.dumps(paired)]
            servers[engine] = subprocess.Popen(
                args, cwd=ROOT, env=_timing_env(variant_env, engine, numba_cache), text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        bursts = {}
        try:
            for engine, server in servers.items():  # every one loaded before any burst
                answer = _answer(server)
                if answer.get("ready"):
                    bursts[engine] = []
                else:
                    results[engine][net] = answer
            order = [engine for engine in ENGINES if engine in bursts]
            for cycle in range(paired["cycles"]):
                start = cycle % max(1, len(order))
                for engine in order[start:] + order[:start]:
                    time.sleep(paired["gap_s"])
                    bursts[engine].append(_burst(servers[engine], paired["burst_s"]))
                order = [e for e in order if "error" not in bursts[e][-1]]  # a server died
        finally:
            for server in servers.values():
                try:
                    server.stdin.write("quit\n")
                    server.stdin.close()
                except OSError:
                    pass
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
        for engine, entries in bursts.items():
            results[engine][net] = paired_summary(entries, bursts.get(REFERENCE))
        _log(f"  paired latency {net}: " + ", ".join(
            f"{engine} {entry['median']:.3g} ms" for engine, by_net in results.items()
            for entry in [by_net.get(net, {})] if "median" in entry))
    return results


def paired_summary(bursts, reference=None):
    """One engine's latency from its bursts (the server's answers, one per cycle) and the
    reference engine's bursts of the same cycles: the medians of the bursts' medians and
    p90s, and of each cycle's ratio to the reference (``median_ratio``, ``p90_ratio``;
    absent without a reference). A burst's error stands for the whole.

    >>> burst = lambda median: {"median": median, "p90": 2 * median, "n": 10,
    ...                         "foreign_cores": 0.0}
    >>> summary = paired_summary([burst(1.1), burst(2.2), burst(1.3)],
    ...                          [burst(1.0), burst(2.0), burst(1.0)])
    >>> summary["median"], summary["n"], [round(r, 2) for r in summary["median_ratios"]]
    (1.3, 30, [1.1, 1.1, 1.3])
    >>> round(summary["median_ratio"], 2)
    1.1
    """
    errors = [burst for burst in bursts if "error" in burst]
    if errors:
        return errors[0]
    loads = [burst["foreign_cores"] for burst in bursts
             if burst["foreign_cores"] is not None]
    summary = {"median": statistics.median(burst["median"] for burst in bursts),
               "p90": statistics.median(burst["p90"] for burst in bursts),
               "n": sum(burst["n"] for burst in bursts),
               "bursts": [burst["median"] for burst in bursts],
               "foreign_cores": statistics.median(loads) if loads else None}
    if reference and not any("error" in burst for burst in reference):
        for key in ("median", "p90"):
            ratios = [burst[key] / other[key] for burst, other in zip(bursts, reference)]
            summary[f"{key}_ratios"] = ratios
            summary[f"{key}_ratio"] = statistics.median(ratios)
    return summary


def _burst(server, seconds):
    """Ask a latency server for one burst; its answer, or an ``error``."""
    try:
        server.stdin.write(f"{seconds}\n")
        server.stdin.flush()
    except OSError as exc:
        return {"error": f"the latency server stopped reading ({exc})"}
    return _answer(server)


def _answer(server):
    """The next ``MARK`` line a latency server writes, as a dict (an ``error`` when it
    exited first)."""
    for line in server.stdout:
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    return {"error": f"the latency server exited with status {server.wait()}"}


def merge_paired_latency(timing, paired):
    """Put each engine's paired batch-1 latency (:func:`run_paired_latency`) in its timing
    results as ``latency_ms``, keeping the timing process's own as ``process_latency_ms``;
    where the paired measurement failed, the process's stays, marked as such.

    >>> timing = {"e": {"models": {"mlp": {"latency_ms": {"median": 2.0}}}}}
    >>> merge_paired_latency(timing, {"e": {"mlp": {"median": 1.0, "bursts": [1.0]}}})
    >>> timing["e"]["models"]["mlp"]["latency_ms"]
    {'median': 1.0, 'bursts': [1.0], 'method': 'paired'}
    >>> timing["e"]["models"]["mlp"]["process_latency_ms"]
    {'median': 2.0}
    """
    for engine, result in timing.items():
        for net, model in result.get("models", {}).items():
            if "latency_ms" not in model:
                continue
            entry = paired.get(engine, {}).get(net, {})
            if "median" in entry:
                model["process_latency_ms"] = model["latency_ms"]
                model["latency_ms"] = dict(entry, method="paired")
            else:
                model["latency_ms"]["method"] = "process"
                model["latency_ms"]["paired_failed"] = entry.get(
                    "error") or entry.get("unavailable") or "not measured"


def median_round(results):
    """Merge one engine's timing results from several rounds: its batch-1 latency and
    each batch size's throughput come whole (p90, counts, load) from the round with
    the median figure (the lower middle one for an even count), with every round's
    figure listed under ``rounds``; a model that failed or was unavailable in any
    round keeps that round's entry.

    >>> one = lambda ms, rate: {"models": {"mlp": {"latency_ms": {"median": ms},
    ...     "throughput": {"64": {"samples_per_s": rate}}}}}
    >>> merged = median_round([one(3.0, 10.0), one(1.0, 30.0), one(2.0, 20.0)])
    >>> merged["models"]["mlp"]["latency_ms"]
    {'median': 2.0, 'rounds': [3.0, 1.0, 2.0]}
    >>> merged["models"]["mlp"]["throughput"]["64"]["samples_per_s"]
    20.0
    """
    def middle(entries, figure):
        ranked = sorted(entries, key=figure)
        chosen = dict(ranked[(len(ranked) - 1) // 2])
        chosen["rounds"] = [figure(entry) for entry in entries]
        return chosen

    merged = copy.deepcopy(results[0])
    for net, first in merged["models"].items():
        entries = [result["models"][net] for result in results]
        failed = [entry for entry in entries if "latency_ms" not in entry]
        if failed:
            merged["models"][net] = failed[0]
            continue
        first["latency_ms"] = middle([e["latency_ms"] for e in entries],
                                     lambda entry: entry["median"])
        for batch in first.get("throughput", {}):
            first["throughput"][batch] = middle([e["throughput"][batch] for e in entries],
                                                lambda entry: entry["samples_per_s"])
    return merged


def _cold_once(engine, net, folder, env, timeout, attempts=1, fresh_env=None):
    """One cold start (``attempts`` tries while other processes keep the CPUs busy);
    ``fresh_env()``, if given, makes the environment of each try (an empty numba cache)."""

    def run():
        result, spawned = _python("tests.benchmarks.worker",
                                  ["coldstart", engine, net, folder],
                                  fresh_env() if fresh_env else env, timeout)
        if "predicted" in result:
            for key in ("started", "imported", "loaded", "predicted"):
                result[key] -= spawned
        return result

    result, foreign, tries = quietly(run, attempts, own=_ours_cpu_s)
    result.update(foreign_cores=foreign, tries=tries)
    return result


def run_coldstarts(folder, nets, variant_env, settings, scratch, warm_cache):
    """Cold starts: ``cold_reps`` rounds over all cases, after one unrecorded round (if
    ``cold_prime``) that warms the OS file cache. ``warm_cache`` is the numba cache the
    timing processes filled. Results by net, then case label."""
    results = {net: {} for net in nets}
    runs = {(net, label): [] for net in nets for label, _, _ in COLD_CASES}
    # An installed package has its bytecode: pip compiles it at install time, as it did
    # for numpy and onnxruntime here. A source checkout under PYTHONDONTWRITEBYTECODE=1
    # (this machine's environment) would recompile runtime/ in every new process.
    compileall.compile_dir(os.path.dirname(runtime.__file__), quiet=1)

    def empty_cache_env(engine):
        return lambda: _engine_env(variant_env, engine,
                                   tempfile.mkdtemp(prefix="numba-empty-", dir=scratch))

    first = 0 if settings["cold_prime"] else 1
    for round_ in range(first, settings["cold_reps"] + 1):  # round 0 primes, unrecorded
        for net in nets:
            for label, engine, cache in COLD_CASES:
                if round_ and "unavailable" in results[net].get(label, {}):
                    continue
                env = _engine_env(variant_env, engine, warm_cache if cache else None)
                result = _cold_once(engine, net, folder, env, settings["timeout_s"],
                                    settings["cold_attempts"] if round_ else 1,
                                    empty_cache_env(engine) if cache == "empty" else None)
                if "unavailable" in result or "error" in result:
                    results[net][label] = result
                elif result.get("problem"):
                    results[net][label] = {"unavailable": result["problem"]}
                elif round_:
                    runs[(net, label)].append(result)
    for (net, label), samples in runs.items():
        if not samples:
            continue
        summary = {"n": len(samples),
                   "foreign_cores_max": max(s["foreign_cores"] or 0.0 for s in samples),
                   "retried": sum(s["tries"] - 1 for s in samples)}
        for key in ("started", "imported", "loaded", "predicted", "peak_rss_mib"):
            summary[key] = float(np.median([s[key] for s in samples]))
        summary["phases_ms"] = {
            "interpreter": summary["started"] * 1e3,
            "imports": float(np.median([s["imported"] - s["started"] for s in samples])) * 1e3,
            "load": float(np.median([s["loaded"] - s["imported"] for s in samples])) * 1e3,
            "first_prediction": float(np.median([s["predicted"] - s["loaded"]
                                                 for s in samples])) * 1e3}
        summary["total_ms"] = summary["predicted"] * 1e3
        summary["kernels"] = samples[0].get("kernels")
        summary["max_abs_diff"] = max(s["max_abs_diff"] for s in samples)
        results[net][label] = summary
        _log(f"  cold start {net} {label}: {summary['total_ms']:.0f} ms, "
             f"{summary['peak_rss_mib']:.0f} MiB")
    return results


def run_training(folder, settings):
    """Training-step times per PyTensor mode and PyTorch, or why there are none."""
    if settings["training_s"] <= 0:
        return {"skipped": "skipped with --quick (compiling the training graphs takes "
                           "minutes)"}
    probe, _ = _python("tests.benchmarks.run", ["--probe-forge"], dict(os.environ), 300)
    if probe.get("unavailable"):
        return {"pending": probe["unavailable"]}
    results = {}
    for mode in TRAINING_MODES:
        args = [mode, folder, "--seconds", str(settings["training_s"]),
                "--min-steps", str(settings["training_min"]),
                "--attempts", str(settings["timing"]["attempts"])]
        wait_quiet(settings["quiet_wait_s"])
        env = {k: v for k, v in os.environ.items() if k != "PYTENSOR_FLAGS"}
        results[mode], _ = _python("tests.benchmarks.training", args, env,
                                   settings["timeout_s"] * 2)
        result = results[mode]
        _log(f"  training {mode}: " + (f"{result['step_ms']['median']:.1f} ms/step"
                                        if "step_ms" in result else result.get("error", "?")))
    return {"modes": results}


# -- the report file ---------------------------------------------------------------------------

#: A block of the report that another tool writes (the service's load test, the GPU
#: training figures, ...) sits between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``
#: lines; regenerating the report keeps every such block, verbatim, at the end.
_BLOCK = re.compile(r"^[ \t]*<!-- ([\w.-]+):begin -->[ \t]*$.*?^[ \t]*<!-- \1:end -->[ \t]*$",
                    re.MULTILINE | re.DOTALL)


def preserved_block(path):
    """Every ``<!-- NAME:begin -->`` ... ``<!-- NAME:end -->`` block in the file at
    ``path`` (markers included, each after a blank line), or "" when there is none.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
    ...     _ = f.write("# old\\n<!-- service-load:begin -->\\nkept\\n<!-- service-load:end -->\\n"
    ...                 "dropped\\n<!-- gpu:begin -->\\nalso kept\\n<!-- gpu:end -->\\n")
    >>> preserved_block(f.name).splitlines()  # doctest: +NORMALIZE_WHITESPACE
    ['', '<!-- service-load:begin -->', 'kept', '<!-- service-load:end -->',
     '', '<!-- gpu:begin -->', 'also kept', '<!-- gpu:end -->']
    """
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return ""
    return "".join("\n" + match.group(0) + "\n" for match in _BLOCK.finditer(text))


# -- command line -----------------------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.run",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short budgets, one cold start per case, no training (<1 min)")
    parser.add_argument("--output", help="write the Markdown report here "
                                         "(default: print it)")
    parser.add_argument("--json", help="also write the raw results as JSON here")
    parser.add_argument("--from-forge", action="store_true",
                        help="build the bundles with forge's layers and forge.export")
    parser.add_argument("--nets", default="mlp,cnn", help="comma-separated: mlp, cnn")
    parser.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    parser.add_argument("--no-training", action="store_true", help="skip the training step")
    parser.add_argument("--no-unset", action="store_true",
                        help="measure with OPENBLAS_* as set only")
    parser.add_argument("--wait-quiet", type=float, metavar="SECONDS",
                        help="before each timing process, wait up to this long for a second "
                             "in which other processes leave the CPUs idle (default: 30, "
                             "--quick: 0; the run waits at most 5x this, or 150 s, in all)")
    parser.add_argument("--workdir", help="keep the model files and caches here")
    parser.add_argument("--probe-forge", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.probe_forge:  # in a subprocess, so that this process never imports pytensor
        print(json.dumps({"unavailable": networks.forge_available()}))
        return 0
    os.environ["FORGE_KERNELS"] = "numpy"  # this process's runtime: the reference kernels
    nets = args.nets.split(",")
    unknown = sorted(set(nets) - set(networks.NETWORKS))
    if unknown:
        raise SystemExit(f"unknown network(s) {unknown}; expected some of "
                         f"{sorted(networks.NETWORKS)}")
    settings = dict(SETTINGS["quick" if args.quick else "full"])
    if args.wait_quiet is not None:
        settings["quiet_wait_s"] = args.wait_quiet
        settings["quiet_total_s"] = max(settings["quiet_total_s"], 5 * args.wait_quiet)
    _quiet_budget[0] = settings["quiet_total_s"]
    if args.from_forge:
        probe, _ = _python("tests.benchmarks.run", ["--probe-forge"], dict(os.environ), 300)
        if probe.get("unavailable") and "cnn" in nets:
            raise SystemExit(f"--from-forge: {probe['unavailable']}")
    started = time.monotonic()
    scratch = args.workdir or tempfile.mkdtemp(prefix="forge-bench-")
    os.makedirs(scratch, exist_ok=True)
    results = {
        "command": "python -m tests.benchmarks.run " + shlex.join(argv),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick, "from_forge": args.from_forge, "seed": args.seed,
        "threads": THREADS, "settings": settings, "machine": describe_machine(),
        "nets": {}, "variants": [],
    }
    try:
        weights = build(scratch, nets, args.seed, args.from_forge)
        for net in nets:
            record = verify(scratch, net, weights[net])
            manifest = networks.read_manifest(networks.files(scratch, net)["bundle"])
            results["nets"][net] = {
                "description": networks.DESCRIPTIONS[net], "verification": record,
                "written_by": manifest.get("created", {}).get("by"),
                "export_parity": manifest.get("parity"),
                "params": int(sum(a.size for a in weights[net].values())),
                "bundle_bytes": os.path.getsize(networks.files(scratch, net)["bundle"])}
            worst = max(pair["max_abs_diff"] for pair in record["pairs"])
            _log(f"verified {net}: {len(record['pairs'])} comparisons, worst {worst:.2e}"
                 + "".join(f"; {k} pending" for k in record["pending"]))
            if not record["ok"]:
                bad = [p for p in record["pairs"] if not p["ok"]]
                raise SystemExit(f"engines disagree on {net}: {bad}; nothing was timed")
        variants = _variants()[:1] if args.no_unset else _variants()
        for name, description, env in variants:
            _log(f"measuring with OpenBLAS environment '{name}' ({description})")
            load_before = os.getloadavg()[0]
            numba_cache = tempfile.mkdtemp(prefix="numba-cache-", dir=scratch)
            timing = run_timing(scratch, nets, env, settings, numba_cache)
            merge_paired_latency(timing, run_paired_latency(scratch, nets, env, settings,
                                                            numba_cache))
            cold = run_coldstarts(scratch, nets, env, settings, scratch, numba_cache)
            results["variants"].append({"name": name, "description": description,
                                        "timing": timing, "cold": cold,
                                        "loadavg": [load_before, os.getloadavg()[0]]})
        if args.no_training or "cnn" not in nets:
            results["training"] = {"skipped": "skipped (--no-training or no CNN)"}
        else:
            results["training"] = run_training(scratch, settings)
    finally:
        if not args.workdir:
            shutil.rmtree(scratch, ignore_errors=True)
    results["duration_s"] = time.monotonic() - started
    # the files' temporary folder means nothing to a reader of the report
    results = json.loads(json.dumps(results).replace(scratch.rstrip("/"), "$WORKDIR"))
    text = render(results)
    if args.output:
        text += preserved_block(args.output)
        with open(args.output, "w") as f:
            f.write(text)
        _log(f"wrote {args.output} ({results['duration_s']:.0f} s)")
    else:
        print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
