"""The conv forms of dcgan_jax/nn/convolutions.py: each equals XLA's textbook layer, forward and both gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.nn import convolutions


def _numpy_transposed_conv(x, kernel):
    """Scatter form of a 4x4, stride-2, padding-1 transposed conv (PyTorch's ConvTranspose2d(4, 2, 1) semantics
    with kernel index t = 3 - (tap offset)), written independently of XLA."""
    n, h, w, _ = x.shape
    full = np.zeros((n, 2 * h + 2, 2 * w + 2, kernel.shape[-1]))
    flipped = kernel[::-1, ::-1]  # XLA's conv_transpose correlates with an unflipped kernel
    for i in range(h):
        for j in range(w):
            full[:, 2 * i : 2 * i + 4, 2 * j : 2 * j + 4] += np.einsum(
                "nc,uvcd->nuvd", x[:, i, j], flipped
            )
    return full[:, 1:-1, 1:-1]


def _inputs(shape, seed, out_size):
    """x, a 4x4 kernel and an output cotangent for a conv from `shape` = (n, h, w, c_in, c_out)."""
    n, h, w, c_in, c_out = shape
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    return (
        jax.random.normal(keys[0], (n, h, w, c_in)),
        jax.random.normal(keys[1], (4, 4, c_in, c_out)),
        jax.random.normal(keys[2], (n, *out_size(h, w), c_out)),
    )


def _grads(form, x, kernel, cotangent):
    """(input gradient, kernel gradient) of <form(x, kernel), cotangent>."""
    return jax.grad(lambda xx, kk: jnp.sum(form(xx, kk) * cotangent), argnums=(0, 1))(x, kernel)


def _assert_grads_equal(form, reference, x, kernel, cotangent):
    for got, expected in zip(
        _grads(form, x, kernel, cotangent), _grads(reference, x, kernel, cotangent)
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_transposed_conv_reference_matches_numpy_scatter():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    kernel = np.random.default_rng(1).normal(size=(4, 4, 5, 6))
    out = convolutions.transposed_conv_reference(
        jnp.asarray(x, jnp.float32), jnp.asarray(kernel, jnp.float32)
    )
    np.testing.assert_allclose(out, _numpy_transposed_conv(x, kernel), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 4, 4, 16, 8), (3, 5, 7, 6, 3)])
def test_subpixel_equals_transposed_conv_forward_and_gradients(shape):
    x, kernel, cotangent = _inputs(shape, 0, lambda h, w: (2 * h, 2 * w))
    np.testing.assert_allclose(
        convolutions.transposed_conv_subpixel(x, kernel),
        convolutions.transposed_conv_reference(x, kernel),
        rtol=1e-5,
        atol=1e-4,
    )
    _assert_grads_equal(
        convolutions.transposed_conv_subpixel,
        convolutions.transposed_conv_reference,
        x,
        kernel,
        cotangent,
    )


@pytest.mark.parametrize("shape", [(2, 4, 4, 16, 24), (3, 5, 7, 6, 3)])
def test_fast_transposed_conv_equals_xla_forward_and_gradients(shape):
    """The sub-pixel forward with gradients taken from other forms, against XLA's transposed conv."""
    x, kernel, cotangent = _inputs(shape, 3, lambda h, w: (2 * h, 2 * w))
    fast = jax.jit(convolutions.transposed_conv_fast)
    np.testing.assert_allclose(
        fast(x, kernel), convolutions.transposed_conv_reference(x, kernel), rtol=1e-5, atol=1e-4
    )
    _assert_grads_equal(fast, convolutions.transposed_conv_reference, x, kernel, cotangent)


@pytest.mark.parametrize("shape", [(2, 8, 8, 16, 8), (3, 6, 10, 32, 16)])
def test_space_to_depth_equals_strided_conv_forward_and_gradients(shape):
    x, kernel, cotangent = _inputs(shape, 0, lambda h, w: (h // 2, w // 2))
    np.testing.assert_allclose(
        convolutions.strided_conv_space_to_depth(x, kernel),
        convolutions.strided_conv_reference(x, kernel),
        rtol=1e-5,
        atol=1e-4,
    )
    _assert_grads_equal(
        convolutions.strided_conv_space_to_depth,
        convolutions.strided_conv_reference,
        x,
        kernel,
        cotangent,
    )


@pytest.mark.parametrize("shape", [(2, 8, 8, 16, 8), (3, 6, 10, 32, 16)])
def test_fast_strided_conv_equals_xla_forward_and_gradients(shape):
    x, kernel, cotangent = _inputs(shape, 1, lambda h, w: (h // 2, w // 2))
    fast = jax.jit(convolutions.strided_conv_fast)
    np.testing.assert_allclose(
        fast(x, kernel), convolutions.strided_conv_reference(x, kernel), rtol=1e-5, atol=1e-5
    )
    _assert_grads_equal(fast, convolutions.strided_conv_reference, x, kernel, cotangent)


def test_strided_conv_reference_is_a_4x4_stride_2_padding_1_correlation():
    """An independent numpy loop: out[p, q] = sum over taps (u, v) of x_padded[2p + u, 2q + v] K[u, v]."""
    rng = np.random.default_rng(2)
    x, kernel = rng.normal(size=(2, 6, 8, 3)), rng.normal(size=(4, 4, 3, 5))
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros((2, 3, 4, 5))
    for p in range(3):
        for q in range(4):
            expected[:, p, q] = np.einsum(
                "nuvc,uvcd->nd", padded[:, 2 * p : 2 * p + 4, 2 * q : 2 * q + 4], kernel
            )
    out = convolutions.strided_conv_reference(
        jnp.asarray(x, jnp.float32), jnp.asarray(kernel, jnp.float32)
    )
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
