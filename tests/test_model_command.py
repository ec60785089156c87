"""`make model`, the one documented command that retrains the shipped model, trains what the shipped card says it
was trained on (issue 18): the same data, sizes and options. Read from `make -n`, so nothing is trained here."""

import json
import shlex
import shutil
import subprocess

import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture(scope="module")
def commands():
    out = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "model", "MODEL_DIR=work", "REAL_DATA=real"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.replace("\\\n", " ").splitlines()
    return [shlex.split(line.split("|| ", 1)[-1]) for line in lines if "defoscan " in line]


def _option(words, name):
    return words[words.index(name) + 1]


def test_make_model_trains_what_the_shipped_card_records(commands):
    card = json.loads((REPO / "src/defoscan/data/model/defoscan-compact.json").read_text())
    synth = {_option(w, "--out"): w for w in commands if w[1] == "synth" and "--n" in w}
    (train,) = [w for w in commands if w[1] == "train"]
    recipe = card["recipe"]["train"]
    # The data: two training sets of seeds 11 and 14 and the validation set of seed 12, drawn from the fitted profiles.
    assert [_option(synth[d], "--seed") for d in ("work/fit-train", "work/fit-train2", "work/fit-val")] == [
        "11",
        "14",
        "12",
    ]
    assert all(_option(words, "--profile") == "work/fitted.json" for words in synth.values())
    assert train[2:4] == ["work/fit-train", "work/fit-train2"] and _option(train, "--val") == "work/fit-val"
    assert int(_option(synth["work/fit-val"], "--n")) == card["data_profile"]["val"]["n"]
    # The sizes and options.
    assert int(_option(train, "--max-train")) == recipe["max_train"] == card["data_profile"]["train"]["n"]
    assert int(_option(train, "--epochs")) == recipe["epochs"]
    assert ("--fcn" in train) == recipe["fcn"] and ("--fill" in train) == card["input"]["fill"]
    # The options left at their defaults are the card's (the command line's defaults, docs/MODEL.md).
    assert (recipe["width"], recipe["seed"], recipe["patience"], recipe["threads"]) == (16, 0, 3, 2)
    assert _option(train, "--out") == "work/defoscan-compact.safetensors"


def test_make_model_fits_the_profiles_of_the_real_maps(commands):
    fits = [w for w in commands if w[1] == "synth" and "--fit" in w]
    assert [_option(w, "--fit") for w in fits] == [
        "real/01_kirishima_mintpy_alos2/velocity.h5",
        "real/03_egms_ustica_italy/EGMS_L2b_*.zip",
    ]
    assert _option(fits[0], "--cell-size") == "50"
