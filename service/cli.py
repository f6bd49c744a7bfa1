"""The ``forge`` command.

``forge serve [PATH] [--host HOST] [--port PORT] [--log-level LEVEL]`` starts the
prediction server on PATH (a bundle or a folder of bundles; by default the
example models shipped in ``service/models``). Options left out fall back to the
``FORGE_*`` environment variables, then to the defaults in
:class:`service.config.Settings`.

This module imports only the standard library at the top: FastAPI, uvicorn and
pydantic are imported inside ``serve``, so that commands which need numpy alone
can live here too.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer port, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forge", description="Serve Forge model bundles over HTTP."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="start the prediction server",
        description="Start the HTTP prediction server (FastAPI + uvicorn). Options not "
        "given fall back to FORGE_* environment variables, then to the defaults.",
    )
    serve.add_argument(
        "path",
        nargs="?",
        default=None,
        metavar="PATH",
        help="the model repository: a .npz bundle, or a folder of <name>/<version>/model.npz "
        "and <name>.npz bundles; default: FORGE_MODEL_REPOSITORY, else the example "
        "models in service/models",
    )
    serve.add_argument("--host", default=None, help="interface to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=None, help="TCP port (default: 8000)")
    serve.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=None,
        help="log level (default: info)",
    )
    _add_serve_options(serve)
    serve.set_defaults(handler=_serve)
    _add_batch_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forge`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


def _add_serve_options(serve: argparse.ArgumentParser) -> None:
    """The ``serve`` options beyond path, host, port and log level (all default to settings)."""
    add = serve.add_argument
    add("--workers", type=int, default=None, help="worker processes (default: 1)")
    add("--config", default=None, metavar="FILE",
        help="a TOML, JSON or YAML settings file (the same as FORGE_CONFIG=FILE)")
    add("--version-policy", choices=("latest", "all", "specific"), default=None,
        help="which versions of each model to serve (default: latest)")
    add("--versions", type=int, nargs="+", default=None, metavar="N",
        help="with --version-policy specific: the versions to serve")
    add("--poll-interval", type=float, default=None, metavar="SECONDS",
        help="rescan the repository every SECONDS for new versions (default: 0, off)")
    add("--batching", action=argparse.BooleanOptionalAction, default=None,
        help="merge concurrent requests into one model call (default: off)")
    add("--batch-max-size", type=int, default=None, metavar="ROWS",
        help="most rows per merged call (default: 64)")
    add("--batch-max-delay-ms", type=float, default=None, metavar="MS",
        help="longest wait for requests to merge with (default: 2)")
    add("--max-queue-size", type=int, default=None, metavar="N",
        help="most requests waiting or running per model; 503 beyond (default: 256)")
    add("--inference-threads", type=int, default=None, metavar="N",
        help="threads that run models, per worker (default: min(4, CPUs))")
    add("--request-timeout", type=float, default=None, metavar="SECONDS",
        help="504 after this long (default: 30)")
    add("--log-format", choices=("text", "json"), default=None,
        help="log line format (default: text)")


_SERVE_SETTINGS = (
    "workers", "version_policy", "versions", "poll_interval", "batching", "batch_max_size",
    "batch_max_delay_ms", "max_queue_size", "inference_threads", "request_timeout", "log_format",
)


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .config import Settings
    from .repository import RepositoryError, find_bundles

    overrides = {
        key: value
        for key, value in (
            ("model_repository", args.path),
            ("host", args.host),
            ("port", args.port),
            ("log_level", args.log_level),
            *((key, getattr(args, key, None)) for key in _SERVE_SETTINGS),
        )
        if value is not None
    }
    if args.config is not None:
        os.environ["FORGE_CONFIG"] = args.config
    try:
        settings = Settings(**overrides)
    except (ValidationError, ValueError) as exc:
        print(f"forge serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    try:
        find_bundles(settings.model_repository)  # fail fast, before the server starts
    except RepositoryError as exc:
        print(f"forge serve: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    from .logs import logging_config

    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": logging_config(settings.log_level, settings.log_format),
        "access_log": False,  # service.access logs every request, with its id
    }
    if settings.workers == 1:
        from .app import create_app

        uvicorn.run(create_app(settings), **options)
        return 0
    # Worker processes build their own app from the environment: hand the settings over.
    for key, value in overrides.items():
        os.environ[f"FORGE_{key.upper()}"] = json.dumps(value) if key == "versions" else str(value)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="forge-metrics-")
    uvicorn.run("service.app:create_app", factory=True, workers=settings.workers, **options)
    return 0


# -- forge predict / forge inspect (numpy only: service/batch.py) ----------------------

def _add_batch_commands(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict", help="score a .npy/.npz/.csv file with a bundle",
        description="Score INPUT with BUNDLE in chunks of --batch-size rows and write "
        "OUTPUT (.npy: one output; .npz: one array per output, named by layer). INPUT: "
        ".npy (one-input models), .npz (one array per model input, by input name) or "
        ".csv (one sample per line, comma-separated; an optional header line is "
        "skipped). Needs numpy only; --scheduler needs forge-nn[dask].")
    predict.add_argument("bundle", metavar="BUNDLE")
    predict.add_argument("input", metavar="INPUT")
    predict.add_argument("-o", "--output", required=True, metavar="OUTPUT")
    predict.add_argument("--outputs", nargs="+", default=None, metavar="LAYER",
                         help="layers to write (default: the model's outputs)")
    predict.add_argument("--batch-size", type=int, default=256,
                         help="rows per chunk; memory is bounded by it (default: 256)")
    predict.add_argument("--input", dest="input_name", default=None, metavar="NAME",
                         help="the model input a .npy/.csv feeds (models with several)")
    predict.add_argument("--scheduler", default=None, metavar="threads|ADDRESS",
                         help="score on Dask: the threaded scheduler, or a scheduler "
                         "address such as tcp://10.0.0.5:8786")
    predict.add_argument("--no-progress", action="store_true",
                         help="no progress bar (one is drawn when tqdm is installed)")
    predict.set_defaults(handler=_predict)
    inspect = commands.add_parser(
        "inspect", help="describe a bundle before deploying it",
        description="Print a bundle's inputs, outputs, layers with parameter counts, size "
        "on disk, metadata, format version, digest check and export parity error.")
    inspect.add_argument("bundle", metavar="BUNDLE")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=_inspect)


def _predict(args: argparse.Namespace) -> int:
    from runtime.errors import BundleError, InputError

    from .batch import predict_file

    try:
        rows = predict_file(args.bundle, args.input, args.output, outputs=args.outputs,
                            batch_size=args.batch_size, scheduler=args.scheduler,
                            input_name=args.input_name, progress=not args.no_progress)
    except (BundleError, InputError, OSError, ImportError) as exc:
        print(f"forge predict: {exc}", file=sys.stderr)
        return 2
    print(f"forge predict: {rows} rows -> {args.output}", file=sys.stderr)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from runtime.errors import BundleError

    from .batch import format_inspection, inspect_bundle

    try:
        info = inspect_bundle(args.bundle)
    except (BundleError, OSError) as exc:
        print(f"forge inspect: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2) if args.json else format_inspection(info))
    return 0 if info["digests"] == "ok" else 1
