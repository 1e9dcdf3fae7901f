"""map_batches: the one batched-apply loop gives what a single call on all inputs gives."""

import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.nn.batched import map_batches


def _affine(x):
    return 2.0 * x.sum(axis=-1) + 1.0


@pytest.mark.parametrize("batch_size", [1, 3, 4, 7, 10, 100])
def test_equals_a_single_call_for_uneven_sizes(batch_size):
    inputs = np.random.default_rng(0).normal(size=(10, 5)).astype(np.float32)
    got = map_batches(_affine, inputs, batch_size)
    assert isinstance(got, np.ndarray) and got.shape == (10,) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.asarray(_affine(jnp.asarray(inputs))), rtol=1e-6)


def test_batches_are_consecutive_and_only_the_last_is_smaller():
    seen = []

    def record(x):
        seen.append(x.shape[0])
        return x

    inputs = np.arange(11, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(map_batches(record, inputs, 4), inputs)
    assert seen == [4, 4, 3]


def test_pytree_outputs_are_concatenated_leaf_by_leaf():
    inputs = np.arange(14, dtype=np.float32).reshape(7, 2)
    got = map_batches(
        lambda x: {"sum": x.sum(-1), "pair": (x * 2, x[:, :1].astype(jnp.int32))}, inputs, 3
    )
    np.testing.assert_array_equal(got["sum"], inputs.sum(-1))
    np.testing.assert_array_equal(got["pair"][0], inputs * 2)
    assert got["pair"][1].dtype == np.int32 and got["pair"][1].shape == (7, 1)
    np.testing.assert_array_equal(got["pair"][1][:, 0], inputs[:, 0].astype(np.int32))


def test_prepare_is_applied_to_each_host_batch():
    prepared = []

    def prepare(batch):
        assert isinstance(batch, np.ndarray) and batch.dtype == np.uint8
        prepared.append(len(batch))
        return batch.astype(np.float32) / 255.0

    inputs = np.random.default_rng(1).integers(0, 256, (9, 4, 4, 1)).astype(np.uint8)
    got = map_batches(lambda x: x.mean(axis=(1, 2, 3)), inputs, 4, prepare)
    assert prepared == [4, 4, 1]  # batch by batch: the whole input is never converted at once
    np.testing.assert_allclose(
        got, inputs.astype(np.float32).mean(axis=(1, 2, 3)) / 255.0, rtol=1e-6
    )


def test_empty_inputs_give_empty_outputs_of_the_right_trailing_shape_and_dtype():
    def fn(x):
        return {
            "features": x.reshape(x.shape[0], 36)[:, :5],
            "label": x[:, 0, 0, 0].astype(jnp.int32),
        }

    inputs = np.zeros((0, 6, 6, 1), np.uint8)
    got = map_batches(fn, inputs, 4, lambda batch: batch.astype(np.float32))
    assert isinstance(got["features"], np.ndarray)
    assert got["features"].shape == (0, 5) and got["features"].dtype == np.float32
    assert got["label"].shape == (0,) and got["label"].dtype == np.int32


@pytest.mark.parametrize("batch_size", [0, -1])
def test_batch_size_below_one_is_an_error(batch_size):
    with pytest.raises(ValueError, match=f"batch_size={batch_size} must be >= 1"):
        map_batches(_affine, np.zeros((3, 2), np.float32), batch_size)
