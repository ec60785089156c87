"""Table dialects: delimiters and decimal commas, detected or given, read in memory and streamed."""

import gzip
import zipfile

import numpy as np
import pytest

from defoscan.errors import InputError
from defoscan.io import ReadOptions, read_input
from defoscan.io.table import open_table, stream_table

LON = [9.0177, 9.0211, 9.0302, 9.0415]
LAT = [45.1012, 45.1105, 45.1203, 45.1311]
VEL = [-1.25, 3.5, 0.125, -12.75]


def _text(sep, decimal, names=("lon", "lat", "velocity")):
    def cell(v):
        return str(v).replace(".", decimal)

    rows = "".join(sep.join(cell(v) for v in row) + "\n" for row in zip(LON, LAT, VEL, strict=True))
    return sep.join(names) + "\n" + rows


def _assert_read(path, options=None):
    ds = read_input(path, options or ReadOptions())
    np.testing.assert_allclose(np.sort(ds["velocity"].values), np.sort(VEL), rtol=1e-6)
    assert ds.sizes["point"] == 4
    return ds


def _streamed_velocities(path, options=None):
    options = options or ReadOptions()
    stream = stream_table(open_table(path, options), options)
    batches = list(stream.batches)
    lon = np.concatenate([a for a, _, _ in batches])
    return lon, np.concatenate([v for _, _, v in batches])


def test_semicolon_with_decimal_commas_detected(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(_text(";", ","))
    source = open_table(path)
    assert (source.delimiter, source.decimal) == (";", ",")
    _assert_read(path)
    lon, velocity = _streamed_velocities(path)
    np.testing.assert_allclose(lon, LON)
    np.testing.assert_allclose(velocity, VEL, rtol=1e-6)


def test_semicolon_with_decimal_points_detected(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(_text(";", "."))
    assert open_table(path).decimal == "."
    _assert_read(path)


def test_decimal_commas_with_explicit_options(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text(_text(";", ","))
    options = ReadOptions(delimiter=";", decimal=",")
    assert open_table(path, options).decimal == ","
    _assert_read(path, options)


def test_tab_delimited(tmp_path):
    path = tmp_path / "points.tsv"
    path.write_text(_text("\t", "."))
    assert open_table(path).delimiter == "\t"
    _assert_read(path)
    _assert_read(path, ReadOptions(delimiter="tab"))
    _assert_read(path, ReadOptions(delimiter="\\t"))  # as typed in a shell


def test_pipe_with_decimal_commas(tmp_path):
    path = tmp_path / "points.txt"
    path.write_text(_text("|", ","))
    assert (open_table(path).delimiter, open_table(path).decimal) == ("|", ",")
    _assert_read(path)


def test_decimal_commas_gzipped(tmp_path):
    path = tmp_path / "export.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(_text(";", ","))
    _assert_read(path)
    _, velocity = _streamed_velocities(path)
    np.testing.assert_allclose(velocity, VEL, rtol=1e-6)


def test_decimal_commas_inside_a_zip(tmp_path):
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("export.csv", _text(";", ","))
    _assert_read(path)


def test_decimal_commas_with_bom_and_crlf(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _text(";", ",").replace("\n", "\r\n").encode())
    _assert_read(path)


def test_wrong_explicit_delimiter_is_one_line(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text(_text(",", "."))
    with pytest.raises(InputError, match="--delimiter ';': the header has none; it looks ','-delimited") as err:
        read_input(path, ReadOptions(delimiter=";"))
    assert "\n" not in str(err.value)


def test_wrong_explicit_decimal_is_one_line_with_a_hint(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(_text(";", ","))
    with pytest.raises(InputError, match=r"pass --decimal ,") as err:
        read_input(path, ReadOptions(decimal="."))
    assert "\n" not in str(err.value)


def test_unknown_options_refused(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text(_text(",", "."))
    with pytest.raises(InputError, match="unknown --delimiter"):
        open_table(path, ReadOptions(delimiter="#"))
    with pytest.raises(InputError, match="unknown --decimal"):
        open_table(path, ReadOptions(decimal=";"))


def test_decimal_comma_missing_values_are_dropped(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("lon;lat;velocity\n9,01;45,1;1,5\n9,02;45,2;\n9,03;45,3;-2,25\n")
    ds = read_input(path)
    np.testing.assert_allclose(np.sort(ds["velocity"].values), [-2.25, 1.5])
