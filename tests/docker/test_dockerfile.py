"""The Dockerfile and .dockerignore say what docs/docker.md promises (no build needed).

These read the files as text, so they run everywhere; ``test_image.py`` builds and runs
the image where buildah is installed.
"""
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(text=DOCKERFILE):
    """(keyword, arguments) per instruction, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in joined.splitlines() if line.strip()]


def stages():
    """The instructions of each build stage, in order."""
    result = []
    for keyword, args in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def test_base_image_is_a_build_argument_defaulting_to_official_python_slim():
    first = instructions()[0]
    assert first == ("ARG", "BASE_IMAGE=python:3.11-slim"), first
    assert [args.split()[0] for keyword, args in instructions() if keyword == "FROM"] == [
        "${BASE_IMAGE}", "${BASE_IMAGE}"]


def test_builder_installs_only_the_serve_and_fast_extras_without_forge():
    builder = stages()[0]
    runs = " ".join(args for keyword, args in builder if keyword == "RUN")
    assert "pip install '.[serve,fast]'" in runs
    assert "train" not in runs and "pytensor" not in runs and "dev" not in runs
    copied = [shlex.split(args)[:-1] for keyword, args in builder if keyword == "COPY"]
    sources = {source for sources in copied for source in sources}
    assert "forge" not in sources and "." not in sources, sources
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_final_stage_runs_unprivileged_with_a_warm_numba_cache():
    final = stages()[-1]
    users = [args for keyword, args in final if keyword == "USER"]
    assert len(users) == 1
    uid = users[0].replace("${UID}", re.search(r"ARG UID=(\d+)", DOCKERFILE).group(1))
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", uid), f"USER must be numeric and not root: {uid}"
    keywords = [keyword for keyword, _ in final]
    warm = next(i for i, (k, a) in enumerate(final)
                if k == "RUN" and "python -m runtime.kernels.warm" in a)
    assert keywords.index("USER") < warm, "the cache must be warmed as the serving user"
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    assert "NUMBA_CACHE_DIR=/var/cache/forge/numba" in env
    assert "FORGE_MODEL_REPOSITORY=/models" in env
    assert "FORGE_HOST=0.0.0.0" in env and "FORGE_PORT=8000" in env


def test_healthcheck_probes_readiness_and_the_server_listens_on_8000():
    final = dict(stages()[-1])
    assert "/v2/health/ready" in final["HEALTHCHECK"]
    assert final["EXPOSE"] == "8000"
    assert final["CMD"] == '["forge", "serve"]'


def test_the_shipped_model_lands_in_the_repository_layout_the_service_reads(tmp_path):
    from service.repository import scan_repository

    copies = [shlex.split(args) for keyword, args in stages()[-1] if keyword == "COPY"]
    models = [c for c in copies if c[-1].startswith("/models/")]
    assert models, "the image ships no model in /models"
    for *sources, target in models:
        bundle = tmp_path / target.lstrip("/")
        bundle.parent.mkdir(parents=True)
        bundle.write_bytes((ROOT / sources[-1]).read_bytes())
    found, skipped = scan_repository(tmp_path / "models")
    assert found == {"digits": {1: tmp_path / "models/digits/1/model.npz"}}, (found, skipped)


def test_dockerignore_keeps_local_state_and_training_code_out_of_the_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".git", "out", "forge", "tests", "docs", "**/__pycache__"} <= ignored
    assert "!service/models/*.npz" in ignored
