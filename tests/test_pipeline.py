"""``detect`` end to end: the baseline on the real maps of ../shared (known signals found, the stable control clean),
and the CNN path with a small model written by a fixture (the bundled model is not needed here)."""

import html
import json
import os

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import torch
from rasterio.transform import from_origin
from shapely.geometry import Point

import defoscan.pipeline
from defoscan.cnn_regions import LOW_THRESHOLD_RATIO
from defoscan.errors import InputError
from defoscan.model.inputs import DEFAULT_RECIPE, input_channels
from defoscan.model.networks import build_model
from defoscan.model.weights import save_model
from defoscan.pipeline import detect
from defoscan.threshold import ThresholdParameters

SHINMOEDAKE = Point(130.883, 31.911)  # lon, lat of the crater (data provenance: about +-5 cm/yr there)
OUTPUT_FILES = (
    "detections.geojson",
    "detections.gpkg",
    "velocity.tif",
    "count.tif",
    "velocity_filled.tif",
    "probability.tif",
    "overview.png",
    "velocity.qml",
    "count.qml",
    "velocity_filled.qml",
    "probability.qml",
    "detections.qml",
)


@pytest.fixture(scope="module")
def kirishima_run(tmp_path_factory, kirishima_velocity_h5):
    out = tmp_path_factory.mktemp("kirishima")
    return out, detect([str(kirishima_velocity_h5)], str(out), detector="threshold")


def test_kirishima_flags_the_shinmoedake_crater(kirishima_run):
    out, _ = kirishima_run
    detections = gpd.read_file(out / "detections.geojson").to_crs(32652)
    crater = gpd.GeoSeries([SHINMOEDAKE], crs=4326).to_crs(32652).iloc[0]
    near = detections[detections.distance(crater) < 300.0]
    assert len(near) >= 1
    strongest = near.loc[near["peak_velocity"].abs().idxmax()]
    assert abs(strongest["peak_velocity"]) > 30.0  # the crater moves at centimetres per year
    assert strongest["score"] > 0.9
    # The crater ranks among the top detections of the whole map.
    assert near["id"].min() <= 5


def test_kirishima_outputs_agree_with_each_other(kirishima_run):
    out, result = kirishima_run
    geojson = json.loads((out / "detections.geojson").read_text())
    gpkg = gpd.read_file(out / "detections.gpkg", layer="detections")
    record = json.loads((out / "run.json").read_text())
    assert len(geojson["features"]) == len(gpkg) == record["detections"]["count"] == len(result["detections"])
    assert gpkg.crs.to_epsg() == 32652
    assert np.allclose(sorted(gpkg["area_km2"]), sorted(gpkg.geometry.area / 1e6), rtol=1e-4)
    with rasterio.open(out / "velocity.tif") as src:
        assert src.crs.to_epsg() == 32652 and src.res == (20.0, 20.0)
        assert list(src.bounds) == [record["grid"]["bounds"][i] for i in (0, 2, 1, 3)]
    with rasterio.open(out / "velocity.tif") as src, rasterio.open(out / "velocity_filled.tif") as filled:
        gridded, completed = src.read(1), filled.read(1)
        assert filled.transform == src.transform and filled.tags()["fill_method"] == "completion"
    observed = np.isfinite(gridded)
    assert np.array_equal(completed[observed], gridded[observed])  # data cells are kept as they are
    assert np.isfinite(completed[~observed]).mean() > 0.9  # gaps inside the volcano map are filled
    properties = geojson["features"][0]["properties"]
    assert set(properties) >= {"id", "score", "area_km2", "n_points", "mean_velocity", "peak_velocity", "sign", "kind"}
    assert properties["sign"] in ("subsidence", "uplift") and 0 <= properties["score"] <= 1
    # The baseline has no probability: probability.tif marks its detections with 1, other cells with data 0.
    with rasterio.open(out / "probability.tif") as src:
        marks = src.read(1)
        assert src.transform == filled.transform and src.tags()["units"] == "probability"
        assert "not a probability" in src.tags()["note"]
    assert set(np.unique(marks[np.isfinite(marks)])) == {0.0, 1.0}
    assert np.array_equal(np.isfinite(marks), observed | (marks == 1))
    assert record["parameters"]["detector"] == "threshold" and record["parameters"]["model"] is None


