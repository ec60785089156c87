"""The detectors: one registry entry each, run by the pipeline on a run's store (:mod:`defoscan.store`).

Every detector reads the store's gridded ``velocity``, ``count`` (and ``velocity_filled``), and writes ``labels``
(int32, region numbers, 0 elsewhere) and ``probability`` (float32; for the baselines 1 in their regions, 0 elsewhere
with data, NaN without), then returns its regions (the attributes of the output contract) and its noise record.
The CNN detector is chunk-exact (scan and regions chunk by chunk, :mod:`defoscan.scan_store`,
:mod:`defoscan.regions_store`); the baselines are not (a map-wide noise estimate, whole-map morphology) and run on
the whole map read into memory, as one chunk.

Adding a detector: a module with its function, and one :class:`Detector` entry in :data:`DETECTORS`.
"""

from dataclasses import dataclass

import numpy as np
import zarr

from defoscan.ada import AdaParameters, ada_detect
from defoscan.errors import InputError
from defoscan.hotspot import HotspotParameters, gistar_detect
from defoscan.noise_level import noise_sigma, region_floor
from defoscan.store import create_array, store_like
from defoscan.threshold import block_medians, threshold_detect


@dataclass(frozen=True)
class Detector:
    """A registry entry.

    Attributes
    ----------
    name : str
    summary : str
        One line for the command line's help.
    needs_model : bool
        Scans with a model (a model file, a probability cut-off and the scan options apply).
    chunk_exact : bool
        Runs chunk by chunk with the same result as on the whole map; otherwise on the whole map at once.
    parameters : type or None
        The class of its own parameters (``baseline=`` of the pipeline), if it has any beyond the shared ones.
    run : callable
        ``run(store, settings) -> (regions, noise)``; ``settings`` is the pipeline's :class:`DetectorSettings`.
    stage : str
        What the run's log says it is doing.
    """

    name: str
    summary: str
    needs_model: bool
    chunk_exact: bool
    parameters: type | None
    run: object
    stage: str = "detecting"


@dataclass(frozen=True)
class DetectorSettings:
    """What a detector is run with (chosen by the pipeline, the same for every track)."""

    grid: object  # defoscan.gridspec.GridSpec
    chunk: int
    parameters: object  # defoscan.threshold.ThresholdParameters: shared sizes and floors
    baseline: object = None  # the detector's own parameters, or None for its defaults
    model_path: str | None = None
    recipe: dict | None = None
    threshold: float | None = None
    low_threshold: float | None = None
    client: object = None
    progress: object = None
    timings: dict | None = None  # the run's stage timings: a detector with a scan adds its ``scan_s``


def _run_cnn(store, settings):
    import time

    from defoscan.regions_store import regions_store
    from defoscan.scan_store import scan_store
    from defoscan.scan_upsampled import scan_factor

    started = time.perf_counter()
    scan_store(
        store,
        settings.model_path,
        chunk=settings.chunk,
        client=settings.client,
        progress=settings.progress,
        recipe=settings.recipe,
    )
    if settings.timings is not None:
        settings.timings["scan_s"] = settings.timings.get("scan_s", 0.0) + time.perf_counter() - started
    parameters = settings.parameters
    # The regions' velocity floor is tied to the map's own noise (defoscan.noise_level): on a noisy map a fixed
    # 2 mm/yr floor passes hundreds of noise blobs.
    # The background's block medians are read once, for the noise level and for the regions.
    group = zarr.open_group(store_like(store), mode="r")
    origin = tuple(int(v) for v in group.attrs["origin"])
    cell_size = settings.grid.cell_size
    medians = block_medians(group["velocity"], cell_size, parameters.background_size, origin=origin)
    sigma = noise_sigma(
        group["velocity"], cell_size, parameters.background_size, origin=origin, chunk=settings.chunk, medians=medians
    )
    floor = region_floor(parameters.min_velocity, sigma, parameters.noise_floor)
    regions = regions_store(
        store,
        cell_size=settings.grid.cell_size,
        threshold=settings.threshold,
        low_threshold=settings.low_threshold,
        background_size=parameters.background_size,
        min_cells=parameters.min_cells,
        min_points=parameters.min_points,
        min_velocity=floor,
        chunk=settings.chunk,
        medians=medians,
    )
    factor = scan_factor(cell_size, settings.recipe)
    return regions, {"sigma_mm_yr": sigma, "region_floor_mm_yr": floor, "scan_cell_size_m": cell_size / factor}


def _whole_map(function):
    """A baseline run on the whole map: ``function(velocity, count, settings) -> (labels, regions, noise)``."""

    def run(store, settings):
        group = zarr.open_group(store_like(store), mode="r+")
        velocity, count = group["velocity"][...], group["count"][...]
        labels, regions, noise = function(velocity, count, settings)
        create_array(group, "labels", "int32", settings.chunk, 0)[...] = labels.astype(np.int32)
        probability = np.where(labels > 0, 1.0, np.where(np.isfinite(velocity), 0.0, np.nan)).astype(np.float32)
        create_array(group, "probability", "float32", settings.chunk, np.nan)[...] = probability
        return regions, noise

    return run


def _threshold(velocity, count, settings):
    return threshold_detect(velocity, count, settings.grid.cell_size, settings.parameters, origin=settings.grid.origin)


def _gistar(velocity, count, settings):
    parameters = settings.parameters
    hotspot = settings.baseline or HotspotParameters(
        background_size=parameters.background_size, min_cells=parameters.min_cells, min_points=parameters.min_points
    )
    return gistar_detect(velocity, count, settings.grid.cell_size, hotspot, origin=settings.grid.origin)


def _ada(velocity, count, settings):
    return ada_detect(velocity, count, settings.grid.cell_size, settings.baseline, origin=settings.grid.origin)


DETECTORS = {
    "cnn": Detector("cnn", "scan with the model", True, True, None, _run_cnn, "scanning"),
    "threshold": Detector("threshold", "noise-unit thresholding", False, False, None, _whole_map(_threshold)),
    "gistar": Detector("gistar", "Getis-Ord Gi* hotspots", False, False, HotspotParameters, _whole_map(_gistar)),
    "ada": Detector("ada", "active deformation areas, after ADAfinder", False, False, AdaParameters, _whole_map(_ada)),
}


def detector(name):
    """The registry entry of a detector.

    Raises
    ------
    defoscan.errors.InputError
        An unknown name.
    """
    if name not in DETECTORS:
        raise InputError(None, f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]
