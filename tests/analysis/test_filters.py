"""Finding the feature maps of a G layer that fire inside an image region (the paper's Sec. 6.1)."""

import numpy as np
import pytest

from dcgan_jax.analysis import filters
from dcgan_jax.nn import generate


@pytest.fixture
def setup(untrained_generator):
    """(the tiny config's model group, G variables at init, 12 z)."""
    config, g_vars, z = untrained_generator
    return config.model, g_vars, z


def test_mask_at_layer_averages_cells():
    mask = np.zeros((1, 8, 8), bool)
    mask[0, :4, :2] = True
    cells = filters.mask_at_layer(mask, 4, 4)
    assert cells.shape == (1, 4, 4)
    np.testing.assert_array_equal(cells[0, :2, 0], [1.0, 1.0])
    assert cells[0].sum() == 2.0


@pytest.mark.parametrize("method", ["logistic", "ratio"])
def test_maps_inside_mask_finds_a_map_that_fires_only_there(setup, method):
    model, g_vars, z = setup
    # The mask is where map 4 of layer 1 fires most (its top 10% of cells): map 4 must rank first.
    acts = generate.activations(model, g_vars, z, 1)
    hot = acts[..., 4] > np.quantile(
        acts[..., 4], 0.9
    )  # (N, 8, 8) cells where map 4 fires strongly
    image_masks = np.repeat(np.repeat(hot, 4, axis=1), 4, axis=2)  # to 32x32 pixels
    order, scores = filters.maps_inside_mask(model, g_vars, z, image_masks, 1, method=method)
    assert sorted(order.tolist()) == list(range(16)) and scores.shape == (16,)
    assert order[0] == 4 and scores[4] > 0
    with pytest.raises(ValueError, match="some, but not all"):
        filters.maps_inside_mask(model, g_vars, z, np.ones((32, 32), bool), 1, method=method)


def test_mask_at_layer_needs_a_multiple_of_the_layer_size():
    with pytest.raises(ValueError, match="not a multiple"):
        filters.mask_at_layer(np.zeros((1, 10, 10), bool), 4, 4)


def test_maps_inside_mask_rejects_an_unknown_method(setup):
    model, g_vars, z = setup
    with pytest.raises(ValueError, match="'svm' is not supported"):
        filters.maps_inside_mask(
            model, g_vars, z, filters.box_mask(32, (0, 0, 16, 32)), 1, method="svm"
        )
