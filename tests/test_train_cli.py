"""``defoscan train``: a quick model from a dataset, usable by detect's loader; bad input in one line."""

import os

import pytest

from defoscan.cli import main
from defoscan.model import load_model


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_quick_training_writes_a_loadable_model(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "quick.safetensors"
    status, stdout, err = run_cli(["train", tiny_dataset, "--out", out, "--quick", "--threads", "1"], capsys)
    assert status == 0, err
    assert "epoch 1/2" in stdout and "epoch 2/2" in stdout and "validation AUC" in stdout
    model, card = load_model(out)
    assert card["options"]["width"] == 8 and card["input"]["window"] == 32
    held_out = card["data_profile"]["val"]["n"]
    assert held_out == 5  # every tenth of 48 samples: indices 0, 10, 20, 30, 40
    assert sorted(os.listdir(tmp_path)) == ["quick.json", "quick.safetensors"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--arch", "resnet"], "--arch must be compact or alexnet"),
        (["--mode", "colour"], "--mode must be one of"),
        (["--epochs", "0"], "must be >= 1"),
    ],
)
def test_bad_options_are_one_line(tiny_dataset, tmp_path, capsys, extra, says):
    out = tmp_path / "m.safetensors"
    status, _, err = run_cli(["train", tiny_dataset, "--out", out, *extra], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and says in err, err
    assert not os.listdir(tmp_path)


def test_not_a_dataset_is_one_line(tmp_path, capsys):
    status, _, err = run_cli(["train", tmp_path, "--out", tmp_path / "m.safetensors"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "manifest.json" in err, err
    status, _, err = run_cli(["train", tmp_path, "--out", tmp_path / "m.pt"], capsys)
    assert status == 2 and ".safetensors" in err


def test_imagenet_weights_only_for_alexnet(tiny_dataset, tmp_path, capsys):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"not used")
    status, _, err = run_cli(
        ["train", tiny_dataset, "--out", tmp_path / "m.safetensors", "--imagenet", weights], capsys
    )
    assert status == 2 and "--arch alexnet" in err and len(err.strip().splitlines()) == 1
    status, _, err = run_cli(
        [
            "train",
            tiny_dataset,
            "--out",
            tmp_path / "m.safetensors",
            "--arch",
            "alexnet",
            "--imagenet",
            tmp_path / "none.pth",
        ],
        capsys,
    )
    assert status == 2 and "no such file" in err


def test_max_train_draws_evenly_on_several_datasets(tiny_dataset, tmp_path, capsys, monkeypatch):
    import defoscan.model.data as data

    limits, load = [], data.load_windows

    def recording(directory, *, limit=None, **options):
        limits.append(limit)
        return load(directory, limit=limit, **options)

    monkeypatch.setattr(data, "load_windows", recording)
    out = tmp_path / "m.safetensors"
    args = ["train", tiny_dataset, tiny_dataset, "--val", tiny_dataset, "--out", out, "--width", "8", "--epochs", "1"]
    status, _, err = run_cli([*args, "--max-train", "21", "--max-val", "8"], capsys)
    assert status == 0, err
    assert limits == [11, 11, 8]  # ceil(21 / 2) from each training set, then the validation set
    assert load_model(out)[1]["data_profile"]["train"]["n"] == 21


def test_fine_tuning_from_a_model_of_another_network_is_one_line(tiny_dataset, tmp_path, capsys):
    first = tmp_path / "first.safetensors"
    assert run_cli(["train", tiny_dataset, "--out", first, "--quick", "--threads", "1"], capsys)[0] == 0
    args = ["train", tiny_dataset, "--out", tmp_path / "m.safetensors", "--quick", "--threads", "1", "--init"]
    status, _, err = run_cli([*args, tmp_path / "none.safetensors"], capsys)
    assert status == 2 and "none.safetensors: no such file" in err
    status, _, err = run_cli([*args, first, "--mode", "raw"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "first.safetensors: its input recipe" in err, err
    assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "m.checkpoint").exists()
    status, stdout, err = run_cli([*args, first], capsys)
    assert status == 0 and "started from the weights of" in stdout, err
