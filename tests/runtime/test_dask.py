"""runtime.dask: scoring Dask arrays and DataFrames, threaded and on a 2-worker cluster.

"Identical" means bitwise equal to an in-process ``Model.run`` over the same chunks with
the same number of BLAS threads: OpenBLAS may round differently for a different number of
rows or threads, so a single call over all rows agrees to float32 rounding only (checked
with a tight tolerance). Dask's nanny starts workers with ``OPENBLAS_NUM_THREADS=1``, so
the references for the cluster are computed with one BLAS thread too.
"""
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask not installed (optional [dask] extra)")
dd = pytest.importorskip("dask.dataframe",
                         reason="dask.dataframe not installed (optional [dask] extra)")
pd = pytest.importorskip("pandas", reason="pandas not installed (optional [dask] extra)")
threadpoolctl = pytest.importorskip("threadpoolctl",
                                    reason="threadpoolctl not installed (from [dev])")

try:
    import distributed
except ImportError:  # the cluster fixture skips
    distributed = None

import runtime  # noqa: E402
from runtime import dask as rdask  # noqa: E402
from runtime.errors import BundleError, InputError  # noqa: E402

from .helpers import BundleBuilder, mlp_builder  # noqa: E402

DIGITS = os.path.join(os.path.dirname(__file__), "..", "..", "service", "models", "digits.npz")
ROWS, CHUNK = 1000, 128


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A private copy of the shipped digits bundle (so load counts start at zero)."""
    path = tmp_path_factory.mktemp("dask") / "digits.npz"
    shutil.copy(DIGITS, path)
    return str(path)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((ROWS, 64), dtype=np.float32)


def by_chunks(model, x, names, chunk=CHUNK, input_name="pixels", blas_threads=None):
    """In-process reference: Model.run over the same row chunks, concatenated."""
    with threadpoolctl.threadpool_limits(blas_threads):
        parts = [model.run({input_name: x[i:i + chunk]}, names)
                 for i in range(0, len(x), chunk)]
    return {n: np.concatenate([p[n] for p in parts]) for n in names}


def by_partitions(model, ddf, blas_threads=None):
    """In-process reference for a DataFrame: the model on each partition's rows."""
    with threadpoolctl.threadpool_limits(blas_threads):
        return np.concatenate([model(ddf.partitions[i].compute().to_numpy())
                               for i in range(ddf.npartitions)])


