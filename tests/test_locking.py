"""defoscan.locking: one run at a time into an output directory, and one clean-up rule for what killed runs left."""

import json
import os
import subprocess
import sys
import threading

import pytest

from defoscan.cli import main
from defoscan.errors import InputError
from defoscan.locking import lock_path, output_lock
from defoscan.outputs import staged_directory
from defoscan.pipeline import work_directory

BASELINE = ["--detector", "threshold"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}

# A second process holding the lock of argv[1] (in a staged_directory with argv[2] == "staging", writing a file
# into it) until a line arrives on stdin; it prints "held" once it holds it.
HOLDER = """
import os, sys
from defoscan.locking import output_lock
from defoscan.outputs import staged_directory
if sys.argv[2] == "staging":
    with staged_directory(sys.argv[1]) as staging:
        open(os.path.join(staging, "held.txt"), "w").write("written by the live run")
        print("held", staging, flush=True)
        sys.stdin.readline()
else:
    with output_lock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.readline()
"""


@pytest.fixture(scope="module")
def scene_csv(tmp_path_factory):
    """A synthetic scene of 128 x 128 cells of 50 m (four chunks of 64): a run takes about two seconds."""
    from defoscan.synth.scene import make_scene, write_scene

    points, truths, info = make_scene(5, shape=(128, 128), cell_size=50.0)
    csv, _, _ = write_scene(str(tmp_path_factory.mktemp("scene")), "scene", points, truths, info)
    return csv


