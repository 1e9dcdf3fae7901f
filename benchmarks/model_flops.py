"""Model FLOPs of the pytorch/examples DCGAN train step (the figure behind benchmarks/train_step.py's MFU)
and the dense peaks of the devices it runs on.

Model FLOPs of one step (`step_flops`, per image; the conv and matmul layers only: batchnorm, activations, losses
and Adam are memory-bound and negligible in FLOPs). With F(l) = 2 x MACs of layer l's forward pass (a transposed
conv: input pixels x 16 taps x C_in x C_out; a stride-2 conv: output pixels x 16 x C_in x C_out; G's projection
z -> 4x4xC a matmul; D's last 4x4 valid conv), each gradient (input or kernel) of a layer costs F(l) again, and the
step computes, as it actually runs:
  G forward once (its vjp is reused)                      sum_G F
  D update on the real and on the fake batch              2 x (sum_D F [forward] + sum_D F [kernel grads]
                                                               + sum_{D, l > 0} F [input grads; images need none])
  G update: D forward on the fakes, input grads to them   sum_D F + sum_D F
  G backward: kernel grads, input grads below the output  sum_G F + sum_{G, l > 0} F  [z needs no gradient]
(about 3 x (forward FLOPs of G) + 8 x (forward FLOPs of D)). The same count is used for PyTorch (which also
computes D's kernel gradients in the G update: work the step does not need). MFU = model FLOPs x steps/s / (peak
FLOP/s of the devices used); the peak is dense bfloat16 for bfloat16 runs and dense TF32 for float32 runs on GPUs
(cuDNN convolutions use TF32 by default in both frameworks), from `PEAK_TFLOPS` by device kind or `--peak_tflops`;
a CPU's peak is not known (MFU is reported as null unless `--peak_tflops` is given; the achieved model FLOP/s are
always reported).
"""

# Dense peak TFLOP/s per device: (TF32 / float32-as-run, bfloat16), by a substring of JAX's
# device_kind. Vendor datasheets (NVIDIA H100/H200 SXM, H100 PCIe, A100, L4; Google Cloud TPU v4,
# v5e, v5p, v6e); TPUs run float32 matmuls at DEFAULT precision as bfloat16 passes, so both columns
# are the bfloat16 peak there.
PEAK_TFLOPS = {
    "H200": (494.7, 989.4),
    "H100 PCIe": (378.0, 756.0),
    "H100": (494.7, 989.4),
    "A100": (156.0, 312.0),
    "L4": (60.0, 121.0),
    "TPU v4": (275.0, 275.0),
    "TPU v5 lite": (197.0, 197.0),
    "TPU v5p": (459.0, 459.0),
    "TPU v6 lite": (918.0, 918.0),
}
# models.SUPPORTED_IMAGE_SIZES (no jax import here: train_step.py sets XLA_FLAGS first)
IMAGE_SIZES = (16, 32, 64, 128, 256)


def layer_flops(image_size: int, nz: int, ngf: int, ndf: int, nc: int):
    """Forward FLOPs (2 x MACs) per image of each conv/matmul layer (z length, G and D widths and image
    channels as benchmarks/torch_dcgan.py names them): ([G layers, z side first], [D
    layers, image side first, the logit conv last])."""
    n = IMAGE_SIZES.index(image_size) + 2  # 2x changes between 4x4 and the image
    g, width, size = (
        [2 * nz * 16 * ngf * 2 ** (n - 1)],
        ngf * 2 ** (n - 1),
        4,
    )  # projection: a 4x4 transposed conv
    for i in range(n):
        out = nc if i == n - 1 else width // 2
        g.append(2 * size * size * 16 * width * out)  # input pixels x 16 taps
        width, size = out, size * 2
    d, width, size = [], nc, image_size
    for i in range(n):
        out, size = ndf * 2**i, size // 2
        d.append(2 * size * size * 16 * width * out)  # output pixels x 16 taps
        width = out
    d.append(2 * 16 * width)  # the 4x4 valid logit conv
    return g, d


def step_flops(image_size: int, nz: int, ngf: int, ndf: int, nc: int) -> int:
    """Model FLOPs per image of one D+G step, as the step computes it (see the module docstring)."""
    g, d = layer_flops(image_size, nz, ngf, ndf, nc)
    g_forward, d_forward = sum(g), sum(d)
    d_update = 2 * (d_forward + d_forward + sum(d[1:]))
    g_update = d_forward + d_forward + sum(g) + sum(g[1:])
    return g_forward + d_update + g_update


def peak_flops(device_kind: str, dtype: str, override_tflops: float):
    """Peak FLOP/s of one device, or None when unknown (a CPU)."""
    if override_tflops:
        return override_tflops * 1e12
    for name, (tf32, bf16) in PEAK_TFLOPS.items():
        if name.lower() in device_kind.lower():
            return (bf16 if dtype == "bfloat16" else tf32) * 1e12
    return None