def test_ustica_stable_control_flags_nothing(tmp_path, ustica_l2b_022_zip, ustica_l2b_117_zip):
    result = detect([str(ustica_l2b_022_zip), str(ustica_l2b_117_zip)], str(tmp_path / "out"), detector="threshold")
    assert len(result["detections"]) == 0
    assert json.loads((tmp_path / "out" / "detections.geojson").read_text()) == {
        "type": "FeatureCollection",
        "features": [],
    }
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    # Ascending and descending are kept apart, each with its own points and coverage.
    assert [(t["track"], t["points"]) for t in record["tracks"]] == [("T022", 11590), ("T117", 11759)]
    assert record["points"] == 11590 + 11759
    assert record["grid"]["crs"] == "EPSG:3035"
    removed = [t["despike"]["removed"] for t in record["tracks"]]
    assert all(0 < r < 0.01 * n for r, n in zip(removed, (11590, 11759), strict=True))  # a few bad scatterers
    with rasterio.open(tmp_path / "out" / "velocity.tif") as src:
        assert src.descriptions == ("velocity T022", "velocity T117") and src.units == ("mm/yr", "mm/yr")
    with rasterio.open(tmp_path / "out" / "count.tif") as src:
        assert src.descriptions == ("count T022", "count T117") and src.units == ("points", "points")
        # Every point kept after despiking is counted once in its track's count band.
        assert src.read(1).sum() == 11590 - removed[0] and src.read(2).sum() == 11759 - removed[1]


def test_same_inputs_give_byte_identical_outputs(tmp_path, ustica_l2b_117_zip, kirishima_run):
    out, _ = kirishima_run
    again = tmp_path / "again"
    detect([str(json.loads((out / "run.json").read_text())["inputs"][0]["path"])], str(again), detector="threshold")
    for name in OUTPUT_FILES:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_points_input_end_to_end_with_an_injected_bowl(tmp_path, amsterdam_csv):
    """The real Amsterdam scatterers (a 280 m x 80 m patch) with a 30 mm/yr, 25 m subsidence bowl added."""
    import pandas as pd

    table = pd.read_csv(amsterdam_csv)
    lon, lat = table["pnt_lon"].to_numpy(), table["pnt_lat"].to_numpy()
    centre = (np.median(lon), np.median(lat))
    r2 = ((lon - centre[0]) * 68_000) ** 2 + ((lat - centre[1]) * 111_000) ** 2  # metres squared
    table["pnt_linear"] = table["pnt_linear"] - 0.030 * np.exp(-r2 / 25.0**2)  # m/yr, as DePSI stores it
    path = tmp_path / "amsterdam_bowl.csv"
    table.to_csv(path, index=False)
    result = detect([str(path)], str(tmp_path / "out"), cell_size=10.0, detector="threshold")
    frame = result["detections"]
    assert (frame["sign"] == "subsidence").any()
    bowl_centre = gpd.GeoSeries([Point(*centre)], crs=4326).to_crs(frame.crs).iloc[0]
    hit = frame[frame.distance(bowl_centre) < 70.0]
    assert len(hit) == 1 and hit.iloc[0]["peak_velocity"] < -15.0


# --- the CNN detector, with a small model written here ----------------------------------------------------------

RECIPE = {**DEFAULT_RECIPE, "window": 32}
# The small model's probability is the same everywhere, so its one region is the whole map, whose mean against its
# own background is near zero: these plumbing tests lift the 2 mm/yr floor (tested in test_cnn_regions).
NO_FLOOR = ThresholdParameters(min_velocity=0.0, noise_floor=0.0)


def bowl(frame):
    """The detection of small_raster's bowl (20 mm/yr deep at the centre): the one of the most negative peak."""
    region = frame.loc[frame["peak_relative"].idxmin()]
    assert region["peak_relative"] < -15.0 and region["peak_velocity"] < -15.0
    centre = shapely.Point(4_500_000 + 48.5 * 50, 1_800_000 - 48.5 * 50)
    assert region.geometry.contains(centre)
    return region


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_model(path, *, bias=3.0, recipe=RECIPE, card=None):
    """A small untrained CompactNet whose window probability is about sigmoid(bias) everywhere."""
    model = build_model("compact", input_channels(recipe), width=8, fcn=False)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(bias)
    save_model(model, path, {"input": recipe, "threshold": 0.5, "name": "test-model", **(card or {})})
    return path


