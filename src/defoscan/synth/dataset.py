"""Synthetic datasets on disk: shards of samples, their labels and a manifest, reproducible and resumable.

A dataset directory holds, for every ``shard_size`` samples,

- ``shard-00000.npz``: compressed NPZ with ``velocity`` (float32, N x H x W, NaN = no data), ``count`` (uint16),
  ``deformation`` (float32), ``mask`` and ``spikes`` (bool, packed 8 cells per byte along the rows:
  :func:`numpy.packbits` on the last axis), ``label`` and ``hard`` (int8, N), ``index`` (int64, N: the sample
  numbers) and ``meta`` (the shard's own record, JSON as uint8);
- ``labels-00000.jsonl``: one JSON line per sample: ``index``, ``label``, ``hard``, ``kinds``, ``polygons``,
  ``sources``, ``geometry``, ``conditions``, ``coverage``, ... (everything :func:`~defoscan.synth.sample.draw_sample`
  drew);

and ``manifest.json``, written last: the parameters, class and kind counts, and every shard with its sample range
and the sha256 of its files.

Reproducibility. Sample ``i``'s class and hardness come from one permutation of the exact counts (so classes are
balanced exactly), and its generator from ``SeedSequence(seed).spawn(n)[i]`` (:func:`sample_rng`): any sample can
be re-made alone (:func:`remake_sample`), and the files depend neither on the number of workers nor on the order
shards finish. The NPZ members carry a fixed date, so the same parameters give byte-identical files.

Polygons are the deformation mask vectorised per sample (:func:`deformation_polygons`), as GeoJSON features in
metres in the sample's local frame, that of :func:`~defoscan.synth.sample.cell_centres` and of the sources'
parameters: x east from the left edge, y north from the top edge (so negative inside the grid); vertices on cell
edges.

Resuming. Each shard is written under a temporary name and renamed; its labels file first, then the NPZ, whose
``meta`` records the run's fingerprint and the labels file's sha256. A rerun with the same parameters keeps every
shard whose record matches (and whose hash matches ``manifest.json`` when there is one) and makes only the others.
"""

import hashlib
import io
import json
import os
import platform
import zipfile
import zlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

import numpy as np
import rasterio.features
import shapely.geometry
from affine import Affine

from defoscan.errors import InputError
from defoscan.hashing import file_sha256
from defoscan.outputs import atomic_path, check_writable_dir
from defoscan.synth import sources
from defoscan.synth.sample import LABEL_THRESHOLD, Sample, draw_sample

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_ATTEMPTS = 20  # draws of a positive sample until its deformation is seen (draw_sample already retries 5 times)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date ZIP can hold: NPZ members carry no write time
_ARRAYS = ("velocity", "count", "deformation", "mask", "spikes", "label", "hard", "index", "meta")


def shard_names(number):
    """File names of shard ``number``: ``("shard-00000.npz", "labels-00000.jsonl")``."""
    return f"shard-{number:05d}.npz", f"labels-{number:05d}.jsonl"


def sample_plan(n, seed, *, positive_fraction=0.5, hard_fraction=0.5):
    """Class and hardness of every sample: exact counts, in an order fixed by the seed.

    Parameters
    ----------
    n : int
        Samples.
    seed : int
    positive_fraction : float
        Share of positives, ``round(n * positive_fraction)`` of them exactly (halves round up).
    hard_fraction : float
        Share of the negatives that are hard.

    Returns
    -------
    positive, hard : numpy.ndarray of bool
        Shape ``(n,)``; ``hard`` is False for every positive.
    """
    n_positive = int(np.floor(n * positive_fraction + 0.5))
    n_hard = int(np.floor((n - n_positive) * hard_fraction + 0.5))
    # The root SeedSequence, not a spawned child: its stream is independent of every sample's.
    order = np.random.default_rng(np.random.SeedSequence(seed)).permutation(n)
    positive, hard = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    positive[order[:n_positive]] = True
    hard[order[n_positive : n_positive + n_hard]] = True
    return positive, hard


