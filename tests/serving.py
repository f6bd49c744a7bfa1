"""``forge serve`` in a subprocess, for the tests and benchmarks that need a real server.

:func:`forge_serve` starts ``python -m service serve`` on a free loopback port, waits
until a readiness URL answers 200, and stops the process when its block exits.

Examples
--------
::

    with forge_serve("service/models", ready="/health") as server:
        httpx.get(f"{server.url}/health")
"""
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["ROOT", "Server", "forge_serve", "free_port"]

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listened on when asked."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Server:
    """A running ``forge serve``: its base URL, process and log file."""

    url: str
    process: subprocess.Popen
    log_path: str

    def log(self):
        """What the server has written so far (stdout and stderr)."""
        return Path(self.log_path).read_text(errors="replace")


@contextlib.contextmanager
def forge_serve(*args, env=None, ready="/v2/health/ready", startup_timeout_s=60.0):
    """Run ``forge serve ARGS --host 127.0.0.1 --port <free port>`` until the block exits.

    The caller's ``FORGE_*`` variables are dropped, the repository is put on
    ``PYTHONPATH`` (worker processes import ``service`` too), and ``env`` is added. Yields
    a :class:`Server` once ``GET ready`` answers 200; raises ``RuntimeError`` with the
    server's log if the process exits first or is not ready within ``startup_timeout_s``.
    """
    import httpx

    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    environ.update(env or {})
    command = [sys.executable, "-m", "service", "serve", *map(str, args),
               "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.NamedTemporaryFile("wb", prefix="forge-serve-", suffix=".log",
                                     delete=False) as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=log,
                                   stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log.name)
    try:
        deadline = time.monotonic() + startup_timeout_s
        with httpx.Client(base_url=server.url, trust_env=False, timeout=2.0) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"forge serve exited with status {process.returncode}:"
                                       f"\n{server.log()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(ready).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"forge serve was not ready within {startup_timeout_s} s:"
                                       f"\n{server.log()}")
                time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        os.unlink(log.name)
