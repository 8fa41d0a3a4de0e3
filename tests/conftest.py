import pytest

import bench  # noqa: F401  (first: it pins the numerics before torch runs anything)
import torch
from bench import numerics
from bench.plugins import default_plugins

numerics.pin_threads()  # tests that train without an experiment's prepare() train on the pinned thread count


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory):
    # no test may touch the user's cache or depend on the caller's environment
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("BENCH_LOAD_PLUGINS", raising=False)
    for name in ("BENCH_LOGGERS", "BENCH_LOG_DIR", "BENCH_TRACKING_URI", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)  # a tracker set up for the caller's own runs logs no test
    default_plugins.cache_clear()
    yield
    default_plugins.cache_clear()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """One shared data folder so MNIST-1D is generated once per session."""
    return tmp_path_factory.mktemp("data")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
