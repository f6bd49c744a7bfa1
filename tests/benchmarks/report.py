"""Render the benchmark results as Markdown (``docs/benchmarks.md``)."""
from .worker import FOREIGN_LIMIT

__all__ = ["render", "TARGETS"]

ENGINE_LABELS = {
    "runtime-numpy": "Forge runtime, `FORGE_KERNELS=numpy`",
    "runtime-numba": "Forge runtime, `FORGE_KERNELS=numba`",
    "runtime-auto": "Forge runtime, `FORGE_KERNELS=auto` (default)",
    "onnxruntime": "ONNX Runtime (2 intra-op threads)",
    "torch": "PyTorch eager (2 threads)",
}
RUNTIMES = ("runtime-numpy", "runtime-numba", "runtime-auto")
COLD_RUNTIMES = ("runtime-numpy", "runtime-numba, warm cache", "runtime-numba, empty cache",
                 "runtime-auto, warm cache", "runtime-auto, empty cache")
COLD_LABELS = COLD_RUNTIMES + ("onnxruntime", "torch")
REFERENCE = "onnxruntime"

#: The issue's targets: (text, net, metric, bound, direction).
TARGETS = (
    ("CNN batch-64 throughput >= 0.5x ONNX Runtime", "cnn", "throughput_64", 0.5, "min"),
    ("MLP batch-1 latency (median) <= 1.2x ONNX Runtime", "mlp", "latency", 1.2, "max"),
    ("MLP cold start <= ONNX Runtime's", "mlp", "cold", 1.0, "max"),
    ("CNN cold start <= ONNX Runtime's", "cnn", "cold", 1.0, "max"),
)


def _num(value, digits=3):
    """Three significant figures, thousands separated.

    >>> _num(0.012345), _num(1234.5), _num(12.345)
    ('0.0123', '1,234', '12.3')
    """
    if value is None:
        return "–"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _ratio(value, reference, paired=None):
    """``value / reference``, or the paired estimate of that ratio when there is one."""
    if paired is not None:
        return f"{paired:.2f}×"
    if value is None or not reference:
        return "–"
    return f"{value / reference:.2f}×"


def _paired_ratio(entry, metric):
    """A target metric's paired ratio to ONNX Runtime (batch-1 latency measured with the
    engines interleaved: the median of each cycle's ratio), or None."""
    if metric != "latency":
        return None
    return entry.get("latency_ms", {}).get("median_ratio")


class _Notes:
    """Numbered reasons for the n/a cells, so that each long reason is written once."""

    def __init__(self):
        self.reasons = []

    def na(self, entry):
        text = entry.get("unavailable") or entry.get("error") or "not measured"
        text = text.split("; this runtime knows")[0].replace("|", "/").replace("\n", " ")
        if text not in self.reasons:
            self.reasons.append(text)
        return f"n/a [{self.reasons.index(text) + 1}]"

    def render(self):
        if not self.reasons:
            return "Every figure was measured."
        return "\n".join(f"{i}. {text}" for i, text in enumerate(self.reasons, 1))


def _load(foreign):
    """Cores kept busy by other processes during a measurement; flagged over the limit."""
    if foreign is None:
        return "–"
    return f"**{foreign:.2f} ⚠**" if foreign > FOREIGN_LIMIT else f"{foreign:.2f}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _model(variant, engine, net):
    return variant["timing"].get(engine, {}).get("models", {}).get(net, {})


def _disturbed(variant, engine, net, metric):
    """Whether other processes disturbed the measurement behind a target metric."""
    if metric == "latency":
        foreign = _model(variant, engine, net).get("latency_ms", {}).get("foreign_cores")
    elif metric == "throughput_64":
        foreign = (_model(variant, engine, net).get("throughput", {}).get("64", {})
                   .get("foreign_cores"))
    else:
        foreign = variant["cold"].get(net, {}).get(engine, {}).get("foreign_cores_max")
    return foreign is not None and foreign > FOREIGN_LIMIT


