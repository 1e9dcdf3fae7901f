"""The 4x4, stride-2 convolutions of DCGAN (G's fractional-strided, D's strided), each in its
fastest exact form.

Per layer, XLA runs the forward, the input gradient and the kernel gradient at very different speeds
depending on how the same linear map is written (on CPU: the 16->32 px G layer's kernel gradient
takes 1,024 ms as a transposed conv, 17 ms as a strided conv's). `transposed_conv_fast` and
`strided_conv_fast` compute each of the three in the form measured fastest, with the same result as
the textbook layer (tests/nn/test_convolutions.py).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

KERNEL = 4  # every strided (transposed) convolution of the paper's reference code is 4x4, stride 2, padding 1
_DIMS = ("NHWC", "HWIO", "NHWC")


def _pad1(x: jax.Array) -> jax.Array:
    return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def transposed_conv_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The 2x fractional-strided convolution as XLA's transposed convolution (the straightforward
    formulation)."""
    pad = KERNEL - 2  # k - 1 - p with p = 1
    return jax.lax.conv_transpose(
        x, kernel, (2, 2), ((pad, pad), (pad, pad)), dimension_numbers=_DIMS
    )


def transposed_conv_subpixel(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Same result as `transposed_conv_reference`, as a stride-1 2x2 convolution to 4x the channels
    (sub-pixel form).

    Output pixel (2p+a, 2q+b) sees the 2x2 window of the padded input starting at (p+a, q+b) through
    kernel taps (2r+a, 2s+b), r, s in {0, 1}. One 2x2 convolution over the (h+1)x(w+1) windows
    computes all four phases (a, b) as channel groups; phase (a, b) then reads its window grid
    shifted by (a, b). No FLOPs are spent on zero taps.
    """
    n, h, w, c_in = x.shape
    features = kernel.shape[-1]
    # kernel[2r+a, 2s+b, i, o] -> phase_kernel[r, s, i, (a, b, o)]
    phase_kernel = kernel.reshape(2, 2, 2, 2, c_in, features).transpose(0, 2, 4, 1, 3, 5)
    y = jax.lax.conv_general_dilated(
        _pad1(x),
        phase_kernel.reshape(2, 2, c_in, 4 * features),
        (1, 1),
        "VALID",
        dimension_numbers=_DIMS,
    ).reshape(n, h + 1, w + 1, 2, 2, features)
    rows = [
        jnp.stack([y[:, a : a + h, b : b + w, a, b] for b in (0, 1)], axis=3) for a in (0, 1)
    ]  # (n, h, w, 2, C)
    return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, features)


def strided_conv_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """D's 4x4, stride-2, padding-1 convolution as XLA's convolution, with XLA's own gradients."""
    return jax.lax.conv_general_dilated(
        x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DIMS
    )


def strided_conv_space_to_depth(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Same result as `strided_conv_reference`, as a stride-1 2x2 convolution of the space-to-depth
    padded input.

    Tap (2r+a, 2s+b) of the 4x4 kernel meets input pixel (2(p+r)+a, 2(q+s)+b): the 2x2 blocks of the
    padded input become channels (a, b, i) and the stride-2 4x4 convolution a stride-1 2x2 one.
    """
    padded = _pad1(x)
    n, h, w, c_in = padded.shape
    blocks = padded.reshape(n, h // 2, 2, w // 2, 2, c_in).transpose(0, 1, 3, 2, 4, 5)
    block_kernel = (
        kernel.reshape(2, 2, 2, 2, c_in, -1).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * c_in, -1)
    )
    return jax.lax.conv_general_dilated(
        blocks.reshape(n, h // 2, w // 2, 4 * c_in),
        block_kernel,
        (1, 1),
        "VALID",
        dimension_numbers=_DIMS,
    )


def input_grad_of(form: Callable) -> Callable:
    """(x, kernel, cotangent) -> the input gradient of `form(x, kernel)`."""
    return lambda x, kernel, cotangent: jax.vjp(lambda x_: form(x_, kernel), x)[1](cotangent)[0]


def kernel_grad_of(form: Callable) -> Callable:
    """(x, kernel, cotangent) -> the kernel gradient of `form(x, kernel)`."""
    return lambda x, kernel, cotangent: jax.vjp(lambda k: form(x, k), kernel)[1](cotangent)[0]


def _swap_roles(kernel: jax.Array) -> jax.Array:
    """The kernel that makes the strided conv and the transposed conv each other's transpose (flip,
    swap channels)."""
    return jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)


def transposed_conv_kernel_grad_strided(
    x: jax.Array, kernel: jax.Array, cotangent: jax.Array
) -> jax.Array:
    """The kernel gradient of the 2x transposed conv, as that of the strided conv mapping
    `cotangent` back to x's shape.

    Both sum x[p, q, i] * cotangent[2p + u - 1, 2q + v - 1, o] over the batch and positions, with
    the taps flipped.
    """
    swapped_grad = kernel_grad_of(strided_conv_reference)(cotangent, _swap_roles(kernel), x)
    return _swap_roles(swapped_grad)


def _linear_op(forward: Callable, input_grad: Callable, kernel_grad: Callable) -> Callable:
    """`forward(x, kernel)` with its two gradients computed by `input_grad` / `kernel_grad(x,
    kernel, cotangent)`.

    XLA:CPU runs some of the three convolutions behind a layer (forward, input and kernel gradient)
    fast in one exact formulation and slowly in another; each is computed in the form measured
    fastest (benchmarks/train_step.py).
    """

    @jax.custom_vjp
    def op(x, kernel):
        return forward(x, kernel)

    def op_fwd(x, kernel):
        return forward(x, kernel), (x, kernel)

    def op_bwd(residuals, cotangent):
        x, kernel = residuals
        return input_grad(x, kernel, cotangent), kernel_grad(x, kernel, cotangent)

    op.defvjp(op_fwd, op_bwd)
    return op


# G's upsampling: the sub-pixel forward is 2-3x faster than XLA's transposed convolution; XLA's
# input gradient of the latter is an ordinary strided convolution (the fastest form), and its kernel
# gradient is fastest as a strided conv's.
transposed_conv_fast = _linear_op(
    transposed_conv_subpixel,
    input_grad_of(transposed_conv_reference),
    transposed_conv_kernel_grad_strided,
)
# D's downsampling: XLA's input gradient of a strided convolution (an lhs-dilated convolution) is
# 2-3x slower than that of the space-to-depth form; XLA's own forward and kernel gradient are the
# fastest.
strided_conv_fast = _linear_op(
    strided_conv_reference,
    input_grad_of(strided_conv_space_to_depth),
    kernel_grad_of(strided_conv_reference),
)


# ---------------------------------------------------------------- which forms, per backend

CONV_IMPLS = ("auto", "xla", "fast")
# Backends where benchmarks/conv_forms.py measured the fast forms faster than XLA's own over the 64
# px model's strided layers (docs/performance.md: 13x on CPU). A backend not listed here was not
# measured and gets XLA's own convolutions, which its compiler tunes for itself (cuDNN on GPUs, the
# TPU compiler's tiling).
FAST_FORMS_MEASURED_ON = frozenset({"cpu"})
# jax.export names a GPU by its platform ('cuda', 'rocm'); jax.default_backend() calls both 'gpu'.
_BACKEND_OF_PLATFORM = {"cuda": "gpu", "rocm": "gpu"}
STRIDED_CONVS = {"fast": strided_conv_fast, "xla": strided_conv_reference}
TRANSPOSED_CONVS = {"fast": transposed_conv_fast, "xla": transposed_conv_reference}


def resolve_conv_impl(conv_impl: str, backend: str = "") -> str:
    """'fast' or 'xla' for `model.conv_impl` on `backend` ('' = JAX's default backend; a backend
    or a jax.export platform name, e.g. 'cuda').

    'auto' is 'fast' on the backends in `FAST_FORMS_MEASURED_ON`, 'xla' elsewhere. Both compute the
    same function (tests/nn/test_convolutions.py), so a run trained with one samples with the other.
    """
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"model.conv_impl={conv_impl!r} is not supported; use one of {CONV_IMPLS}")
    if conv_impl != "auto":
        return conv_impl
    backend = backend or jax.default_backend()
    return "fast" if _BACKEND_OF_PLATFORM.get(backend, backend) in FAST_FORMS_MEASURED_ON else "xla"
