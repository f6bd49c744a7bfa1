"""`forge serve --workers 2`: two processes behind one port, metrics summed across them."""
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_workers_serve_and_report_metrics(bundle_dir, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FORGE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", str(bundle_dir), "--port", str(port),
         "--workers", "2", "--batching", "--log-level", "warning"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "workers did not become ready within 60 s"
            time.sleep(0.2)

        def send(_):
            with httpx.Client(base_url=base, timeout=20) as http:  # a new connection each time
                return http.post("/v1/models/clf:predict",
                                 json={"instances": [[0.5, -1.0, 2.0, 0.25]]}).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(40)))
        assert statuses == [200] * 40
        text = httpx.get(f"{base}/metrics", timeout=5).text
        # The count is the sum over both workers' files, whichever worker answered.
        assert 'forge_inference_requests_total{model="clf",status="200",version="1"} 40.0' in text
        pids = {path.stem.rsplit("_", 1)[-1] for path in tmp_path.glob("*.db")}
        assert len(pids) == 2  # both workers started and wrote samples (the loaded-models gauge)
        assert "forge_models_loaded 2.0" in text
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
