"""HTTP load test of the prediction service: ``python -m tests.benchmarks.load``.

Starts ``forge serve`` in a subprocess on loopback (settings through ``FORGE_*``
environment variables) once with dynamic batching off and once with it on, and drives
it with an asyncio client (one ``aiohttp.ClientSession``): at each concurrency N, N
coroutines each send a request and send the next as soon as the answer arrives (a
closed loop), for a fixed time. Every request is one row (batch 1) in Open Inference
Protocol JSON (``POST /v2/models/{name}/infer``), and every answer is compared with
the same row run in-process, so a batch split back in the wrong order counts as a
failure. The report gives req/s and p50/p99 latency per model, batching mode and
concurrency, next to in-process :meth:`runtime.Model.run` throughput of the same
bundles measured in the same run.

The models are the benchmark networks of :mod:`tests.benchmarks.networks` (the MLP
784-800-800-10 and Lasagne's README CNN, seeded weights) and the shipped digits example.

Examples
--------
::

    python -m tests.benchmarks.load --output docs/benchmarks.md     # about 3 minutes
    python -m tests.benchmarks.load --models digits --concurrency 1 8 --duration 1

``--output`` replaces the block between :data:`BEGIN` and :data:`END` in that file
(or appends it); the rest of the file is left as it is.
"""
import argparse
import asyncio
import dataclasses
import datetime
import json
import os
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..serving import forge_serve

__all__ = [
    "BEGIN", "END", "CONCURRENCY", "MODES", "Cell", "serve", "measure_service",
    "measure_inprocess", "render", "write_block", "main",
]

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- service-load:begin -->"
END = "<!-- service-load:end -->"

#: Concurrent clients per measurement.
CONCURRENCY = (1, 8, 64)

#: The server's settings (environment) per batching mode.
MODES = {
    "off": {"FORGE_BATCHING": "false"},
    "on": {"FORGE_BATCHING": "true", "FORGE_BATCH_MAX_SIZE": "64",
           "FORGE_BATCH_MAX_DELAY_MS": "2"},
}

#: Largest difference from the in-process result that counts as the right answer
#: (a row computed inside a merged batch may differ from batch 1 in the last bits).
TOLERANCE = 1e-4

#: How many distinct rows each model's requests cycle through.
DISTINCT_ROWS = 16

#: A throughput ratio closer to 1 than this is reported as no clear change.
GAIN_NOISE = 0.05


@dataclasses.dataclass
class Cell:
    """One measurement: a model at one concurrency with batching off or on."""

    model: str
    batching: str
    concurrency: int
    requests: int
    failures: dict
    elapsed_s: float
    latencies_s: list = dataclasses.field(repr=False)
    mean_batch: float = None  # requests per model call, from the server's /metrics

    @property
    def failed(self):
        return sum(self.failures.values())

    @property
    def rps(self):
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, q):
        return float(np.percentile(self.latencies_s, q) * 1e3) if self.latencies_s else float("nan")


# -- the server --------------------------------------------------------------------------

def serve(repository, env=None, startup_timeout_s=90.0):
    """A context manager running ``forge serve`` on ``repository`` on a free loopback port.

    ``env`` adds environment variables (``FORGE_*`` settings and others); the caller's own
    ``FORGE_*`` variables are dropped. The server logs at ``warning`` (no access log).
    It yields a :class:`tests.serving.Server` once ``GET /v2/health/ready`` answers 200.
    """
    return forge_serve(env={"FORGE_MODEL_REPOSITORY": str(repository),
                            "FORGE_LOG_LEVEL": "warning", **(env or {})},
                       startup_timeout_s=startup_timeout_s)


# -- requests ----------------------------------------------------------------------------