def sample_rng(seed, index):
    """The generator of sample ``index``: that of ``numpy.random.SeedSequence(seed).spawn(n)[index]``, any ``n``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(index),)))


def make_sample(
    seed, index, *, positive, hard, shape=(128, 128), cell_size=50.0, profile=None, kinds=None, conditions="default"
):
    """Draw sample ``index`` of a dataset, alone.

    A positive whose deformation is not seen (all of it in data gaps; :data:`~defoscan.synth.sample.MIN_SEEN`)
    is drawn again from the same generator, up to :data:`MAX_ATTEMPTS` times, so the class asked for is the class
    labelled; ``info["attempts"]`` says how many draws it took.

    Parameters
    ----------
    seed, index : int
    positive, hard : bool
        The class, from :func:`sample_plan`.
    shape, cell_size, profile, kinds, conditions
        As :func:`~defoscan.synth.sample.draw_sample`; ``profile`` one profile dict.

    Returns
    -------
    Sample
    """
    rng = sample_rng(seed, index)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        sample = draw_sample(
            rng,
            shape=shape,
            cell_size=cell_size,
            positive=bool(positive),
            hard=bool(hard),
            profile=profile,
            kinds=kinds,
            conditions=conditions,
        )
        if sample.label == int(bool(positive)):
            sample.info["attempts"] = attempt
            return sample
    raise RuntimeError(f"sample {index}: deformation not seen in {MAX_ATTEMPTS} draws (coverage too sparse?)")


def deformation_polygons(deformation, mask, cell_size):
    """The deformation mask as polygons, one per 4-connected area of one sign.

    Parameters
    ----------
    deformation : numpy.ndarray
        LOS deformation, mm/yr (its sign splits subsidence from uplift).
    mask : numpy.ndarray of bool
        Deforming cells.
    cell_size : float
        Metres.

    Returns
    -------
    list of dict
        GeoJSON features, largest first: geometry a Polygon in metres in the sample's frame (x east from the left
        edge, y north from the top edge, vertices on cell edges), properties ``sign`` (``subsidence`` or
        ``uplift``) and ``cells``. Rasterising them on the sample's grid gives ``mask`` back.
    """
    mask = np.asarray(mask, dtype=bool)
    sign = np.where(np.asarray(deformation) < 0, -1, 1).astype(np.int16)
    transform = Affine(float(cell_size), 0.0, 0.0, 0.0, -float(cell_size), 0.0)
    features = []
    for geometry, value in rasterio.features.shapes(sign, mask=mask, connectivity=4, transform=transform):
        rings = [[[x + 0.0, y + 0.0] for x, y in ring] for ring in geometry["coordinates"]]  # + 0.0: no -0.0
        polygon = {"type": "Polygon", "coordinates": rings}
        cells = int(round(shapely.geometry.shape(polygon).area / cell_size**2))  # vertices on cell edges: exact
        properties = {"sign": "subsidence" if value < 0 else "uplift", "cells": cells}
        features.append({"type": "Feature", "properties": properties, "geometry": polygon})
    return sorted(features, key=lambda f: -f["properties"]["cells"])  # stable: ties keep the scan order


def write_dataset(
    out_dir,
    n,
    *,
    seed,
    shape=(128, 128),
    cell_size=50.0,
    profile=None,
    shard_size=256,
    workers=2,
    positive_fraction=0.5,
    hard_fraction=0.5,
    kinds=None,
    conditions="default",
    progress=None,
):
    """Generate ``n`` samples into ``out_dir`` (shards, labels, manifest), in parallel; resume a partial run.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Created if missing. A directory already holding a different dataset is refused.
    n : int
        Samples.
    seed : int
    shape : tuple of int
        ``(rows, columns)`` of every sample.
    cell_size : float
        Metres.
    profile : dict or list of dict or str or os.PathLike, optional
        Profile(s) fitted to real maps (:mod:`defoscan.synth.profile`), or a JSON file of one or a list. With
        several, sample ``i`` is drawn around profile ``i % len(profiles)``.
    shard_size : int
        Samples per shard file.
    workers : int
        Processes; 1 generates in this process. The files do not depend on it.
    positive_fraction : float
        Share of positives (exact, :func:`sample_plan`).
    hard_fraction : float
        Share of the negatives that are hard negatives.
    kinds : sequence of str, optional
        Kinds of source to draw from (all of :data:`defoscan.synth.sources.KINDS` by default); their order does
        not matter.
    conditions : str
        A key of :data:`defoscan.synth.sample.CONDITION_MODES` (``broad``: :mod:`defoscan.synth.broad`; not with a
        profile). Recorded in the manifest when not ``default``.
    progress : callable, optional
        Called as ``progress(done, total)`` with samples done (including those of shards kept from a previous run).

    Returns
    -------
    dict
        The manifest, as written to ``manifest.json``.

    Raises
    ------
    InputError
        Bad parameters, an unusable ``out_dir`` or one holding another dataset, a bad profile file.
    """
    _check_parameters(n, seed, shape, cell_size, shard_size, workers, positive_fraction, hard_fraction)
    profiles, profile_path = _profiles(profile)
    shape = (int(shape[0]), int(shape[1]))
    kinds = _checked_kinds(kinds)
    _check_conditions(conditions, profiles)
    parameters = {
        "format_version": FORMAT_VERSION,
        "n": int(n),
        "seed": int(seed),
        "shape": list(shape),
        "cell_size": float(cell_size),
        "shard_size": int(shard_size),
        "positive_fraction": float(positive_fraction),
        "hard_fraction": float(hard_fraction),
        "kinds": kinds,
        "profile_sha256": _sha256_bytes(_canonical(profiles)) if profiles else None,
        "versions": software_versions(),
    }
    if conditions != "default":  # absent for the default, so the fingerprints of earlier datasets stand
        parameters["conditions"] = conditions
    fingerprint = _sha256_bytes(_canonical(parameters))
    out_dir = os.path.abspath(os.fspath(out_dir))
    check_writable_dir(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    previous = _previous_manifest(out_dir, fingerprint)
    _remove_stale_temporaries(out_dir)

    positive, hard = sample_plan(n, seed, positive_fraction=positive_fraction, hard_fraction=hard_fraction)
    ranges = [(start, min(start + shard_size, n)) for start in range(0, n, shard_size)]
    summaries, todo = {}, []
    for number, (start, stop) in enumerate(ranges):
        kept = _kept_shard(out_dir, number, start, stop, fingerprint, previous)
        if kept is not None:
            summaries[number] = kept
        else:
            todo.append(
                {
                    "out_dir": out_dir,
                    "number": number,
                    "start": start,
                    "stop": stop,
                    "seed": int(seed),
                    "positive": positive[start:stop].tolist(),
                    "hard": hard[start:stop].tolist(),
                    "shape": shape,
                    "cell_size": float(cell_size),
                    "profiles": profiles,
                    "kinds": kinds,
                    "conditions": conditions,
                    "fingerprint": fingerprint,
                }
            )
    if todo and os.path.exists(os.path.join(out_dir, MANIFEST)):
        os.remove(os.path.join(out_dir, MANIFEST))  # a manifest present means a complete dataset
    done = sum(s["stop"] - s["start"] for s in summaries.values())
    if progress is not None:
        progress(done, n)
    summaries.update(_run_tasks(todo, workers, done, n, progress))

    shards = [summaries[number] for number in range(len(ranges))]
    manifest = {
        **{key: value for key, value in parameters.items() if key != "profile_sha256"},
        "fingerprint": fingerprint,
        "profile": None
        if not profiles
        else {"path": profile_path, "sha256": parameters["profile_sha256"], "profiles": profiles},
        "classes": {
            "positive": int(positive.sum()),
            "negative": int(n - positive.sum()),
            "hard_negative": int(hard.sum()),
        },
        "kind_counts": _add_counts(s["kinds"] for s in shards),  # positives showing each kind
        "source_counts": _add_counts(s["sources"] for s in shards),  # sources of each kind
        "shards": [{key: s[key] for key in ("npz", "labels", "start", "stop", "positive", "sha256")} for s in shards],
        "frame": "polygons and source parameters in metres: x east from the left edge, y north from the top edge",
        "label_threshold_mm_yr": LABEL_THRESHOLD,
    }
    with atomic_path(os.path.join(out_dir, MANIFEST)) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
        handle.write("\n")
    return manifest


def software_versions():
    """Versions that decide the bytes of a dataset: defoscan, numpy, scipy, rasterio, zlib (the deflate), Python."""
    import scipy

    import defoscan

    return {
        "defoscan": defoscan.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "rasterio": rasterio.__version__,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "python": platform.python_version(),
    }


def read_manifest(directory):
    """The manifest of a dataset directory.

    Raises
    ------
    InputError
        No manifest (not a dataset, or an unfinished run) or not readable JSON.
    """
    path = os.path.join(os.fspath(directory), MANIFEST)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise InputError(directory, f"no {MANIFEST}: not a dataset, or its generation did not finish") from None
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read the manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(path, f"not a defoscan synthetic dataset manifest of format {FORMAT_VERSION}")
    return manifest


def verify_dataset(directory, shards=None):
    """Check the files of a dataset against the sha256 in its manifest.

    Parameters
    ----------
    directory : str or os.PathLike
    shards : iterable of int, optional
        Shard numbers to check; all by default.

    Raises
    ------
    InputError
        A file missing or whose hash differs.
    """
    manifest = read_manifest(directory)
    entries = manifest["shards"]
    for number in range(len(entries)) if shards is None else shards:
        _verify_shard(directory, entries[number])


def load_shard(path):
    """Load one shard: its arrays, masks unpacked, and its labels.

    Parameters
    ----------
    path : str or os.PathLike
        ``shard-NNNNN.npz``; its ``labels-NNNNN.jsonl`` is read from beside it.

    Returns
    -------
    dict
        ``velocity``, ``count``, ``deformation`` (N x H x W), ``mask``, ``spikes`` (bool, N x H x W), ``label``,
        ``hard``, ``index`` (N), ``meta`` (dict) and ``labels`` (list of dict, one per sample).
    """
    path = os.fspath(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    width = arrays["velocity"].shape[-1]
    for name in ("mask", "spikes"):
        arrays[name] = np.unpackbits(arrays[name], axis=-1, count=width).astype(bool)
    arrays["meta"] = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    labels_path = os.path.join(os.path.dirname(path), arrays["meta"]["labels"])
    with open(labels_path, encoding="utf-8") as handle:
        arrays["labels"] = [json.loads(line) for line in handle]
    return arrays


def read_dataset(directory, *, verify=False):
    """Iterate over the samples of a dataset, loading one shard at a time.

    Parameters
    ----------
    directory : str or os.PathLike
    verify : bool
        Check each shard's files against the manifest's sha256 before loading it.

    Yields
    ------
    Sample
        ``count`` as int32, ``info`` the sample's labels line.
    """
    manifest = read_manifest(directory)
    for entry in manifest["shards"]:
        if verify:
            _verify_shard(directory, entry)
        shard = load_shard(os.path.join(os.fspath(directory), entry["npz"]))
        for k, info in enumerate(shard["labels"]):
            yield Sample(
                velocity=shard["velocity"][k],
                count=shard["count"][k].astype(np.int32),
                deformation=shard["deformation"][k],
                mask=shard["mask"][k],
                spikes=shard["spikes"][k],
                label=int(shard["label"][k]),
                info=info,
            )


def remake_sample(directory, index):
    """Draw sample ``index`` of a dataset again, from its manifest alone (the files are not read).

    Returns
    -------
    Sample
        Equal to the stored one: velocity, deformation, masks and labels.
    """
    manifest = read_manifest(directory)
    n = manifest["n"]
    if not 0 <= index < n:
        raise IndexError(f"sample {index} of a dataset of {n}")
    positive, hard = sample_plan(
        n, manifest["seed"], positive_fraction=manifest["positive_fraction"], hard_fraction=manifest["hard_fraction"]
    )
    profiles = (manifest["profile"] or {}).get("profiles")
    return make_sample(
        manifest["seed"],
        index,
        positive=positive[index],
        hard=hard[index],
        shape=tuple(manifest["shape"]),
        cell_size=manifest["cell_size"],
        profile=profiles[index % len(profiles)] if profiles else None,
        kinds=manifest["kinds"],
        conditions=manifest.get("conditions", "default"),
    )


# --- generation -----------------------------------------------------------------------------------------------

_queue = None  # a worker's progress queue, set by _init_worker


def _init_worker(queue):
    global _queue
    _queue = queue


def _run_tasks(tasks, workers, done, total, progress):
    """Write the shards of ``tasks`` (in this process for one worker), reporting samples as they are made."""
    summaries = {}
    if not tasks:
        return summaries
    if workers == 1 or len(tasks) == 1:  # no pool: nothing to share, and no process start-up to pay
        counter = [done]

        def tick():
            counter[0] += 1
            if progress is not None:
                progress(counter[0], total)

        for task in tasks:
            summaries[task["number"]] = write_shard(task, on_sample=tick)
        return summaries
    # spawn: the same on every platform, and no fork of a parent holding threads (rich, BLAS).
    context = get_context("spawn")
    queue = context.Queue()
    with ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=context, initializer=_init_worker, initargs=(queue,)
    ) as pool:
        pending = {pool.submit(write_shard, task) for task in tasks}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in finished:
                    summary = future.result()
                    summaries[summary["number"]] = summary
                while not queue.empty():
                    done += queue.get()
                if progress is not None:
                    progress(done, total)
        except BaseException:  # a failed shard or Ctrl-C: start no more shards; finished ones stay for a rerun
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return summaries


def write_shard(task, on_sample=None):
    """Generate and write one shard (labels, then NPZ, each atomically); the worker function of the pool.

    Parameters
    ----------
    task : dict
        ``out_dir``, ``number``, ``start``, ``stop``, ``seed``, ``positive``, ``hard`` (lists for the range),
        ``shape``, ``cell_size``, ``profiles``, ``kinds``, ``conditions``, ``fingerprint``.
    on_sample : callable, optional
        Called after each sample (in a pool worker the progress queue is used instead).

    Returns
    -------
    dict
        The shard's manifest entry, with kind and source counts.
    """
    start, stop, profiles = task["start"], task["stop"], task["profiles"]
    samples, lines = [], []
    for k, index in enumerate(range(start, stop)):
        sample = make_sample(
            task["seed"],
            index,
            positive=task["positive"][k],
            hard=task["hard"][k],
            shape=tuple(task["shape"]),
            cell_size=task["cell_size"],
            profile=profiles[index % len(profiles)] if profiles else None,
            kinds=task["kinds"],
            conditions=task.get("conditions", "default"),
        )
        samples.append(sample)
        record = {
            "index": index,
            "label": sample.label,
            "polygons": deformation_polygons(sample.deformation, sample.mask, task["cell_size"]),
            "coverage_fraction": float(np.count_nonzero(sample.count) / sample.count.size),
            **sample.info,
        }
        lines.append(json.dumps(record, sort_keys=True, separators=(",", ":")))
        if _queue is not None:
            _queue.put(1)
        elif on_sample is not None:
            on_sample()
    npz_name, labels_name = shard_names(task["number"])
    out_dir = task["out_dir"]
    labels_bytes = ("\n".join(lines) + "\n").encode("utf-8")
    with atomic_path(os.path.join(out_dir, labels_name)) as temporary, open(temporary, "wb") as handle:
        handle.write(labels_bytes)
    count = np.stack([s.count for s in samples])
    if count.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError("more than 65535 points in a cell: the shard stores counts as uint16")
    meta = {
        "format_version": FORMAT_VERSION,
        "fingerprint": task["fingerprint"],
        "start": start,
        "stop": stop,
        "labels": labels_name,
        "labels_sha256": _sha256_bytes(labels_bytes),
    }
    arrays = {
        "velocity": np.stack([s.velocity for s in samples]).astype(np.float32),
        "count": count.astype(np.uint16),
        "deformation": np.stack([s.deformation for s in samples]).astype(np.float32),
        "mask": np.packbits(np.stack([s.mask for s in samples]), axis=-1),
        "spikes": np.packbits(np.stack([s.spikes for s in samples]), axis=-1),
        "label": np.array([s.label for s in samples], dtype=np.int8),
        "hard": np.array(task["hard"], dtype=np.int8),
        "index": np.arange(start, stop, dtype=np.int64),
        "meta": np.frombuffer(_canonical(meta), dtype=np.uint8),
    }
    npz_path = os.path.join(out_dir, npz_name)
    with atomic_path(npz_path) as temporary:
        write_npz(temporary, arrays)
    kinds, sources = {}, {}
    for s in samples:
        for kind in s.info["kinds"]:
            kinds[kind] = kinds.get(kind, 0) + 1
        for source in s.info["sources"]:
            sources[source["kind"]] = sources.get(source["kind"], 0) + 1
    return {
        "number": task["number"],
        "npz": npz_name,
        "labels": labels_name,
        "start": start,
        "stop": stop,
        "positive": int(sum(s.label for s in samples)),
        "sha256": {"npz": file_sha256(npz_path), "labels": meta["labels_sha256"]},
        "kinds": kinds,
        "sources": sources,
    }


def write_npz(path, arrays):
    """``numpy.savez_compressed`` with a fixed member date, so that the same arrays give the same bytes.

    Parameters
    ----------
    path : str
    arrays : dict of str to numpy.ndarray
        Written in this order, as ``<name>.npy`` members, deflated.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            with archive.open(member, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.ascontiguousarray(value), allow_pickle=False)


