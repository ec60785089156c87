"""A synthetic dataset held in memory for training and testing a network, gap-filled on request.

Everything the training loop and the test-set evaluation need of a :mod:`defoscan.synth.dataset` directory: the
velocity windows, point counts, deformation masks, labels, and per sample its kinds, hardness and peak speed.
Windows are small (128 x 128 float32 is 64 kB), so 20,000 of them fit in memory (1.3 GB of velocity).

With ``fill=True`` every window is gap-filled first by :func:`defoscan.fill.fill_array` (the modified matrix
completion, as ``detect`` fills a map). Filling is the costly step (about 0.2 s a window), so the filled windows are
cached in the dataset directory under ``.fill-cache/``, keyed by the dataset's fingerprint and the fill method, and
made in parallel processes.
"""

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from defoscan.outputs import atomic_path
from defoscan.synth.dataset import load_shard, read_manifest

FILL_CACHE = ".fill-cache"


@dataclass
class WindowSet:
    """Samples of a synthetic dataset as arrays.

    Attributes
    ----------
    velocity : numpy.ndarray of float32
        ``(n, rows, columns)``, mm/yr, NaN = no data (gap-filled when loaded with ``fill=True``).
    count : numpy.ndarray of uint16
        Points per cell.
    mask : numpy.ndarray of bool
        Deforming cells (the truth).
    label : numpy.ndarray of int8
        1 = deformation present and seen.
    index : numpy.ndarray of int64
        Sample numbers in the dataset.
    info : list of dict
        Per sample: ``kinds``, ``hard``, ``peak`` (largest ``|LOS deformation|`` on a masked cell, mm/yr, 0 for
        negatives), ``coverage_fraction``, ``cell_size`` (metres).
    cell_size : float
        Metres; the smallest when the windows have several (:func:`concat_windows`, :attr:`cell_sizes`).
    fingerprint : str
        The dataset manifest's fingerprint.
    filled : bool
    """

    velocity: np.ndarray
    count: np.ndarray
    mask: np.ndarray
    label: np.ndarray
    index: np.ndarray
    info: list
    cell_size: float
    fingerprint: str
    filled: bool = False

    def __len__(self):
        return int(self.label.size)

    @property
    def cell_sizes(self):
        """The windows' distinct cell sizes, metres, ascending (a list)."""
        return sorted({float(info.get("cell_size", self.cell_size)) for info in self.info} or {self.cell_size})

    def window_cell_sizes(self):
        """Each window's cell size, metres, ``(n,)``."""
        return np.array([float(info.get("cell_size", self.cell_size)) for info in self.info])

    def subset(self, which):
        """The samples selected by a boolean mask or an index array."""
        which = np.flatnonzero(which) if np.asarray(which).dtype == bool else np.asarray(which)
        return WindowSet(
            self.velocity[which],
            self.count[which],
            self.mask[which],
            self.label[which],
            self.index[which],
            [self.info[i] for i in which],
            self.cell_size,
            self.fingerprint,
            self.filled,
        )


def load_windows(directory, *, limit=None, fill=False, workers=2):
    """Load a synthetic dataset (its first ``limit`` samples) into memory.

    Parameters
    ----------
    directory : str or os.PathLike
        A dataset written by ``defoscan synth``.
    limit : int, optional
        Samples to load, from the first shard on.
    fill : bool
        Gap-fill every window with the modified matrix completion (cached, see the module notes).
    workers : int
        Processes filling windows.

    Returns
    -------
    WindowSet
    """
    manifest = read_manifest(directory)
    n = manifest["n"] if limit is None else min(int(limit), manifest["n"])
    parts = {"velocity": [], "count": [], "mask": [], "label": [], "index": []}
    info = []
    loaded = 0
    for entry in manifest["shards"]:
        if loaded >= n:
            break
        shard = load_shard(os.path.join(os.fspath(directory), entry["npz"]))
        take = min(len(shard["label"]), n - loaded)
        for name in parts:
            parts[name].append(shard[name][:take])
        for k in range(take):
            line = shard["labels"][k]
            masked = shard["mask"][k]
            peak = float(np.abs(shard["deformation"][k][masked]).max()) if masked.any() else 0.0
            info.append(
                {
                    "kinds": line.get("kinds", []),
                    "hard": bool(line.get("hard")),
                    "peak": peak,
                    "coverage_fraction": line.get("coverage_fraction"),
                    "cell_size": float(manifest["cell_size"]),
                }
            )
        loaded += take
    windows = WindowSet(
        velocity=np.concatenate(parts["velocity"]).astype(np.float32),
        count=np.concatenate(parts["count"]),
        mask=np.concatenate(parts["mask"]),
        label=np.concatenate(parts["label"]).astype(np.int8),
        index=np.concatenate(parts["index"]).astype(np.int64),
        info=info,
        cell_size=float(manifest["cell_size"]),
        fingerprint=str(manifest["fingerprint"]),
    )
    if fill:
        windows.velocity = filled_windows(directory, windows, workers=workers)
        windows.filled = True
    return windows