@dataclasses.dataclass
class Workload:
    """Pre-encoded request bodies of one model and the answers expected for them."""

    model: str
    output: str
    bodies: list
    expected: list

    @classmethod
    def for_bundle(cls, name, bundle, rows=DISTINCT_ROWS, seed=0):
        import runtime

        model = runtime.load(bundle)
        if len(model.inputs) != 1:
            raise ValueError(f"model {name!r} has {len(model.inputs)} inputs; the load test "
                             f"sends one-input requests")
        spec, output = model.inputs[0], model.outputs[0].name
        rng = np.random.default_rng(seed)
        # k / 256: exact in float32 and short in JSON.
        batch = (rng.integers(0, 256, (rows, 1) + spec.shape[1:]) / 256).astype(spec.dtype)
        bodies, expected = [], []
        for row in batch:
            bodies.append(json.dumps({"inputs": [{
                "name": spec.name, "shape": list(row.shape), "datatype": "FP32",
                "data": row.ravel().tolist()}]}).encode())
            expected.append(model.run({spec.name: row}, outputs=[output])[output].ravel())
        return cls(name, output, bodies, expected)

    def check(self, index, content):
        """None if ``content`` (an infer response body) is the expected answer, else why not."""
        try:
            outputs = {o["name"]: o for o in json.loads(content)["outputs"]}
            got = np.asarray(outputs[self.output]["data"], dtype=np.float64).ravel()
        except (ValueError, KeyError, TypeError) as exc:
            return f"unreadable answer ({type(exc).__name__})"
        want = self.expected[index]
        if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=TOLERANCE):
            return "wrong answer"
        return None


async def _drive(client, workload, concurrency, duration_s):
    """Closed-loop load for ``duration_s``: (ok latencies, failures by reason, seconds)."""
    import aiohttp

    path = f"/v2/models/{workload.model}/infer"
    headers = {"content-type": "application/json"}
    latencies, failures = [], {}
    deadline = time.perf_counter() + duration_s

    async def client_loop(start):
        n = start
        while time.perf_counter() < deadline:
            index = n % len(workload.bodies)
            n += concurrency
            began = time.perf_counter()
            try:
                async with client.post(path, data=workload.bodies[index],
                                       headers=headers) as response:
                    status, content = response.status, await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = type(exc).__name__
            else:
                reason = (f"HTTP {status}" if status != 200
                          else workload.check(index, content))
            if reason is None:
                latencies.append(time.perf_counter() - began)
            else:
                failures[reason] = failures.get(reason, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(client_loop(i) for i in range(concurrency)))
    return latencies, failures, time.perf_counter() - began


_BATCH_SIZE = re.compile(r'^forge_batch_size_(sum|count)\{([^}]*)\}\s+(\S+)', re.M)


async def _batch_totals(client, model):
    """(sum, count) of the server's ``forge_batch_size`` histogram for ``model``, or None."""
    try:
        async with client.get("/metrics") as response:
            status, text = response.status, await response.text()
    except Exception:
        return None
    if status != 200:
        return None
    totals = {"sum": 0.0, "count": 0.0}
    for kind, labels, value in _BATCH_SIZE.findall(text):
        if f'model="{model}"' in labels:
            totals[kind] += float(value)
    return totals["sum"], totals["count"]


async def _measure(url, workloads, batching, concurrencies, duration_s, warmup_s, timeout_s):
    import aiohttp

    cells = []
    # aiohttp rather than httpx: on these two shared cores httpx's client was the
    # bottleneck (at concurrency 64 it drove the same server at a third of the rate)
    connector = aiohttp.TCPConnector(limit=max(concurrencies))
    async with aiohttp.ClientSession(base_url=url, connector=connector, trust_env=False,
                                     timeout=aiohttp.ClientTimeout(total=timeout_s)) as client:
        for workload in workloads:
            for concurrency in concurrencies:
                if warmup_s > 0:
                    await _drive(client, workload, concurrency, warmup_s)
                before = await _batch_totals(client, workload.model)
                latencies, failures, elapsed = await asyncio.wait_for(
                    _drive(client, workload, concurrency, duration_s),
                    duration_s + timeout_s + 5)
                after = await _batch_totals(client, workload.model)
                calls = after[1] - before[1] if before and after else 0
                mean_batch = (after[0] - before[0]) / calls if calls > 0 else None
                cells.append(Cell(workload.model, batching, concurrency, len(latencies),
                                  failures, elapsed, latencies, mean_batch))
    return cells