# --- checks and bookkeeping -----------------------------------------------------------------------------------


def _check_parameters(n, seed, shape, cell_size, shard_size, workers, positive_fraction, hard_fraction):
    def positive_int(value, what):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise InputError(None, f"{what} must be a positive whole number, got {value!r}")

    positive_int(n, "the number of samples (--n)")
    positive_int(shard_size, "the shard size (--shard-size)")
    positive_int(workers, "the number of workers (--workers)")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(None, f"the seed (--seed) must be a whole number >= 0, got {seed!r}")
    if len(shape) != 2 or any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 8 for s in shape):
        raise InputError(None, f"the shape (--shape) must be two whole numbers of at least 8 cells, got {shape!r}")
    if not (np.isfinite(cell_size) and cell_size > 0):
        raise InputError(None, f"the cell size (--cell-size) must be positive, got {cell_size!r}")
    for value, what in ((positive_fraction, "--positive-fraction"), (hard_fraction, "--hard-fraction")):
        if not 0.0 <= value <= 1.0:
            raise InputError(None, f"{what} must lie in [0, 1], got {value!r}")


def load_profiles(path):
    """Read a profile JSON file: one profile (an object) or several (a list of them, one per track).

    Each profile is judged by :mod:`defoscan.synth.profile` (version and fields).

    Returns
    -------
    list of dict

    Raises
    ------
    InputError
        Missing, unreadable, not JSON, or not profiles.
    """
    from defoscan.synth import profile as profile_module

    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise InputError(path, "profile file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read the profile ({err})") from None
    except ValueError as err:
        raise InputError(path, f"not valid JSON ({err})") from None
    if isinstance(document, list) and not document:
        raise InputError(path, "not a profile: an empty list")
    profiles = document if isinstance(document, list) else [document]
    for k, profile in enumerate(profiles):
        where = path if len(profiles) == 1 else f"{path} [{k}]"
        try:
            profile_module._validate(profile, where)  # the profile module knows its own fields
        except ValueError as err:
            problem = str(err).removeprefix(f"{where}: ")
            raise InputError(where, problem) from None
    return profiles


