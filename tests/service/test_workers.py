"""`forge serve --workers 2`: two processes behind one port, metrics summed across them."""
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx

from tests.serving import forge_serve


def test_two_workers_serve_and_report_metrics(bundle_dir, tmp_path):
    with forge_serve(bundle_dir, "--workers", "2", "--batching", "--log-level", "warning",
                     env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}) as server:

        def send(_):  # a new connection each time
            with httpx.Client(base_url=server.url, timeout=20) as http:
                return http.post("/v1/models/clf:predict",
                                 json={"instances": [[0.5, -1.0, 2.0, 0.25]]}).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(40)))
        assert statuses == [200] * 40
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
        # The count is the sum over both workers' files, whichever worker answered.
        assert 'forge_inference_requests_total{model="clf",status="200",version="1"} 40.0' in text
        pids = {path.stem.rsplit("_", 1)[-1] for path in tmp_path.glob("*.db")}
        assert len(pids) == 2  # both workers started and wrote samples (the loaded-models gauge)
        assert "forge_models_loaded 2.0" in text