def _metric(variant, engine, net, metric):
    """The value of a target metric, or None."""
    if metric == "latency":
        return _model(variant, engine, net).get("latency_ms", {}).get("median")
    if metric == "throughput_64":
        return _model(variant, engine, net).get("throughput", {}).get("64", {}).get(
            "samples_per_s")
    if metric == "cold":
        return variant["cold"].get(net, {}).get(engine, {}).get("total_ms")
    raise ValueError(metric)


# -- sections ---------------------------------------------------------------------------------

def _targets(results, notes):
    rows = []
    for text, net, metric, bound, direction in TARGETS:
        if net not in results["nets"]:
            continue
        engines = RUNTIMES if metric != "cold" else COLD_RUNTIMES
        for engine in engines:
            row = [text, f"`{engine}`"]
            for variant in results["variants"]:
                if metric == "cold":
                    entry = variant["cold"].get(net, {}).get(engine, {})
                    value = entry.get("total_ms")
                    reference = _metric(variant, REFERENCE, net, metric)
                else:
                    entry = _model(variant, engine, net)
                    value = _metric(variant, engine, net, metric)
                    reference = _metric(variant, REFERENCE, net, metric)
                if value is None or not reference:
                    row.append(notes.na(entry if value is None else
                                        _model(variant, REFERENCE, net)))
                    continue
                ratio = _paired_ratio(entry, metric) or value / reference
                met = ratio >= bound if direction == "min" else ratio <= bound
                flag = (" ⚠" if _disturbed(variant, engine, net, metric)
                        or _disturbed(variant, REFERENCE, net, metric) else "")
                row.append(f"{ratio:.2f}× — **{'met' if met else 'not met'}**{flag}")
            rows.append(row)
    header = ["target", "engine"] + [f"OpenBLAS env: {v['name']}" for v in results["variants"]]
    return _table(header, rows)


def _machine(results):
    m = results["machine"]
    blas = m.get("numpy_blas") or {}
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        f"- CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs, {m['usable_cpus']} usable"
        + (f"; flags: {', '.join(m['cpu_flags'])}" if m["cpu_flags"] else "") + ")",
        f"- Memory: {m['memory_gib']:.0f} GiB; {m['os']}; Python {m['python']}"
        if m.get("memory_gib") else f"- {m['os']}; Python {m['python']}",
        f"- numpy's BLAS: {blas.get('name')} {blas.get('version')} "
        f"(build: `{blas.get('openblas configuration')}`)" if blas else "- numpy's BLAS: unknown",
        f"- Versions: {versions}",
        f"- Threads: every engine gets {results['threads']} (ONNX Runtime "
        "`intra_op_num_threads=2`, `inter_op_num_threads=1`; `torch.set_num_threads(2)`; "
        "OpenBLAS and numba default to the 2 cores)",
    ]
    for variant in results["variants"]:
        kernels = set()
        for engine in RUNTIMES:
            for lib in variant["timing"].get(engine, {}).get("blas") or []:
                if lib.get("internal_api") == "openblas":
                    owner = f" (from {lib['package']})" if lib.get("package") else ""
                    kernels.add(f"{lib.get('prefix')} {lib.get('version')}{owner}: "
                                f"**{lib.get('architecture')}** kernels, "
                                f"{lib.get('num_threads')} threads")
        lines.append(f"- OpenBLAS env '{variant['name']}' ({variant['description']}): "
                     "threadpoolctl, in the runtime's timing processes, reports "
                     f"{'; '.join(sorted(kernels)) or 'nothing'}")
        if "loadavg" in variant:
            before, after = variant["loadavg"]
            lines.append(f"  (1-minute load average {before:.2f} before these measurements, "
                         f"{after:.2f} after: the benchmark's own processes count in it)")
    return "\n".join(lines)


def _verification(results):
    rows = []
    for net, info in results["nets"].items():
        record = info["verification"]
        for pair in record["pairs"]:
            rows.append([net, " vs ".join(pair["engines"]), f"`{pair['layer']}`",
                         f"{pair['max_abs_diff']:.2e}", "ok" if pair["ok"] else "**FAIL**"])
        for engine, why in record["pending"].items():
            rows.append([net, f"{engine} (not compared)", "–", "–", f"pending: {why[:120]}"])
    return _table(["model", "engines", "layer", "max abs diff", f"≤ {1e-4:g}"], rows)