def _check_conditions(conditions, profiles):
    from defoscan.synth.sample import CONDITION_MODES

    if conditions not in CONDITION_MODES:
        raise InputError(None, f"unknown conditions {conditions!r}; choose from {', '.join(CONDITION_MODES)}")
    if conditions != "default" and profiles:
        raise InputError(None, f"the {conditions} conditions are drawn from their own ranges, not around a profile")


def _checked_kinds(kinds):
    """Known kinds, sorted (the order in which samples draw from them), or None for all."""
    if kinds is None:
        return None
    chosen = sorted({str(k) for k in ([kinds] if isinstance(kinds, str) else kinds)})
    unknown = [k for k in chosen if k not in sources.KINDS]
    if not chosen or unknown:
        raise InputError(
            None, f"unknown source kind(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(sources.KINDS)}"
        )
    return chosen


def _profiles(profile):
    """``(list of profile dicts or None, path or None)`` from what ``write_dataset`` was given."""
    if profile is None:
        return None, None
    if isinstance(profile, str | os.PathLike):
        return load_profiles(profile), os.fspath(profile)
    profiles = list(profile) if isinstance(profile, list | tuple) else [profile]
    if not profiles or not all(isinstance(p, dict) for p in profiles):
        raise InputError(None, "profile must be a dict, a list of dicts or a JSON file")
    return json.loads(_canonical(profiles)), None  # a plain JSON copy: the manifest holds what was used


