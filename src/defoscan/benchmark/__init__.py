"""The benchmark harness, apart from the pipeline: not part of a detection run.

- :mod:`defoscan.benchmark.suite`: the scene benchmark behind ``defoscan evaluate-scenes`` and ``make evaluate``
  (every detector, baseline and ablation run through :func:`defoscan.pipeline.detect` on a suite of synthetic
  scenes and the real maps, scored and pooled; docs/EVALUATION.md).
- :mod:`defoscan.benchmark.truth_fields`: synthetic maps with known truth and hold-out masks for measuring the gap
  filling (docs/FILL.md).

``defoscan evaluate`` (scoring detections against a truth, :mod:`defoscan.evaluate`) is a user command and lives
with the pipeline.
"""
