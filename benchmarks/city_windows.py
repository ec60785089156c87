"""Experiment (issue 18): training windows whose deformation is a real city field (Tay et al. 2022, training cities).

    .venv/bin/python benchmarks/city_windows.py DATA/10_tay_city_velocity training 200 41 city-train.npz fitted.json
    .venv/bin/python benchmarks/city_windows.py DATA/10_tay_city_velocity validation 60 42 city-val.npz fitted.json

(arguments: the Tay folder, the split, windows per city, seed, output, the fitted profiles of ``make evaluate``).
The candidate it fed lost on validation (docs/MODEL.md, "Fine-tuned on real city fields"); kept to reproduce it.

Each window: a 128 x 128 cut (50 m cells) of a training city's field against its stable ground, observed with the
fitted profiles' coverage and noise (as the shipped model's training data), labelled by the Tay benchmark's truth
rule (beyond 10 mm/yr over at least 0.5 km², on the whole city's smoothed field).
"""

import json
import sys

import numpy as np

from defoscan.benchmark import tay_scenes
from defoscan.model.data import WindowSet
from defoscan.synth import noise
from defoscan.synth.dataset import load_profiles
from defoscan.synth.sample import MIN_SEEN, _draw_coverage, draw_conditions

CELL, SIZE = 50.0, 128


def city_fields(data_dir, cities):
    out = []
    for city in cities:
        v, _, _ = tay_scenes.city_field(data_dir, city, cell_size=CELL)
        rel, smoothed, stats = tay_scenes.relative_field(v)
        labels, _ = tay_scenes.truth_regions(smoothed, CELL)
        out.append((city, rel.astype(np.float32), labels > 0))
        print(city, v.shape, f"{(labels > 0).sum() * CELL**2 / 1e6:.1f} km2 beyond", flush=True)
    return out


def draw_window(rng, field, truth, positive):
    valid = np.isfinite(field)
    h, w = field.shape
    for _ in range(200):
        if positive:
            rows, cols = np.nonzero(truth)
            k = rng.integers(rows.size)
            r0 = int(np.clip(rows[k] - rng.integers(8, SIZE - 8), 0, h - SIZE))
            c0 = int(np.clip(cols[k] - rng.integers(8, SIZE - 8), 0, w - SIZE))
        else:
            r0, c0 = int(rng.integers(0, h - SIZE + 1)), int(rng.integers(0, w - SIZE + 1))
        win = (slice(r0, r0 + SIZE), slice(c0, c0 + SIZE))
        if valid[win].mean() >= 0.5 and (truth[win].any() == positive):
            return field[win], truth[win], valid[win], (r0, c0)
    return None


def make(data_dir, cities, profiles, n_per_city, seed):
    fields = city_fields(data_dir, cities)
    rng = np.random.default_rng(seed)
    velocity, count, mask, label, info = [], [], [], [], []
    for city, field, truth in fields:
        made = 0
        while made < n_per_city:
            positive = bool(rng.random() < 0.5) and truth.any()
            drawn = draw_window(rng, field, truth, positive)
            if drawn is None:
                continue
            deformation, deforming, valid, corner = drawn
            profile = profiles[int(rng.integers(len(profiles)))]
            conditions = draw_conditions(rng, profile=profile)
            observed, cnt, _ = _draw_coverage(rng, (SIZE, SIZE), CELL, conditions)
            observed &= valid
            if observed.mean() < 0.02:
                continue
            shape = (SIZE, SIZE)
            atmosphere = noise.correlated_field(shape, rng, cell_size=CELL, **conditions["atmosphere"])
            ramp = noise.planar_ramp(shape, rng, max_gradient=conditions["ramp_gradient"], cell_size=CELL)
            point = noise.white_noise(shape, rng, noise.cell_sigma(conditions["point_noise"], cnt))
            spikes, _ = noise.spikes(
                observed,
                rng,
                rate=conditions["spike_rate"],
                amplitude_scale=conditions["spike_scale"],
                tail=conditions["spike_tail"],
            )
            signal = np.nan_to_num(deformation) + atmosphere + ramp + point + spikes
            velocity.append(np.where(observed, signal, np.nan).astype(np.float32))
            count.append(np.where(observed, cnt, 0).astype(np.uint16))
            mask.append(deforming)
            seen = int((deforming & observed).sum())
            label.append(int(seen >= MIN_SEEN))
            peak = float(np.abs(np.nan_to_num(deformation)[deforming]).max()) if deforming.any() else 0.0
            info.append(
                {
                    "kinds": ["city"] if label[-1] else [],
                    "hard": False,
                    "peak": peak if label[-1] else 0.0,
                    "coverage_fraction": float(observed.mean()),
                    "cell_size": CELL,
                    "city": city,
                    "corner": corner,
                }
            )
            made += 1
    n = len(label)
    return WindowSet(
        np.stack(velocity),
        np.stack(count),
        np.stack(mask),
        np.array(label, dtype=np.int8),
        np.arange(n, dtype=np.int64),
        info,
        CELL,
        f"cities-{seed}-{n}-{'-'.join(cities)}"[:200],
    )


if __name__ == "__main__":
    data_dir, split, n_per_city, seed, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    cities = tay_scenes.split_cities(split)
    profiles = load_profiles(sys.argv[6])
    ws = make(data_dir, cities, profiles, n_per_city, seed)
    np.savez_compressed(out, velocity=ws.velocity, count=ws.count, mask=ws.mask, label=ws.label)
    json.dump({"info": ws.info, "fingerprint": ws.fingerprint}, open(out + ".json", "w"))
    print("windows", len(ws.label), "positive", int(ws.label.sum()))