def _latency(variant, nets, notes):
    rows = []
    for net in nets:
        reference = _metric(variant, REFERENCE, net, "latency")
        for engine in ENGINE_LABELS:
            entry = _model(variant, engine, net)
            if "latency_ms" not in entry:
                rows.append([net, ENGINE_LABELS[engine], notes.na(entry), "", "", "", "",
                             "", ""])
                continue
            lat = entry["latency_ms"]
            rows.append([net, ENGINE_LABELS[engine], _num(lat["median"]), _num(lat["p90"]),
                         _ratio(lat["median"], reference, lat.get("median_ratio")),
                         _ratio(lat["p90"], _model(variant, REFERENCE, net)
                                .get("latency_ms", {}).get("p90"), lat.get("p90_ratio")),
                         lat["n"],
                         _load(lat.get("foreign_cores")), _spread(lat)])
    return _table(["model", "engine", "median ms", "p90 ms", "median × ORT", "p90 × ORT",
                   "runs", "other load", "bursts' medians, ms"], rows)


def _spread(lat):
    """The range of a paired latency's burst medians (or how it was measured instead)."""
    if lat.get("method") != "paired":
        return f"one process ({lat.get('paired_failed', 'not paired')})"[:80]
    bursts = lat["bursts"]
    return f"{_num(min(bursts))}–{_num(max(bursts))} ({len(bursts)} bursts)"


def _throughput(variant, nets, batches, notes):
    rows = []
    for net in nets:
        for engine in ENGINE_LABELS:
            entry = _model(variant, engine, net)
            if "throughput" not in entry:
                rows.append([net, ENGINE_LABELS[engine], notes.na(entry)]
                            + [""] * (2 * len(batches)))
                continue
            row = [net, ENGINE_LABELS[engine]]
            for batch in batches:
                value = entry["throughput"][str(batch)]["samples_per_s"]
                reference = (_model(variant, REFERENCE, net).get("throughput", {})
                             .get(str(batch), {}).get("samples_per_s"))
                row += [_num(value), _ratio(value, reference)]
            loads = [entry["throughput"][str(b)].get("foreign_cores") for b in batches]
            row.append(_load(max(loads, key=lambda v: v or 0.0)))
            rows.append(row)
    header = ["model", "engine"]
    for batch in batches:
        header += [f"batch {batch} samples/s", "× ORT"]
    return _table(header + ["other load"], rows)


def _cold(variant, nets, notes):
    rows = []
    for net in nets:
        entries = variant["cold"].get(net, {})
        reference = entries.get(REFERENCE, {})
        for label in COLD_LABELS:
            entry = entries.get(label, {})
            if "total_ms" not in entry:
                rows.append([net, label, notes.na(entry)] + [""] * 8)
                continue
            phases = entry["phases_ms"]
            rows.append([net, label, _num(entry["total_ms"]),
                         _ratio(entry["total_ms"], reference.get("total_ms")),
                         _num(phases["interpreter"]), _num(phases["imports"]),
                         _num(phases["load"]), _num(phases["first_prediction"]),
                         _num(entry["peak_rss_mib"]),
                         _ratio(entry["peak_rss_mib"], reference.get("peak_rss_mib")),
                         _load(entry.get("foreign_cores_max"))])
    return _table(["model", "engine", "total ms", "× ORT", "interpreter", "imports", "load",
                   "1st prediction", "peak RSS MiB", "RSS × ORT", "other load (max)"], rows)