@pytest.fixture(scope="module")
def small_raster(tmp_path_factory):
    """96 x 96 cells of 50 m (EPSG:3035): noise, a fifth of the cells empty, a subsidence bowl at the centre."""
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[0:96, 0:96]
    velocity = rng.normal(0.0, 1.0, (96, 96)) - 20.0 * np.exp(-((rows - 48) ** 2 + (cols - 48) ** 2) / 8.0**2)
    velocity[rng.random((96, 96)) < 0.2] = -9999.0
    path = tmp_path_factory.mktemp("raster") / "velocity.tif"
    profile = {"driver": "GTiff", "width": 96, "height": 96, "count": 1, "dtype": "float32", "nodata": -9999.0}
    with rasterio.open(
        path, "w", **profile, crs="EPSG:3035", transform=from_origin(4_500_000, 1_800_000, 50, 50)
    ) as dst:
        dst.write(velocity.astype(np.float32), 1)
    return path


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory, small_raster):
    folder = tmp_path_factory.mktemp("cnn")
    model = write_model(folder / "model.safetensors")
    messages = []
    result = detect(
        [str(small_raster)], str(folder / "out"), model=str(model), parameters=NO_FLOOR, log=messages.append
    )
    return folder / "out", result, model, messages


def test_cnn_writes_the_probability_map_and_its_detections(cnn_run):
    out, result, model, messages = cnn_run
    with rasterio.open(out / "probability.tif") as src, rasterio.open(out / "velocity.tif") as grid:
        probability, velocity = src.read(1), grid.read(1)
        assert src.count == 1 and src.descriptions == ("probability all",) and src.dtypes == ("float32",)
        assert src.tags()["units"] == "probability" and src.tags()["detector"] == "cnn"
        assert np.isnan(src.nodata) and src.transform == grid.transform
    assert np.array_equal(np.isfinite(probability), np.isfinite(velocity))  # a value wherever there is data
    assert np.allclose(probability[np.isfinite(probability)], 1 / (1 + np.exp(-3.0)), atol=1e-4)
    # Everything is above the cut-off: one component of all the cells with data, split by the sign of the velocity
    # against the background (issue 16): the bowl is one subsidence region, the noise around it many small parts.
    frame = result["detections"]
    assert len(frame) > 1 and (frame["detector"] == "cnn").all()
    assert np.allclose(frame["score"], 1 / (1 + np.exp(-3.0)), atol=1e-4)
    assert frame["n_points"].sum() <= np.isfinite(velocity).sum()
    assert bowl(frame)["sign"] == "subsidence" and (frame["sign"] == "uplift").any()
    assert any(m.startswith("scanning all") for m in messages)
    assert not any(m.startswith("warning") for m in messages)


def test_cnn_run_record_names_the_model(cnn_run):
    out, _, model, _ = cnn_run
    record = json.loads((out / "run.json").read_text())
    card = json.loads(model.with_suffix(".json").read_text())
    parameters = record["parameters"]
    assert parameters["detector"] == "cnn" and parameters["probability_threshold"] == 0.5
    assert parameters["model"] == {
        "path": str(model),
        "weights_sha256": card["weights_sha256"],
        "arch": "compact",
        "input": RECIPE,
        "name": "test-model",
    }
    assert record["timings"]["scan_s"] > 0
    geojson = json.loads((out / "detections.geojson").read_text())
    assert geojson["features"][0]["properties"]["detector"] == "cnn"


def test_cnn_outputs_are_byte_identical_across_runs(tmp_path, cnn_run, small_raster):
    out, _, model, _ = cnn_run
    detect([str(small_raster)], str(tmp_path / "again"), model=str(model), parameters=NO_FLOOR)
    for name in OUTPUT_FILES:
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_probability_threshold_from_the_caller_and_the_card(tmp_path, small_raster):
    model = write_model(tmp_path / "model.safetensors", card={"threshold": 0.99})
    result = detect([str(small_raster)], str(tmp_path / "card"), model=str(model))
    assert len(result["detections"]) == 0  # 0.95 everywhere: under the card's 0.99
    assert result["parameters"]["probability_threshold"] == 0.99
    result = detect(
        [str(small_raster)], str(tmp_path / "given"), model=str(model), probability_threshold=0.9, parameters=NO_FLOOR
    )
    assert bowl(result["detections"])["sign"] == "subsidence"
    with pytest.raises(InputError, match="must be in"):
        detect([str(small_raster)], str(tmp_path / "bad"), model=str(model), probability_threshold=1.5)


