import numpy as np
import pytest

from defoscan.model.inputs import DEFAULT_RECIPE, input_channels, input_names, recipe_with, window_input


def test_window_input_ignores_the_reference_level():
    rng = np.random.default_rng(0)
    v = rng.normal(0, 5, (32, 32)).astype(np.float32)
    v[rng.random((32, 32)) < 0.5] = np.nan
    a = window_input(v, DEFAULT_RECIPE)
    b = window_input(v + 37.0, DEFAULT_RECIPE)
    assert a.shape == (input_channels(DEFAULT_RECIPE), 32, 32)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.array_equal(a[-1], np.isfinite(v).astype(np.float32))  # validity channel
    assert np.all(a[:, ~np.isfinite(v)] == 0)


def test_a_stack_is_each_window_alone():
    v = np.random.default_rng(1).normal(0, 5, (3, 16, 16)).astype(np.float32)
    stack = window_input(v, DEFAULT_RECIPE)
    for i in range(3):
        np.testing.assert_array_equal(stack[i], window_input(v[i], DEFAULT_RECIPE))


def test_recipes_of_each_mode():
    assert input_names(recipe_with(mode="raw")) == ["velocity", "valid"]
    assert input_channels(recipe_with(mode="single")) == 3 == input_channels(DEFAULT_RECIPE)
    enhanced = recipe_with(mode="enhanced")
    assert input_channels(enhanced) == 7 and enhanced["intervals"] == [2.0, 6.32455532033676, 20.0]
    with pytest.raises(ValueError, match="unknown recipe keys"):
        recipe_with(colour="red")
