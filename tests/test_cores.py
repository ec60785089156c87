"""defoscan.cores: the core count every pool is sized by."""

import os

from defoscan.cores import usable_cores


def test_usable_cores_follows_the_affinity_mask():
    cores = usable_cores()
    assert cores >= 1
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))
        original = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, {min(original)})
            assert usable_cores() == 1
        finally:
            os.sched_setaffinity(0, original)