def test_default_cell_size_is_the_models_where_the_data_support_it(tmp_path, small_raster):
    # A 50 m raster and a model trained on 100 m cells: gridded at 100 m by default, without a warning.
    model = write_model(tmp_path / "model.safetensors", recipe={**RECIPE, "cell_size": 100.0})
    result = detect([str(small_raster)], str(tmp_path / "default"), model=str(model), parameters=NO_FLOOR)
    assert result["grid"]["cell_size_m"] == 100.0 and result["parameters"]["cell_size_requested"] is None
    assert result["warnings"] == []
    # The baselines have no model: the data's own cell size.
    result = detect([str(small_raster)], str(tmp_path / "threshold"), detector="threshold")
    assert result["grid"]["cell_size_m"] == 50.0


def test_data_too_sparse_for_the_models_cells_are_gridded_at_their_own_and_scanned_on_its(tmp_path, small_raster):
    model = write_model(tmp_path / "model.safetensors", recipe={**RECIPE, "cell_size": 10.0})
    result = detect([str(small_raster)], str(tmp_path / "out"), model=str(model), parameters=NO_FLOOR)
    assert result["grid"]["cell_size_m"] == 50.0
    (warning,) = result["warnings"]
    assert "too sparse for the model's 10 m cells" in warning and "gridded at 50 m" in warning
    assert "scanned on 10 m cells" in warning
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["warnings"] == [warning]
    (track,) = record["tracks"]
    assert track["noise"]["scan_cell_size_m"] == 10.0  # scanned five times finer (defoscan.scan_upsampled)
    with rasterio.open(tmp_path / "out" / "probability.tif") as src:
        assert np.isfinite(src.read(1)).any()
    assert html.escape(warning) in (tmp_path / "out" / "report.html").read_text()


def test_a_model_of_several_cell_sizes_scans_data_within_its_range_at_their_own(tmp_path, small_raster):
    # 10 and 20 m cells: the 50 m raster lies within [10, 2.5 x 20] m, so it is gridded at 50 m without a warning
    model = write_model(
        tmp_path / "model.safetensors", recipe={**RECIPE, "cell_size": 10.0, "cell_sizes": [10.0, 20.0]}
    )
    result = detect([str(small_raster)], str(tmp_path / "out"), model=str(model), parameters=NO_FLOOR)
    assert result["grid"]["cell_size_m"] == 50.0 and result["warnings"] == []


def test_cell_size_chosen_far_from_the_models_gives_a_warning(tmp_path, small_raster, caplog):
    model = write_model(tmp_path / "model.safetensors", recipe={**RECIPE, "cell_size": 500.0})
    with caplog.at_level("WARNING", logger="defoscan"):
        result = detect([str(small_raster)], str(tmp_path / "out"), model=str(model), cell_size=50.0)
    (warning,) = result["warnings"]
    assert "50 m" in warning and "500 m" in warning
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [warning]  # reported as it ran
    assert json.loads((tmp_path / "out" / "run.json").read_text())["warnings"] == [warning]


def test_mask_polygons_remove_the_cells_outside(tmp_path, small_raster):
    # Keep the western half of the map: the bowl at the centre is cut, no detection lies east of the line.
    west, north = 4_500_000, 1_800_000
    keep = shapely.box(west, north - 96 * 50, west + 48 * 50, north)
    gpd.GeoDataFrame(geometry=[keep], crs="EPSG:3035").to_file(tmp_path / "keep.geojson")
    result = detect(
        [str(small_raster)], str(tmp_path / "out"), detector="threshold", mask=str(tmp_path / "keep.geojson")
    )
    with rasterio.open(tmp_path / "out" / "velocity.tif") as src:
        velocity = src.read(1)
    assert np.isfinite(velocity[:, :48]).sum() > 0.7 * 96 * 48 and not np.isfinite(velocity[:, 48:]).any()
    assert result["parameters"]["mask"]["path"] == str(tmp_path / "keep.geojson")
    assert result["parameters"]["mask"]["cells_removed"][0] > 0.7 * 96 * 48
    frame = result["detections"]
    assert len(frame) >= 1 and (frame.geometry.bounds["maxx"] <= west + 48 * 50 + 1e-6).all()


