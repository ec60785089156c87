"""The repository holds the project's own work only: no file copied from the real data, nothing oversized."""

import hashlib
import subprocess

import pytest

from conftest import REPO, real_path

MAX_HASHED = 50 * 2**20  # real files larger than this are not hashed (none is tracked: see the size check)
MAX_TRACKED = 2 * 2**20  # bytes a tracked file may have: the bundled model's weights are the largest (1.3 MB)


def tracked_files():
    """Paths tracked by git, relative to the repository; skips outside a git checkout."""
    try:
        done = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in done.stdout.decode().split("\0") if name and (REPO / name).is_file()]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_licence(path):
    """A standard licence text: the same bytes wherever it is kept (the root LICENSE is the project's Apache-2.0)."""
    return path.name.upper().startswith(("LICENSE", "LICENCE"))


@pytest.fixture(scope="module")
def real_hashes():
    real = real_path()
    return {
        sha256(p): p.relative_to(real)
        for p in real.rglob("*")
        if p.is_file() and not is_licence(p) and p.stat().st_size <= MAX_HASHED
    }


def test_no_tracked_file_is_a_copy_of_real_data(real_hashes):
    assert len(real_hashes) > 10  # the real folder was found and read
    copies = {str(p.relative_to(REPO)): str(real_hashes[h]) for p in tracked_files() if (h := sha256(p)) in real_hashes}
    assert copies == {}


def test_tracked_files_are_small():
    sizes = {str(p.relative_to(REPO)): p.stat().st_size for p in tracked_files()}
    assert "src/defoscan/data/model/defoscan-compact.safetensors" in sizes
    assert {name: size for name, size in sizes.items() if size > MAX_TRACKED} == {}
    assert sum(sizes.values()) < 20 * 2**20


def test_no_data_folder_in_tests():
    assert not [p for p in tracked_files() if p.relative_to(REPO).parts[:2] == ("tests", "data")]
