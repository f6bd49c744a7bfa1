"""Rows/s of batch scoring: in-process vs Dask threaded vs a 2-worker LocalCluster.

``python -m tests.benchmarks.dask_bench --output docs/distributed.md`` scores the same
float32 data with the benchmark MLP (784-800-800-10) three ways, in chunks of ``--chunk``
rows, and writes the table between the ``dask-bench`` markers of the output file:

- in-process: ``Model.run`` over the chunks, one after the other;
- threaded: :func:`runtime.dask.predict` computed with ``scheduler="threads"``;
- cluster: the same graph on a ``LocalCluster`` (2 worker processes x 1 thread each).

The overhead per task is ``(wall - in-process wall) / tasks`` for the same chunks (with
2 workers running in parallel, a negative figure means the parallelism paid off).
"""
import argparse
import logging
import os
import pathlib
import platform
import re
import sys
import tempfile
import time


from . import networks

BEGIN, END = "<!-- dask-bench:begin -->", "<!-- dask-bench:end -->"


def _best(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(rows, chunk, repeats):
    import dask.array as da
    import distributed

    import runtime
    from runtime import dask as rdask

    folder = tempfile.mkdtemp()
    path = networks.write_runtime_bundle("mlp", networks.make_weights("mlp"),
                                         os.path.join(folder, "mlp.npz"))
    x = networks.make_inputs("mlp", rows)
    tasks = -(-rows // chunk)
    model = runtime.load(path)
    results = {"in-process": _best(lambda: [model.run({"input": x[i:i + chunk]})
                                            for i in range(0, rows, chunk)], repeats)}
    data = da.from_array(x, chunks=(chunk, x.shape[1]))
    results["Dask threaded"] = _best(
        lambda: rdask.predict(path, data)["output"].compute(scheduler="threads"), repeats)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        client.compute(rdask.predict(path, data[:chunk])["output"], sync=True)  # warm
        results["2-worker LocalCluster"] = _best(
            lambda: client.compute(rdask.predict(path, data)["output"], sync=True), repeats)
    base = results["in-process"]
    lines = [f"| how | wall s | rows/s | overhead per task vs in-process (ms) |",
             "|---|---|---|---|"]
    for how, wall in results.items():
        lines.append(f"| {how} | {wall:.3f} | {rows / wall:,.0f} | "
                     f"{'-' if how == 'in-process' else f'{(wall - base) / tasks * 1e3:+.2f}'} |")
    return "\n".join(lines), tasks


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.dask_bench")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None, help="a markdown file to update")
    args = parser.parse_args(argv)
    table, tasks = measure(args.rows, args.chunk, args.repeats)
    command = " ".join(["python -m tests.benchmarks.dask_bench"] + (argv or sys.argv[1:]))
    block = (f"{BEGIN}\nMLP 784-800-800-10, {args.rows:,} rows of float32 in {tasks} chunks "
             f"of {args.chunk:,}; best of {args.repeats}; {os.cpu_count()} CPUs, "
             f"{platform.machine()}, Python {platform.python_version()}.\n"
             f"Command: `{command}`\n\n{table}\n{END}")
    print(block)
    if args.output:
        path = pathlib.Path(args.output)
        text = path.read_text() if path.exists() else ""
        if BEGIN in text:
            text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text,
                          flags=re.S)
        else:
            text += ("\n" if text else "") + block + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