def _openblas_effect(results, nets, batches):
    """The runtime's figures with ``OPENBLAS_*`` unset, relative to as set."""
    if len(results["variants"]) < 2:
        return None
    as_set, unset = results["variants"][:2]
    rows = []
    for engine in RUNTIMES:
        for net in nets:
            before, after = _model(as_set, engine, net), _model(unset, engine, net)
            if "latency_ms" not in before or "latency_ms" not in after:
                continue
            row = [net, ENGINE_LABELS[engine],
                   _ratio(after["latency_ms"]["median"], before["latency_ms"]["median"])]
            for batch in batches:
                row.append(_ratio(after["throughput"][str(batch)]["samples_per_s"],
                                  before["throughput"][str(batch)]["samples_per_s"]))
            rows.append(row)
    if not rows:
        return None
    return _table(["model", "engine", "batch-1 latency"]
                  + [f"batch {b} throughput" for b in batches], rows)


def _training(results, notes):
    training = results.get("training", {})
    if "modes" not in training:
        reason = training.get("pending") or training.get("skipped") or "not run"
        return ("**TODO (pending).** " if "pending" in training else "Not measured: ") + (
            f"{reason}\n\nWhen `forge.layers.Conv2DLayer` exists, this section times one "
            "training step of the README CNN (forward, backward, "
            "`nesterov_momentum(learning_rate=0.01, momentum=0.9)`, batch 64) per PyTensor "
            "mode (NUMBA, CVM, JAX) against PyTorch eager, from the same weights, in the "
            "same run (`python -m tests.benchmarks.training`).")
    modes = training["modes"]
    reference = modes.get("torch", {}).get("step_ms", {}).get("median")
    rows = []
    for mode, entry in modes.items():
        label = "PyTorch eager (2 threads)" if mode == "torch" else f"forge, mode={mode}"
        if "step_ms" not in entry:
            rows.append([label, notes.na(entry), "", "", "", "", ""])
            continue
        step = entry["step_ms"]
        rows.append([label, _num(step["median"]), _num(step["p90"]),
                     _ratio(step["median"], reference), _num(entry["compile_s"]),
                     f"{entry['first_loss']:.6f}", _load(step.get("foreign_cores"))])
    return ("One training step of the README CNN, batch 64: forward, backward and the "
            "Nesterov-momentum update (learning rate 0.01, momentum 0.9), from the same "
            "weights and the same batch, so the first loss must agree across rows. Each "
            "trainer runs in its own process with the OpenBLAS environment as set. The "
            "compile column is building the function plus its first call; PyTensor and "
            "numba keep compiled code in on-disk caches between runs, so on a fresh "
            "machine it is much longer.\n\n"
            + _table(["trainer", "median ms/step", "p90 ms", "× PyTorch",
                      "compile + 1st step s", "first loss", "other load"], rows))


def _cold_text(results):
    reps = results["settings"]["cold_reps"]
    prime = (", after one unrecorded round that warms the OS file cache"
             if results["settings"]["cold_prime"] else "")
    return (
        "A new process (`python -m tests.benchmarks.worker coldstart`): interpreter start, "
        "the engine's imports (numpy included), loading the model, one batch-1 "
        f"prediction. Median of {reps} run{'s' if reps > 1 else ''} per case{prime}. "
        "Forge's `runtime/` is byte-compiled first (`compileall`), as `pip install` "
        "compiles an installed package and compiled numpy and ONNX Runtime here; from a "
        "source checkout under `PYTHONDONTWRITEBYTECODE=1` (this machine's setting) every "
        "new process would compile runtime's sources again, about 20 ms more. "
        "The warm numba cache is the `NUMBA_CACHE_DIR` the timing processes filled; each "
        "empty-cache run gets a fresh one. Peak RSS is the process's "
        "`VmHWM` (/proc/self/status): `resource.getrusage().ru_maxrss` is not usable "
        "here, since Linux carries it across fork and exec, so every child reported the "
        "benchmark parent's peak.")