@pytest.fixture(scope="module")
def reference(scene_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "out"
    with pytest.raises(SystemExit) as status:
        main(["detect", *BASELINE, scene_csv, "--out", str(out), "--chunk", "64", "-q"])
    assert status.value.code == 0
    return out


def holder(out, mode="lock"):
    """A live process holding ``out``'s lock: (the process, what it printed once it held it)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    line = child.stdout.readline()
    assert line.startswith("held"), line
    return child, line.split()[1:]


def release(child):
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.wait(timeout=60) == 0


def finished(child):
    """(exit status, stderr) of a child run once it ends."""
    err = child.communicate(timeout=300)[1]
    return child.returncode, err


def leftovers(parent, out):
    """Names beside ``out`` that a run of it leaves only while it runs, or when killed."""
    return sorted(n for n in os.listdir(parent) if n.startswith(f".{os.path.basename(out)}."))


def assert_same_outputs(out, reference):
    for name in ("velocity.tif", "velocity_filled.tif", "probability.tif", "detections.geojson", "detections.gpkg"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert (
        json.loads((out / "run.json").read_text())["detections"]
        == json.loads((reference / "run.json").read_text())["detections"]
    )


def test_the_lock_is_reentrant_in_its_thread_and_refused_to_another(tmp_path):
    out = tmp_path / "deep" / "out"
    refused = []

    def other():
        try:
            with output_lock(out):
                pass
        except InputError as error:
            refused.append(str(error))

    with output_lock(out):
        assert os.path.exists(lock_path(out))
        with output_lock(out):  # detect holds it, and the writing of its outputs takes it again
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        with staged_directory(out) as staging:
            (open(os.path.join(staging, "a.txt"), "w")).close()
    assert refused == [f"{out}: another defoscan run (process {os.getpid()}) is writing this output directory; "
                       "wait until it ends, or pass --wait to start then"]  # fmt: skip
    assert os.listdir(tmp_path / "deep") == ["out"]  # the lock file gone with the lock
    with output_lock(tmp_path / "new" / "out"):
        pass
    assert not (tmp_path / "new").exists()  # the parent made for the lock file removed with it


def test_a_file_system_without_locks_is_warned_about_and_the_run_goes_on(tmp_path, monkeypatch):
    import errno

    from defoscan.log import collected_warnings

    def no_locks(descriptor, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr("defoscan.locking.fcntl.flock", no_locks)
    out = tmp_path / "out"
    with collected_warnings() as messages, staged_directory(out) as staging:
        (open(os.path.join(staging, "a.txt"), "w")).close()
    (message,) = messages
    assert message == f"cannot lock {lock_path(out)} (No locks available): another run into {out} would not be stopped"
    assert os.listdir(tmp_path) == ["out"]


def test_a_second_run_is_refused_in_one_line_or_waits(scene_csv, reference, tmp_path, capsys):
    out = tmp_path / "out"
    child, _ = holder(out)
    try:
        with pytest.raises(SystemExit) as status:
            main(["detect", *BASELINE, scene_csv, "--out", str(out), "--chunk", "64"])
        err = capsys.readouterr().err
        assert status.value.code == 2
        assert err == (
            f"defoscan: error: {out}: another defoscan run (process {child.pid}) is writing this output directory; "
            "wait until it ends, or pass --wait to start then\n"
        )
        assert not out.exists() and not os.path.exists(work_directory(out))
        waiting = subprocess.Popen(
            [sys.executable, "-m", "defoscan", "detect", *BASELINE, scene_csv, "--out", str(out), "--chunk", "64"]
            + ["--wait", "-v"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=ENV,
        )
        line = waiting.stderr.readline()
        while line and not line.startswith("defoscan: waiting"):  # -v: the libraries' warnings too, if any
            line = waiting.stderr.readline()
        assert line == f"defoscan: waiting for the other defoscan run (process {child.pid}) writing {out} to end\n"
        assert waiting.poll() is None and not out.exists()
    finally:
        release(child)
    rest = waiting.communicate(timeout=120)[1]
    assert waiting.returncode == 0, rest
    assert_same_outputs(out, reference)
    assert leftovers(tmp_path, out) == []


def test_a_live_runs_staging_is_not_cleaned_up_by_another_run(scene_csv, tmp_path, capsys):
    # The bug: the loser's stale-staging clean-up removed the winner's staging (FileNotFoundError in the winner).
    out = tmp_path / "out"
    stale = tmp_path / ".out.partial-killedwhilewriting"  # a killed run's: no live process holds it
    stale.mkdir()
    (stale / "run.json").write_text("{}")
    child, (staging,) = holder(out, "staging")
    try:
        assert not stale.exists()  # removed by the live run as it took the lock
        with pytest.raises(SystemExit) as status:
            main(["detect", *BASELINE, scene_csv, "--out", str(out)])
        assert status.value.code == 2 and "another defoscan run" in capsys.readouterr().err
        assert os.path.isfile(os.path.join(staging, "held.txt"))
    finally:
        release(child)
    assert (out / "held.txt").read_text() == "written by the live run"
    assert leftovers(tmp_path, out) == []


def test_runs_started_together_into_one_output_end_in_one_whole_set(scene_csv, reference, tmp_path):
    """Real concurrent runs (chunked, one with --wait): each ends cleanly or is refused in one line, never crashes."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "defoscan", "detect", *BASELINE, scene_csv, "--out", str(out), "--chunk", "64"]
    runs = [command, [*command, "--wait"]]
    children = [
        subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV) for c in runs
    ]
    ended = [finished(child) for child in children]
    for status, err in ended:
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if not line.startswith("defoscan: warning:")]
        if status == 2:
            assert len(lines) == 1 and "another defoscan run (process" in lines[0], err
        else:
            assert status == 0 and lines == [], err
    assert ended[1][0] == 0  # --wait: waits its turn
    assert_same_outputs(out, reference)
    assert leftovers(tmp_path, out) == []


def test_the_same_clean_up_rule_for_a_run_held_in_memory(scene_csv, tmp_path):
    """An in-memory run killed while writing leaves its staging; an in-memory rerun removes it (as a chunked one)."""
    out = tmp_path / "out"
    killed = (
        "import os, signal, sys\n"
        "import defoscan.result\n"
        "defoscan.result.write_geojson = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from defoscan.cli import main\n"
        f"main(['detect', '--detector', 'threshold', {scene_csv!r}, '--out', {str(out)!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", killed], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == -9, done.stderr
    left = leftovers(tmp_path, out)
    assert [n.split("-")[0] for n in left] == [".out.defoscan", ".out.partial"], left  # lock file, staging
    with pytest.raises(SystemExit) as status:
        main(["detect", *BASELINE, scene_csv, "--out", str(out), "-q"])
    assert status.value.code == 0
    assert leftovers(tmp_path, out) == [] and (out / "run.json").exists()
