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
import logging
import sys
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
        help="a .npz bundle, or a folder of them (model name = file stem); "
        "default: FORGE_MODEL_PATH, else the example models in service/models",
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
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forge`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .config import Settings
    from .repository import RepositoryError, find_bundles

    overrides = {
        key: value
        for key, value in (
            ("model_path", args.path),
            ("host", args.host),
            ("port", args.port),
            ("log_level", args.log_level),
        )
        if value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"forge serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    try:
        find_bundles(settings.model_path)  # fail fast, before the server starts
    except RepositoryError as exc:
        print(f"forge serve: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    from .app import create_app

    level = "DEBUG" if settings.log_level == "trace" else settings.log_level.upper()
    logging.basicConfig(level=level, format="%(levelname)-9s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
    )
    return 0