def _timing_method(settings):
    paired = settings.get("paired")
    count = settings.get("timing_rounds", 1)
    lines = []
    if paired:
        lines.append(
            f"- Batch-1 latency is measured with the engines interleaved: one server "
            f"process per engine, all loaded and warm, asked in turn for bursts of "
            f"{paired['burst_s']} s of calls, {paired['cycles']} times (each cycle starting "
            f"one engine later, {paired['gap_s']} s of pause before each burst so that the "
            "previous engine's threads have stopped spinning). An engine's median is the "
            "median of its bursts' medians, its p90 the median of their p90s. Separate "
            "processes minutes apart had each met their own neighbours: single-process "
            "ratios of the MLP moved between 0.9× and 1.5× from run to run, ONNX "
            "Runtime itself between 87 and 128 µs. Its ratios to ONNX Runtime (the "
            "*× ORT* columns and the targets) are paired: the median over the cycles of "
            "the engine's burst divided by ONNX Runtime's burst of the same cycle. A "
            "disturbed burst is not repeated; *other load* is the bursts' median.")
    if count > 1:
        lines.append(
            f"- Throughput: each engine was timed in {count} subprocesses, one per round; a "
            "round times every engine once, each round starting one engine later, and each "
            "figure is the median round's (every round's figure is in the JSON, `--json`).")
    return "\n".join(lines) or "- Each engine was timed in one subprocess."


