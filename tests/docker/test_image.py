"""Build the Docker image with buildah, start it, and serve a real prediction from it.

Runs in ``make test`` where ``buildah`` is on PATH (skipped otherwise, saying so), unless
``FORGE_TEST_IMAGE=0``. The image builds on ``FORGE_TEST_BASE_IMAGE``, by default the
local Debian base ``localhost/debian-py:bookworm``, made once by
``tests/docker/make_base.sh`` (debootstrap + podman, about a minute) when it is missing,
since Docker Hub may be out of reach. The first build takes about a minute; later ones
reuse buildah's layer cache. The container is started the way docs/docker.md says
(``buildah run``: the host's network, so the server is on 127.0.0.1) on a free port,
and removed at the end; the image (``localhost/forge-service:test``) is kept as a cache.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/forge-service:test"
LOCAL_BASE = "localhost/debian-py:bookworm"
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
DIGITS = ROOT / "service" / "models" / "digits.npz"

if shutil.which("buildah") is None:
    pytest.skip("buildah is not installed: the Docker image test builds and runs the image "
                "with buildah (apt-get install buildah; docs/docker.md)", allow_module_level=True)
if os.environ.get("FORGE_TEST_IMAGE") == "0":
    pytest.skip("FORGE_TEST_IMAGE=0 switches the Docker image test off",
                allow_module_level=True)

pytestmark = pytest.mark.slow


def _run(*command, timeout=120, check=True):
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} exited with {result.returncode}:"
                             f"\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def _image_exists(name):
    return _run("buildah", "inspect", "--type", "image", name, check=False).returncode == 0


def _config(image):
    """The image's Docker config (Cmd, Env, User, Healthcheck ...)."""
    return json.loads(_run("buildah", "inspect", "--type", "image", image).stdout)[
        "Docker"]["config"]


@pytest.fixture(scope="module")
def image():
    base = os.environ.get("FORGE_TEST_BASE_IMAGE", LOCAL_BASE)
    if base == LOCAL_BASE and not _image_exists(base):
        missing = [tool for tool in ("debootstrap", "podman") if shutil.which(tool) is None]
        if missing:
            pytest.skip(f"{' and '.join(missing)} not installed: needed once to make the "
                        f"local base image {base} (tests/docker/make_base.sh)")
        _run(ROOT / "tests" / "docker" / "make_base.sh", base, timeout=900)
    command = ["make", "-s", "-C", ROOT, "image", "BUILDER=buildah", f"IMAGE={IMAGE}",
               f"BASE_IMAGE={base}"]
    if os.path.isfile(HOST_CA):  # a proxy's CA, where the build's downloads need one
        command.append(f"PIP_CA={HOST_CA}")
    _run(*command, timeout=1200)
    return IMAGE


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid):
    """Process ids below ``pid`` (from /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid):
    """The words of ``pid``'s command line (the program's base name first), or []."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []
    return [word.rsplit(b"/", 1)[-1].rstrip(b"0123456789.") for word in words if word]


def _uid_of(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def _wait_ready(url, server, log, timeout_s=90):
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise AssertionError(f"the container exited with {server.returncode}:\n"
                                 f"{log.read().decode(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    log.seek(0)
    raise AssertionError(f"the container was not ready within {timeout_s} s:\n"
                         f"{log.read().decode(errors='replace')[-4000:]}")


def test_image_serves_digits_unprivileged_without_pytensor(image):
    import httpx
    from sklearn.datasets import load_digits

    import runtime

    config = _config(image)
    cmd, healthcheck = config["Cmd"], config["Healthcheck"]["Test"]
    assert config["User"] == "10001:10001"
    assert healthcheck[0] == "CMD", healthcheck
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    container = f"forge-test-{os.getpid()}-{port}"
    _run("buildah", "from", "--name", container, image)
    server = None
    try:
        def run_in(*command, env=(), attempts=3):
            """``command`` in the container; a failed ``buildah run`` is tried again
            (under a loaded CI machine one once exited 1 with no output at all)."""
            flags = [f"--env={e}" for e in env]
            for _ in range(attempts):
                result = _run("buildah", "run", "--isolation", "chroot", *flags, container,
                              "--", *command, check=False)
                if result.returncode == 0:
                    break
                time.sleep(1)
            return result

        # The environment the server runs in: non-root, no training stack, warm numba.
        user = run_in("id", "-u")
        assert user.returncode == 0 and user.stdout.strip() not in ("", "0"), user
        probe = run_in("python", "-c", "import importlib.util as u, json; print(json.dumps("
                       "{m: u.find_spec(m) is not None for m in ('pytensor', 'forge', "
                       "'numba', 'runtime', 'service')}))")
        assert probe.returncode == 0, probe
        assert json.loads(probe.stdout) == {"pytensor": False, "forge": False, "numba": True,
                                            "runtime": True, "service": True}, probe
        warm = run_in("python", "-m", "runtime.kernels.warm", env=["NUMBA_DEBUG_CACHE=1"])
        assert warm.returncode == 0, warm.stderr
        assert "data loaded" in warm.stdout and "data saved" not in warm.stdout, (
            f"numba compiled kernels at run time; the build's warm cache was not used:\n"
            f"{warm.stdout[-2000:]}")

        with tempfile.TemporaryFile() as log:
            server = subprocess.Popen(
                ["buildah", "run", "--isolation", "chroot", f"--env=FORGE_PORT={port}",
                 container, "--", *cmd],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            _wait_ready(url, server, log)

            serving = [pid for pid in _descendants(server.pid)
                       if {b"python", b"serve"} <= set(_cmdline(pid))]
            assert serving, "no server process found below buildah run"
            assert all(_uid_of(pid) != 0 for pid in serving), "the server runs as root"

            assert run_in(*healthcheck[1:], env=[f"FORGE_PORT={port}"]).returncode == 0

            digits = load_digits()
            X = (digits.data[:100] / 16.0).astype(np.float32)
            body = {"inputs": [{"name": "pixels", "shape": list(X.shape), "datatype": "FP32",
                                "data": X.ravel().tolist()}]}
            response = httpx.post(f"{url}/v2/models/digits/infer", json=body, timeout=30,
                                  trust_env=False)
            assert response.status_code == 200, response.text
            output = response.json()["outputs"][0]
            assert output["name"] == "probs" and output["shape"] == [100, 10], output["shape"]
            probs = np.asarray(output["data"], dtype=np.float32).reshape(100, 10)
            expected = runtime.load(DIGITS).run({"pixels": X})["probs"]
            np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-5)
            assert np.mean(probs.argmax(1) == digits.target[:100]) >= 0.95
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        _run("buildah", "rm", container, check=False)