def test_mask_raster_and_bad_masks(tmp_path, small_raster):
    keep = np.zeros((96, 96), dtype=np.uint8)
    keep[:, 48:] = 1  # the eastern half
    profile = {"driver": "GTiff", "width": 96, "height": 96, "count": 1, "dtype": "uint8"}
    transform = from_origin(4_500_000, 1_800_000, 50, 50)
    with rasterio.open(tmp_path / "keep.tif", "w", **profile, crs="EPSG:3035", transform=transform) as dst:
        dst.write(keep, 1)
    detect([str(small_raster)], str(tmp_path / "out"), detector="threshold", mask=str(tmp_path / "keep.tif"))
    with rasterio.open(tmp_path / "out" / "velocity.tif") as src:
        velocity = src.read(1)
    assert not np.isfinite(velocity[:, :48]).any() and np.isfinite(velocity[:, 48:]).sum() > 0.7 * 96 * 48
    with pytest.raises(InputError, match="mask file not found"):
        detect([str(small_raster)], str(tmp_path / "a"), detector="threshold", mask=str(tmp_path / "none.gpkg"))
    (tmp_path / "mask.txt").write_text("x")
    with pytest.raises(InputError, match="unknown mask format"):
        detect([str(small_raster)], str(tmp_path / "b"), detector="threshold", mask=str(tmp_path / "mask.txt"))
    far = shapely.box(0, 0, 1000, 1000)
    gpd.GeoDataFrame(geometry=[far], crs="EPSG:3035").to_file(tmp_path / "far.geojson")
    with pytest.raises(InputError, match="leaves no cell with data"):
        detect([str(small_raster)], str(tmp_path / "c"), detector="threshold", mask=str(tmp_path / "far.geojson"))
    assert not (tmp_path / "c").exists()


def assert_nothing_written(out):
    assert not os.path.exists(out)
    assert not [n for n in os.listdir(os.path.dirname(out)) if ".partial-" in n]


def test_corrupt_model_is_an_input_error_and_nothing_is_written(tmp_path, small_raster):
    model = write_model(tmp_path / "model.safetensors")
    model.write_bytes(model.read_bytes()[:-100])  # cut short
    with pytest.raises(InputError, match="cannot load the model") as error:
        detect([str(small_raster)], str(tmp_path / "out"), model=str(model))
    assert error.value.path == str(model) and "checksum" in str(error.value)
    assert_nothing_written(tmp_path / "out")
    model.with_suffix(".json").write_text("{not json")
    with pytest.raises(InputError, match="not a valid defoscan model card"):
        detect([str(small_raster)], str(tmp_path / "out"), model=str(model))
    assert_nothing_written(tmp_path / "out")


def test_card_without_a_usable_recipe_is_an_input_error(tmp_path, small_raster):
    model = build_model("compact", input_channels(RECIPE), width=8, fcn=False)
    save_model(model, tmp_path / "plain.safetensors", {"threshold": 0.5})
    with pytest.raises(InputError, match="lacks the input recipe"):
        detect([str(small_raster)], str(tmp_path / "out"), model=str(tmp_path / "plain.safetensors"))
    save_model(model, tmp_path / "other.safetensors", {"input": {**RECIPE, "mode": "raw"}})
    with pytest.raises(InputError, match=f"makes 2 channels, the network takes {input_channels(RECIPE)}"):
        detect([str(small_raster)], str(tmp_path / "out"), model=str(tmp_path / "other.safetensors"))
    assert_nothing_written(tmp_path / "out")


def test_missing_bundled_model_says_what_to_do(tmp_path, small_raster, monkeypatch):
    monkeypatch.setattr(defoscan.pipeline, "bundled_model_path", lambda: tmp_path / "absent.safetensors")
    with pytest.raises(InputError, match="--model PATH or --detector threshold"):
        detect([str(small_raster)], str(tmp_path / "out"))
    assert_nothing_written(tmp_path / "out")