def measure_service(bundles, modes=MODES, concurrencies=CONCURRENCY, duration_s=5.0,
                    warmup_s=1.0, timeout_s=30.0, progress=None, server_env=None):
    """Serve ``bundles`` (name -> .npz path) under each of ``modes`` and measure every cell.

    Returns a list of :class:`Cell`. ``progress`` (a callable) gets each finished cell;
    ``server_env`` adds environment variables to every server (``OPENBLAS_NUM_THREADS``...).
    """
    workloads = [Workload.for_bundle(name, path) for name, path in bundles.items()]
    cells = []
    with tempfile.TemporaryDirectory(prefix="forge-load-") as repository:
        for name, path in bundles.items():
            os.symlink(os.path.abspath(path), os.path.join(repository, f"{name}.npz"))
        for batching, env in modes.items():
            with serve(repository, {**(server_env or {}), **env}) as server:
                found = asyncio.run(_measure(server.url, workloads, batching, concurrencies,
                                             duration_s, warmup_s, timeout_s))
            for cell in found:
                if progress:
                    progress(cell)
            cells.extend(found)
    return cells


def measure_inprocess(bundle, batches=(1, 64), seconds=1.0):
    """Samples/s of :meth:`runtime.Model.run` on ``bundle`` per batch size, in this process."""
    import runtime

    model = runtime.load(bundle)
    spec = model.inputs[0]
    result = {}
    for batch in batches:
        x = np.random.default_rng(0).random((batch,) + spec.shape[1:]).astype(spec.dtype)
        feeds = {spec.name: x}
        model.run(feeds)
        calls, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds or calls < 3:
            model.run(feeds)
            calls += 1
        result[batch] = calls * batch / elapsed
    return result


# -- the report --------------------------------------------------------------------------

def _rate(value):
    return f"{value:,.0f}"


def render(cells, inprocess, command, descriptions, duration_s, warmup_s, notes=()):
    """The markdown block, markers included; ``notes`` are extra lines under the intro."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    settings = " ".join(f"{k}={v}" for k, v in MODES["on"].items())
    lines = [
        BEGIN,
        "## Prediction service under HTTP load",
        "",
        f"Generated on {now} by",
        "",
        "```sh",
        command,
        "```",
        "",
        f"`forge serve` (one uvicorn worker, settings from the environment) and the load "
        f"generator (`tests/benchmarks/load.py`: one `aiohttp.ClientSession`, N coroutines in a "
        f"closed loop, each sending its next request when its answer arrives) share this "
        f"machine's {os.cpu_count()} CPUs over loopback. Every request is one row (batch 1) "
        f"as Open Inference Protocol JSON (`POST /v2/models/<name>/infer`), and every answer "
        f"is checked against the same row run in-process (max abs diff <= {TOLERANCE:g}); "
        f"a wrong answer counts as failed. {duration_s:g} s per cell after a "
        f"{warmup_s:g} s warm-up; the server logs at `warning` (no access log). Batching off: `FORGE_BATCHING=false`; on: `{settings}`.",
        "",
    ]
    lines += [f"- `{name}`: {text}" for name, text in descriptions.items()]
    lines += [f"- {note}" for note in notes]
    lines += ["", "| model | batching | concurrency | req/s | p50 ms | p99 ms | requests per "
              "model call | failed |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in cells:
        failed = str(c.failed) + (" (" + ", ".join(f"{k}: {v}" for k, v in c.failures.items())
                                  + ")" if c.failures else "")
        batch = "n/a" if c.mean_batch is None else f"{c.mean_batch:.1f}"
        lines.append(f"| {c.model} | {c.batching} | {c.concurrency} | {_rate(c.rps)} | "
                     f"{c.percentile_ms(50):.2f} | {c.percentile_ms(99):.2f} | {batch} | "
                     f"{failed} |")
    by_key = {(c.model, c.batching, c.concurrency): c for c in cells}
    top = max(c.concurrency for c in cells)
    gains = []
    for model in dict.fromkeys(c.model for c in cells):
        off, on = by_key.get((model, "off", top)), by_key.get((model, "on", top))
        if off and on and off.rps > 0:
            ratio = on.rps / off.rps
            verdict = ("raises throughput" if ratio >= 1 + GAIN_NOISE else
                       "**lowers** throughput" if ratio <= 1 - GAIN_NOISE else
                       f"does **not** clearly change throughput (within ±{GAIN_NOISE:.0%})")
            gains.append(f"- `{model}`: {ratio:.2f}× ({_rate(off.rps)} -> {_rate(on.rps)} "
                         f"req/s): batching {verdict}")
    if gains:
        lines += ["", f"Batching gain at concurrency {top} (req/s with batching on ÷ off):", ""]
        lines += gains
    if inprocess:
        batches = sorted({b for rates in inprocess.values() for b in rates})
        lines += ["", "In-process `Model.run` on the same bundles, measured in the same run "
                  "(load generator's process, before any server started): samples/s.", "",
                  "| model | " + " | ".join(f"batch {b}" for b in batches) + " |",
                  "|---|" + "---:|" * len(batches)]
        for model, rates in inprocess.items():
            lines.append(f"| {model} | " + " | ".join(_rate(rates[b]) for b in batches) + " |")
    lines += ["", "*requests per model call*: the mean of the server's `forge_batch_size` "
              "histogram over the cell (from `/metrics`)."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_block(path, block):
    """Put ``block`` between the markers in ``path``: replace the old block, else append."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    start, end = text.find(BEGIN), text.find(END)
    if start != -1 and end > start:
        text = text[:start] + block.rstrip("\n") + text[end + len(END):]
        if not text.endswith("\n"):
            text += "\n"
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    path.write_text(text)