def _previous_manifest(out_dir, fingerprint):
    """The manifest already in ``out_dir`` when it is of this dataset; a different dataset there is refused."""
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        others = _foreign_shards(out_dir, fingerprint)
        if others:
            raise InputError(out_dir, f"holds shards of another dataset ({others[0]}); use a new directory")
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        raise InputError(path, "unreadable manifest in the output directory; use a new directory") from None
    if not isinstance(manifest, dict) or manifest.get("fingerprint") != fingerprint:
        described = {k: manifest.get(k) for k in ("n", "seed", "shape")} if isinstance(manifest, dict) else {}
        raise InputError(out_dir, f"holds another dataset ({described}); use a new directory")
    return manifest


def _foreign_shards(out_dir, fingerprint):
    foreign = []
    for name in sorted(os.listdir(out_dir)):
        if name.startswith("shard-") and name.endswith(".npz"):
            meta = _shard_meta(os.path.join(out_dir, name))
            if meta is None or meta.get("fingerprint") != fingerprint:
                foreign.append(name)
    return foreign


def _shard_meta(path):
    """The ``meta`` record of a shard (read without loading its arrays), or None when unreadable."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("meta.npy") as handle:
            meta = np.lib.format.read_array(io.BytesIO(handle.read()), allow_pickle=False)
        return json.loads(meta.tobytes().decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def _kept_shard(out_dir, number, start, stop, fingerprint, previous):
    """The summary of shard ``number`` when a previous run left it complete and right, else None."""
    npz_name, labels_name = shard_names(number)
    npz_path, labels_path = os.path.join(out_dir, npz_name), os.path.join(out_dir, labels_name)
    if not (os.path.exists(npz_path) and os.path.exists(labels_path)):
        return None
    meta = _shard_meta(npz_path)
    if meta is None or meta.get("fingerprint") != fingerprint or (meta["start"], meta["stop"]) != (start, stop):
        return None
    if file_sha256(labels_path) != meta["labels_sha256"]:
        return None
    npz_sha256 = file_sha256(npz_path)
    if previous is not None:
        entries = [e for e in previous["shards"] if e["npz"] == npz_name]
        if not entries or entries[0]["sha256"]["npz"] != npz_sha256:
            return None
    with open(labels_path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    kinds, sources = {}, {}
    for record in records:
        for kind in record["kinds"]:
            kinds[kind] = kinds.get(kind, 0) + 1
        for source in record["sources"]:
            sources[source["kind"]] = sources.get(source["kind"], 0) + 1
    return {
        "number": number,
        "npz": npz_name,
        "labels": labels_name,
        "start": start,
        "stop": stop,
        "positive": sum(r["label"] for r in records),
        "sha256": {"npz": npz_sha256, "labels": meta["labels_sha256"]},
        "kinds": kinds,
        "sources": sources,
        "kept": True,
    }


def _remove_stale_temporaries(out_dir):
    """Temporary files of an interrupted run (a killed process cannot remove its own)."""
    for name in os.listdir(out_dir):
        if name.startswith((".shard-", ".labels-", f".{MANIFEST}.")):
            try:
                os.remove(os.path.join(out_dir, name))
            except OSError:
                pass


def _verify_shard(directory, entry):
    for key in ("npz", "labels"):
        path = os.path.join(os.fspath(directory), entry[key])
        if not os.path.exists(path):
            raise InputError(path, "missing from the dataset")
        if file_sha256(path) != entry["sha256"][key]:
            raise InputError(path, "sha256 differs from the manifest's: the file changed or is damaged")


def _add_counts(counts):
    total = {}
    for c in counts:
        for key, value in c.items():
            total[key] = total.get(key, 0) + value
    return dict(sorted(total.items()))


def _canonical(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()