def test_unknown_detector(tmp_path, small_raster):
    with pytest.raises(InputError, match="unknown detector 'magic'"):
        detect([str(small_raster)], str(tmp_path / "out"), detector="magic")
    with pytest.raises(InputError, match="do not apply to the threshold detector"):
        detect([str(small_raster)], str(tmp_path / "out"), detector="threshold", probability_threshold=0.5)
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("detector", ["gistar", "ada"])
def test_the_evaluation_baselines_run_through_the_output_contract(tmp_path, detector):
    import geopandas as gpd
    import pandas as pd

    rng = np.random.default_rng(11)
    n = 20_000
    lon, lat = -1.6 + rng.random(n) * 0.1, 53.78 + rng.random(n) * 0.06
    d2 = ((lon + 1.55) * 66.0) ** 2 + ((lat - 53.81) * 111.2) ** 2
    velocity = rng.normal(0, 1.5, n) - 20.0 * np.exp(-d2 / (2 * 0.4**2))
    path = tmp_path / "p.csv"
    pd.DataFrame({"longitude": lon, "latitude": lat, "velocity": velocity.round(2)}).to_csv(path, index=False)
    record = detect([str(path)], str(tmp_path / "out"), cell_size=50.0, detector=detector)
    assert record["parameters"]["detector"] == detector
    found = gpd.read_file(tmp_path / "out" / "detections.geojson")
    assert len(found) >= 1 and found.iloc[0]["sign"] == "subsidence" and found.iloc[0]["detector"] == detector
    centre = found.iloc[0].geometry.representative_point()
    assert abs(centre.x + 1.55) < 0.01 and abs(centre.y - 53.81) < 0.01


# --- the switches of the evaluation's ablations (defoscan.benchmark.suite) ---------------------------------------


def test_despike_switched_off_grids_every_point(tmp_path, ustica_l2b_117_zip):
    record = detect([str(ustica_l2b_117_zip)], str(tmp_path / "out"), detector="threshold", despike=False)
    (track,) = record["tracks"]
    assert track["despike"] == {"removed": 0, "switched_off": True}
    assert record["parameters"]["despike"] is False
    with rasterio.open(tmp_path / "out" / "count.tif") as src:
        assert src.read(1).sum() == 11759  # every point counted, the bad scatterers too


def test_hysteresis_localise_and_scan_filled_switches_are_applied_and_recorded(tmp_path, small_raster):
    model = write_model(tmp_path / "model.safetensors", card={"window_threshold": 0.8})
    record = detect(
        [str(small_raster)],
        str(tmp_path / "out"),
        model=str(model),
        parameters=NO_FLOOR,
        hysteresis=False,
        localise="window",
        scan_filled=True,
    )
    parameters = record["parameters"]
    # The window head's own cut-off goes with window probabilities; one cut-off without hysteresis.
    assert parameters["probability_threshold"] == 0.8 == parameters["low_probability_threshold"]
    assert parameters["model"]["input"]["localise"] == "window" and parameters["model"]["input"]["fill"] is True
    assert bowl(record["detections"])["sign"] == "subsidence"  # sigmoid(3) = 0.95 everywhere: over 0.8
    with rasterio.open(tmp_path / "out" / "probability.tif") as src:
        probability = src.read(1)
    assert np.allclose(probability[np.isfinite(probability)], 1 / (1 + np.exp(-3.0)), atol=1e-4)
    default = detect([str(small_raster)], str(tmp_path / "default"), model=str(model))["parameters"]
    assert default["low_probability_threshold"] == LOW_THRESHOLD_RATIO * default["probability_threshold"] < 0.5
    assert "localise" not in default["model"]["input"] and default["model"]["input"]["fill"] is False


def test_scan_switches_apply_to_the_cnn_only(tmp_path, small_raster):
    for switch in ({"localise": "window"}, {"scan_filled": False}):
        with pytest.raises(InputError, match="do not apply to the threshold detector"):
            detect([str(small_raster)], str(tmp_path / "out"), detector="threshold", **switch)
    model = write_model(tmp_path / "model.safetensors")
    with pytest.raises(InputError, match="unknown localise mode 'blur'"):
        detect([str(small_raster)], str(tmp_path / "out"), model=str(model), localise="blur")
    assert_nothing_written(tmp_path / "out")


def test_baseline_parameters_reach_their_detector_and_the_record(tmp_path, small_raster):
    from defoscan.ada import AdaParameters
    from defoscan.hotspot import HotspotParameters

    strict = detect([str(small_raster)], str(tmp_path / "strict"), detector="gistar", baseline=HotspotParameters(z=1e3))
    assert len(strict["detections"]) == 0  # no Gi* reaches 1000 (it is bounded by the square root of the cells)
    assert strict["parameters"]["baseline"]["z"] == 1e3
    usual = detect([str(small_raster)], str(tmp_path / "usual"), detector="gistar")
    assert len(usual["detections"]) >= 1 and usual["parameters"]["baseline"] is None  # the bowl
    with pytest.raises(InputError, match="AdaParameters do not apply to the gistar detector"):
        detect([str(small_raster)], str(tmp_path / "out"), detector="gistar", baseline=AdaParameters())
    assert_nothing_written(tmp_path / "out")