def render(results):
    """The Markdown report for a results dict from :func:`tests.benchmarks.run.main`."""
    nets = list(results["nets"])
    batches = results["settings"]["timing"]["batches"]
    timing = results["settings"]["timing"]
    notes = _Notes()
    parts = [
        "# Benchmarks",
        "",
        "Forge's numpy runtime against ONNX Runtime and PyTorch on CPU: same weights, same "
        f"inputs, one run. Generated on {results['date']} in "
        f"{results['duration_s'] / 60:.1f} minutes by",
        "",
        "```sh",
        results["command"],
        "```",
        "",
    ]
    if results["quick"]:
        parts += ["**This was a `--quick` smoke run: short budgets, rough figures.**", ""]
    parts += [
        "`make bench` installs `.[dev,bench]` into `.venv` and runs it with `--output "
        "docs/benchmarks.md`. Ratios are *engine ÷ ONNX Runtime* of the same figure: "
        "below 1× is better for latency, cold start and memory, above 1× is better for "
        "throughput. n/a cells point to the numbered reasons at the end.",
        "",
        "## Targets",
        "",
        _targets(results, notes),
        "",
        "Cold start counts from spawning the process to the first prediction's result. "
        "⚠: other processes kept the CPUs busy during a measurement behind the ratio "
        "(see *other load* below), so it is not trustworthy.",
        "",
        "## Machine",
        "",
        _machine(results),
        "",
        "## Models and verification",
        "",
    ]
    for net, info in results["nets"].items():
        parity = info.get("export_parity")
        parts.append(f"- `{net}`: {info['description']}; {info['params']:,} parameters, "
                     f"bundle {info['bundle_bytes'] / 2**20:.2f} MiB written by "
                     f"{info.get('written_by')}"
                     + (f" (its parity check against forge: max abs error "
                        f"{parity['max_abs_error']:.2e})" if parity else ""))
    parts += [
        "",
        f"Weights: Glorot-uniform W and small random b from seed {results['seed']} "
        "(`tests/benchmarks/networks.py`), written as a Forge bundle "
        + ("with forge's layers and `forge.export`" if results["from_forge"] else
           "from a hand-built manifest through `runtime.bundle.write_bundle`")
        + ", as an ONNX graph built with `onnx.helper` (Conv gets the filters flipped, "
        "since Lasagne's `flip_filters=True` convolves and ONNX cross-correlates; "
        "LeakyRelu, MaxPool, Flatten, Gemm, Relu, Softmax; opset 17) and as a PyTorch "
        "state dict. Before anything is timed the engines run the same 16 inputs and are "
        "compared on the output and the last hidden layer; every timing process then "
        "checks its own output against ONNX Runtime's again.",
        "",
        _verification(results),
        "",
    ]
    for variant in results["variants"]:
        title = f"OpenBLAS env '{variant['name']}' ({variant['description']})"
        parts += [
            f"## Latency and throughput — {title}",
            "",
            "Batch-1 latency, cycling through 64 different inputs:",
            "",
            _latency(variant, nets, notes),
            "",
            "Throughput, from the median time of one batch:",
            "",
            _throughput(variant, nets, batches, notes),
            "",
            f"## Cold start — {title}",
            "",
            _cold_text(results),
            "",
            _cold(variant, nets, notes),
            "",
        ]
    effect = _openblas_effect(results, nets, batches)
    if effect:
        parts += [
            "## OpenBLAS kernels: unset ÷ as set",
            "",
            "The runtime's figures in the 'unset' environment (OpenBLAS picks its kernels "
            "for this CPU) divided by those with `OPENBLAS_*` as set (Haswell kernels). "
            "Latency: below 1× is faster; throughput: above 1× is faster.",
            "",
            effect,
            "",
        ]
    parts += [
        "## Training step",
        "",
        _training(results, notes),
        "",
        "## Why some figures are n/a",
        "",
        notes.render(),
        "",
        "## Method",
        "",
        "- Every engine is measured in a subprocess of its own (`python -m "
        "tests.benchmarks.worker`), so that the runtime's kernels are chosen by "
        "`FORGE_KERNELS` at import and the OpenBLAS environment can differ per process; "
        "the benchmark's own environment is never changed. After its first prediction "
        "each process checks which kernels ran (whether numba was imported): a "
        "`FORGE_KERNELS=numba` process that did not run numba on the CNN is reported n/a, "
        "not timed. `FORGE_KERNELS=auto`, the default, decides call by call: numpy for "
        "a convolution below `runtime.kernels.AUTO_MIN_WORK` multiply-adds or a pooling "
        "below `AUTO_MIN_POOL_WORK` comparisons (the CNN at batch 1), numba (imported on "
        "the first such call) above (the CNN at batch 64). A dense product never imports "
        "numba: under `auto` the MLP multiplies on numpy's OpenBLAS at every batch size, "
        "and the CNN's dense layers run numba's direct product at batch 64, where its "
        "convolutions already run numba (OpenBLAS's spinning threads would take the "
        "cores from theirs). So the MLP runs the same numpy kernels under every "
        "setting, and numba is never imported for it.",
        f"- `time.perf_counter` around each call, garbage collector off during a loop. "
        f"Latency: {timing['warmup_s']} s of warm-up, then {timing['latency_s']} s and at "
        f"least {timing['latency_min']} calls. Throughput: per batch size "
        f"{timing['warmup_s']} s of warm-up, then {timing['throughput_s']} s and at least "
        f"{timing['throughput_min']} batches.",
        _timing_method(results['settings']),
        "- *Other load* is the average number of cores that processes other than the "
        "measured one kept busy during the measurement (from /proc/stat, less the measured "
        "process's own CPU time). This machine is shared: one busy neighbour on 2 cores "
        "makes multi-threaded BLAS, OpenMP and ONNX Runtime wait a scheduler time slice at "
        "every barrier, which gave 10-100× slower figures in trial runs. A measurement "
        f"with more than {FOREIGN_LIMIT} cores of other load is repeated (up to "
        f"{results['settings']['timing']['attempts']} tries, the least disturbed kept; "
        "each timing process first waits up to "
        f"{results['settings']['quiet_wait_s']:.0f} s, and the whole run up to "
        f"{results['settings'].get('quiet_total_s', 0):.0f} s, for a quiet second); "
        "figures still disturbed are flagged ⚠.",
        "- Every engine takes and returns numpy arrays, and the conversions are timed "
        "(`torch.from_numpy`, `.numpy()`, ONNX Runtime's feeds).",
        "- Of the four engines only the runtime computes with numpy's OpenBLAS, the one "
        "library that reads `OPENBLAS_*`: ONNX Runtime uses MLAS and PyTorch MKL/oneDNN. "
        "They are measured again in the 'unset' environment so that each table's ratios "
        "come from one environment. `OPENBLAS_CORETYPE=Haswell` is set on these machines "
        "because older OpenBLAS builds misbehave on this CPU; it is dropped here only in "
        "the measuring subprocesses, never in tests or CI.",
        "",
    ]
    return "\n".join(parts)