def concat_windows(sets):
    """One :class:`WindowSet` of several (datasets of one window shape), in order.

    The parts may differ in cell size (a network trained across scales, issue 18): each window keeps its own in
    its ``info``, :attr:`WindowSet.cell_sizes` lists them and ``cell_size`` is the smallest. The fingerprint is
    that of the parts joined, so a model card still names exactly the data it saw.
    """
    sets = list(sets)
    if len(sets) == 1:
        return sets[0]
    first = sets[0]
    for other in sets[1:]:
        if other.velocity.shape[1:] != first.velocity.shape[1:]:
            raise ValueError("datasets differ in window shape")
        if other.filled != first.filled:
            raise ValueError("filled and unfilled datasets cannot be mixed")
    return WindowSet(
        np.concatenate([w.velocity for w in sets]),
        np.concatenate([w.count for w in sets]),
        np.concatenate([w.mask for w in sets]),
        np.concatenate([w.label for w in sets]),
        np.concatenate([w.index for w in sets]),
        [info for w in sets for info in w.info],
        min(w.cell_size for w in sets),
        "+".join(w.fingerprint for w in sets),
        first.filled,
    )


def filled_windows(directory, windows, *, workers=2, method="completion"):
    """The windows gap-filled, from the cache when it holds them (see the module notes).

    Returns
    -------
    numpy.ndarray of float32
        ``(n, rows, columns)``.
    """
    cache_dir = os.path.join(os.fspath(directory), FILL_CACHE)
    key = f"{windows.fingerprint[:16]}-{method}"
    array_path = os.path.join(cache_dir, f"{key}.npy")
    cached = None
    if os.path.exists(array_path):
        cached = np.load(array_path, mmap_mode="r")
    n = len(windows)
    if cached is not None and cached.shape[0] >= n:
        return np.asarray(cached[:n], dtype=np.float32)
    start = 0 if cached is None else cached.shape[0]
    done = [] if cached is None else [np.asarray(cached, dtype=np.float32)]
    chunks = [(s, min(s + 64, n)) for s in range(start, n, 64)]
    jobs = [(windows.velocity[a:b], windows.count[a:b], windows.cell_size, method) for a, b in chunks]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            done += list(pool.map(_fill_chunk, jobs))
    else:
        done += [_fill_chunk(job) for job in jobs]
    filled = np.concatenate(done).astype(np.float32)
    os.makedirs(cache_dir, exist_ok=True)
    with atomic_path(array_path) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, filled)
    with atomic_path(os.path.join(cache_dir, f"{key}.json")) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump({"fingerprint": windows.fingerprint, "method": method, "n": int(filled.shape[0])}, handle)
    return filled


def _fill_chunk(job):
    from defoscan.fill import fill_array
    from defoscan.fill.lowrank import one_blas_thread

    velocity, count, cell_size, method = job
    with one_blas_thread():
        return np.stack(
            [fill_array(v, c, cell_size=cell_size, method=method) for v, c in zip(velocity, count, strict=True)]
        )
