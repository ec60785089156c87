"""``pip wheel .`` gives an installable wheel with the bundled model, its card and the command (issue 17)."""

import subprocess
import sys
import zipfile

from conftest import REPO


def test_the_wheel_holds_the_package_the_model_and_the_command(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("defoscan-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    for module in ("__init__.py", "api.py", "pipeline.py", "detectors.py", "gridspec.py", "cli.py"):
        assert f"defoscan/{module}" in names
    assert {"defoscan/data/model/defoscan-compact.safetensors", "defoscan/data/model/defoscan-compact.json"} <= names
    assert "defoscan = defoscan.cli:main" in entry_points
    assert "Requires-Dist: torch" in metadata
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)