def assert_same(result, model, x, names, blas_threads=None):
    expected = by_chunks(model, x, names, blas_threads=blas_threads)
    whole = model.run({"pixels": x}, names)
    for name in names:
        np.testing.assert_array_equal(result[name], expected[name])
        np.testing.assert_allclose(result[name], whole[name], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed", reason="distributed not installed (optional [dask] extra)")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.ERROR, death_timeout=30) as cluster:
        # Not "with Client(...)": that would make it the current client for every test,
        # over the default one predict(client=address) opens.
        client = distributed.Client(cluster, timeout=30)
        try:
            client.wait_for_workers(2, timeout=30)
            yield cluster, client
        finally:
            client.close()


def test_importing_runtime_does_not_import_dask():
    code = "import sys, runtime; print(sorted({'dask', 'distributed', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


class TestThreaded:
    def test_array_matches_model_run_with_chunks_and_dtypes(self, digits, x):
        data = da.from_array(x, chunks=(CHUNK, 32))  # feature axis split: rechunked
        result = rdask.predict(digits, data, outputs=["probs", "hidden1"])
        assert list(result) == ["probs", "hidden1"]
        assert result["probs"].chunks == (data.chunks[0], (10,))
        assert result["probs"].dtype == np.float32
        assert result["hidden1"].shape[0] == ROWS
        assert isinstance(result["probs"]._meta, np.ndarray)
        computed = dict(zip(result, da.compute(*result.values(), scheduler="threads")))
        assert_same(computed, runtime.load(digits), x, ["probs", "hidden1"])

    def test_one_load_per_process_across_threads(self, tmp_path, x):
        path = str(tmp_path / "fresh.npz")
        shutil.copy(DIGITS, path)
        result = rdask.predict(path, da.from_array(x, chunks=(100, 64)))
        result["probs"].compute(scheduler="threads", num_workers=4)
        info = rdask.cache_info()[os.path.abspath(path)]
        assert info == {"loads": 1, "calls": 1 + 10}  # predict() itself, then 10 tasks

    def test_dataframe_columns_from_labels_index_and_values(self, tmp_path):
        builder, _ = mlp_builder()
        path = builder.write(tmp_path / "mlp.npz")
        frame = pd.DataFrame(np.random.default_rng(1).random((50, 4)),
                             columns=list("abcd"), index=np.arange(100, 150))
        ddf = dd.from_pandas(frame, npartitions=4)
        scored = rdask.predict(path, ddf)
        assert list(scored.columns) == ["no", "yes"]  # the bundle's metadata labels
        assert list(scored.dtypes) == [np.float32, np.float32]
        assert scored.npartitions == 4
        out = scored.compute(scheduler="threads")
        np.testing.assert_array_equal(out.to_numpy(), by_partitions(runtime.load(path), ddf))
        assert list(out.index) == list(frame.index)

    def test_dataframe_intermediate_outputs_and_feature_columns(self, tmp_path):
        builder, _ = mlp_builder()
        path = builder.write(tmp_path / "mlp.npz")
        frame = pd.DataFrame(np.random.default_rng(2).random((30, 5)), columns=list("zabcd"))
        scored = rdask.predict(path, dd.from_pandas(frame, npartitions=2),
                               outputs=["dense_1", "output"], columns=list("abcd"))
        assert list(scored.columns) == ["dense_1_0", "dense_1_1", "dense_1_2", "output_0",
                                        "output_1"]
        out = scored.compute(scheduler="threads")
        model = runtime.load(path)
        run = model.run({"input": frame[list("abcd")].to_numpy()}, ["dense_1", "output"])
        np.testing.assert_allclose(out.to_numpy(), np.hstack([run["dense_1"], run["output"]]),
                                   rtol=1e-5, atol=1e-6)

    def test_two_inputs_as_a_dict(self, tmp_path):
        b = BundleBuilder()
        b.input("a", [None, 2])
        b.input("b", [None, 3])
        b.layer("ConcatLayer", ["a", "b"], {"axis": 1, "cropping": None}, shape=[None, 5],
                name="joined")
        path = b.write(tmp_path / "two.npz")
        a = np.arange(20, dtype=np.float32).reshape(10, 2)
        c = -np.arange(30, dtype=np.float32).reshape(10, 3)
        result = rdask.predict(path, {"a": da.from_array(a, chunks=4),
                                      "b": da.from_array(c, chunks=(5, 1))})
        assert result["joined"].chunks == ((4, 4, 2), (5,))
        np.testing.assert_array_equal(result["joined"].compute(scheduler="threads"),
                                      np.hstack([a, c]))

    def test_errors_name_the_problem(self, digits, x):
        with pytest.raises(InputError, match="13 feature columns"):
            rdask.predict(digits, dd.from_pandas(pd.DataFrame(np.zeros((4, 13))),
                                                 npartitions=1))
        with pytest.raises(InputError, match="unknown input_name 'nope'"):
            rdask.predict(digits, da.from_array(x), input_name="nope")
        with pytest.raises(InputError, match="unknown output 'nope'"):
            rdask.predict(digits, da.from_array(x), outputs=["nope"])
        with pytest.raises(InputError, match="expected shape"):
            rdask.predict(digits, da.from_array(x[:, :10]))
        with pytest.raises(TypeError, match="got ndarray"):
            rdask.predict(digits, x)

    def test_a_different_file_at_the_path_is_refused(self, tmp_path):
        path = mlp_builder(seed=0)[0].write(tmp_path / "m.npz")
        _, fingerprint = rdask.cached_model(path)
        os.replace(mlp_builder(seed=1)[0].write(tmp_path / "other.npz"), path)
        with pytest.raises(BundleError, match="is not the one predict"):
            rdask.cached_model(path, fingerprint)

    def test_a_replaced_file_with_the_same_size_and_mtime_is_loaded_again(self, tmp_path):
        path = mlp_builder(seed=0)[0].write(tmp_path / "m.npz")
        old, _ = rdask.cached_model(path)
        other = mlp_builder(seed=1)[0].write(tmp_path / "other.npz")
        stat = os.stat(path)
        assert os.stat(other).st_size == stat.st_size
        os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # coarse clocks do this
        os.replace(other, path)
        new, _ = rdask.cached_model(path)
        assert new is not old
        x = np.ones((1, 4), np.float32)
        assert not np.array_equal(new(x), old(x))


class TestDistributed:
    def test_array_and_intermediates_match_model_run(self, cluster, digits, x):
        _, client = cluster
        result = rdask.predict(digits, da.from_array(x, chunks=CHUNK),
                               outputs=["probs", "hidden2"], client=client)
        assert result["probs"].chunks[0] == da.from_array(x, chunks=CHUNK).chunks[0]
        computed = dict(zip(result, client.compute(list(result.values()), sync=True)))
        assert_same(computed, runtime.load(digits), x, ["probs", "hidden2"], blas_threads=1)

    def test_dataframe_on_the_cluster(self, cluster, digits, x):
        _, client = cluster
        frame = pd.DataFrame(x, columns=[f"p{i}" for i in range(64)])
        ddf = dd.from_pandas(frame, npartitions=5)
        out = client.compute(rdask.predict(digits, ddf), sync=True)
        assert list(out.columns) == [str(i) for i in range(10)]
        model = runtime.load(digits)
        np.testing.assert_array_equal(out.to_numpy(), by_partitions(model, ddf, 1))

    def test_scheduler_address_string(self, cluster, digits, x):
        scheduler, _ = cluster
        result = rdask.predict(digits, da.from_array(x[:300], chunks=100),
                               client=scheduler.scheduler_address)
        opened = distributed.default_client()  # predict opened it for the address
        try:
            np.testing.assert_array_equal(
                result["probs"].compute(),
                by_chunks(runtime.load(digits), x[:300], ["probs"], chunk=100,
                          blas_threads=1)["probs"])
        finally:
            opened.close()

    def test_each_worker_process_loads_the_bundle_once(self, cluster, tmp_path, x):
        _, client = cluster
        path = os.path.abspath(tmp_path / "once.npz")
        shutil.copy(DIGITS, path)
        result = rdask.predict(path, da.from_array(x, chunks=50))  # 20 tasks
        client.compute(result["probs"], sync=True)
        per_worker = [info.get(path) for info in client.run(rdask.cache_info).values()]
        used = [info for info in per_worker if info]
        assert sum(info["calls"] for info in used) == 20
        assert all(info["loads"] == 1 for info in used), per_worker

    def test_a_worker_killed_mid_job_loses_and_duplicates_no_row(self, cluster, digits, x,
                                                                 tmp_path):
        _, client = cluster
        marker = str(tmp_path / "killed")

        def die_once(part):
            # The first task to run anywhere kills its worker process; the scheduler
            # retries it on a (restarted) worker.
            if not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
            return part

        ids = np.arange(ROWS) * 7 + 3
        frame = pd.DataFrame(x, columns=[f"p{i}" for i in range(64)], index=ids)
        ddf = dd.from_pandas(frame, npartitions=8)
        dying = ddf.map_partitions(die_once, meta=frame[:0])
        out = client.compute(rdask.predict(digits, dying), sync=True)
        assert os.path.exists(marker)  # a worker did die
        assert len(out) == ROWS and out.index.is_unique
        np.testing.assert_array_equal(out.index.to_numpy(), ids)
        model = runtime.load(digits)
        np.testing.assert_array_equal(out.to_numpy(), by_partitions(model, ddf, 1))
