"""Scanning a Zarr-held map chunk by chunk: equal to the whole-map scan, resumable, the same on a LocalCluster."""

import distributed
import numpy as np
import pytest

from defoscan.model import build_model, load_model, save_model
from defoscan.model.inputs import DEFAULT_RECIPE, input_channels
from defoscan.scan import scan_probability
from defoscan.scan_store import scan_store, write_map

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ORIGIN = (-2000, 351)  # somewhere on the global lattice, not on a stride multiple


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    recipe = {**DEFAULT_RECIPE, "window": 32, "localise": "product"}
    model = build_model("compact", input_channels(recipe), width=8, fcn=True, seed=3).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(model, path, {"input": recipe, "threshold": 0.5})
    return path


@pytest.fixture(scope="module")
def a_map():
    rng = np.random.default_rng(7)
    velocity = rng.normal(scale=3.0, size=(100, 87)).astype(np.float32)
    velocity[40:60, 30:50] += 15.0 * np.exp(-((np.arange(20)[:, None] - 10) ** 2 + (np.arange(20) - 10) ** 2) / 30)
    velocity[rng.random(velocity.shape) < 0.3] = np.nan
    velocity[:, 75:] = np.nan  # a coast
    return velocity, np.isfinite(velocity)


@pytest.fixture(scope="module")
def whole(tiny_model, a_map):
    model, card = load_model(tiny_model)
    return scan_probability(a_map[0], model, card["input"], origin=ORIGIN, valid=a_map[1])


def test_the_store_scan_equals_the_whole_map_scan(tiny_model, a_map, whole, tmp_path):
    write_map(tmp_path / "s.zarr", *a_map, ORIGIN, chunk=40)
    seen = []
    probability = scan_store(tmp_path / "s.zarr", tiny_model, chunk=40, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(k, 9) for k in range(1, 10)]  # 3 x 3 chunks
    result = probability[...]
    assert np.array_equal(np.isfinite(result), np.isfinite(whole)) and np.isfinite(whole).sum() > 3000
    assert np.nanmax(np.abs(result - whole)) < 1e-5


def test_a_stopped_scan_resumes_with_the_chunks_left(tiny_model, a_map, whole, tmp_path):
    write_map(tmp_path / "s.zarr", *a_map, ORIGIN, chunk=40)

    def stop_after_four(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan_store(tmp_path / "s.zarr", tiny_model, chunk=40, progress=stop_after_four)
    seen = []
    result = scan_store(tmp_path / "s.zarr", tiny_model, chunk=40, progress=lambda d, t: seen.append(d))[...]
    assert seen == [5, 6, 7, 8, 9]  # only the five chunks not done
    assert np.nanmax(np.abs(result - whole)) < 1e-5 and np.array_equal(np.isnan(result), np.isnan(whole))
    with pytest.raises(ValueError, match="chunks of"):
        scan_store(tmp_path / "s.zarr", tiny_model, chunk=50)


def test_a_local_cluster_of_worker_processes_gives_the_same_map(tiny_model, a_map, whole, tmp_path):
    write_map(tmp_path / "s.zarr", *a_map, ORIGIN, chunk=30)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        result = scan_store(tmp_path / "s.zarr", tiny_model, chunk=30, client=client)[...]
    assert np.nanmax(np.abs(result - whole)) < 1e-5 and np.array_equal(np.isnan(result), np.isnan(whole))