# -- command line ------------------------------------------------------------------------

def _models(folder):
    """The models this benchmark knows: name -> (description, function giving the bundle)."""
    from . import networks

    def benchmark(net):
        def write():
            path = os.path.join(folder, f"{net}.npz")
            return networks.write_runtime_bundle(net, networks.make_weights(net, seed=0), path)
        return networks.DESCRIPTIONS[net], write

    return {
        "mlp": benchmark("mlp"),
        "cnn": benchmark("cnn"),
        "digits": ("the shipped example `service/models/digits.npz` (8x8 digits MLP, 64 -> 10)",
                   lambda: str(ROOT / "service" / "models" / "digits.npz")),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.load",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"],
                        choices=["mlp", "cnn", "digits"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=list(CONCURRENCY))
    parser.add_argument("--batching", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each cell")
    parser.add_argument("--inprocess-seconds", type=float, default=2.0)
    parser.add_argument("--server-env", nargs="+", default=[], metavar="NAME=VALUE",
                        help="extra environment variables for the server")
    parser.add_argument("--output", help="markdown file to put the block in")
    args = parser.parse_args(argv)

    threads = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
               if k in os.environ]
    command = shlex.join([*threads, "python", "-m", "tests.benchmarks.load",
                          *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="forge-load-models-") as folder:
        known = _models(folder)
        bundles = {name: known[name][1]() for name in args.models}
        descriptions = {name: known[name][0] for name in args.models}
        inprocess = {name: measure_inprocess(path, (1, 64), args.inprocess_seconds)
                     for name, path in bundles.items()}
        for name, rates in inprocess.items():
            print(f"in-process {name}: " + ", ".join(
                f"batch {b}: {_rate(r)} samples/s" for b, r in rates.items()), flush=True)

        server_env = dict(item.split("=", 1) for item in args.server_env)
        load_before = os.getloadavg()[0]

        def progress(c):
            print(f"{c.model:>7} batching {c.batching:>3} concurrency {c.concurrency:>3}: "
                  f"{_rate(c.rps):>7} req/s  p50 {c.percentile_ms(50):7.2f} ms  "
                  f"p99 {c.percentile_ms(99):7.2f} ms  per call "
                  f"{c.mean_batch or 0:5.1f}  failed {c.failed}", flush=True)

        cells = measure_service(bundles, {m: MODES[m] for m in args.batching},
                                args.concurrency, args.duration, args.warmup,
                                progress=progress, server_env=server_env)
    notes = [f"1-minute load average {load_before:.2f} before the HTTP measurements and "
             f"{os.getloadavg()[0]:.2f} after (this benchmark's own processes count in it; "
             f"more than {os.cpu_count()} means other work competed for the CPUs)"]
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_"))}
    blas.update({k: v for k, v in server_env.items()})
    if blas:
        notes.append("BLAS environment (load generator and server): " + ", ".join(f"`{k}={v}`" for k, v in blas.items()))
    block = render(cells, inprocess, command, descriptions, args.duration, args.warmup,
                   notes)
    if args.output:
        write_block(args.output, block)
        print(f"wrote the service-load block into {args.output}")
    else:
        print(block)
    return 1 if any(c.failed for c in cells) else 0


if __name__ == "__main__":
    sys.exit(main())
