"""The PyTorch reference DCGAN the benchmarks compare against: pytorch/examples' `dcgan/main.py`
recipe, written here (torch is imported by the caller's choice, never by the package).

The nets: G is a 4x4 transposed conv from z (1x1) to 4x4 x ngf*2**(n-1), then n blocks of
batchnorm, ReLU and a 4x4 stride-2 padding-1 transposed conv, halving the width, the last one to
`nc` channels and tanh; D is n 4x4 stride-2 padding-1 convs doubling from ndf (batchnorm on all but
the first), LeakyReLU(0.2), and a 4x4 valid conv to one logit. No biases. Init as the example's
`weights_init`: conv weights N(0, 0.02), batchnorm scales N(1, 0.02) and shifts 0. At 32 px
(n = 3) with ngf = ndf = 64 these are, layer for layer, configs/fashion_mnist.py's G and D.

`train_steps` is the example's loop: per batch, a D step on the real batch (label 1) and a fake
batch (label 0) with BCE on D's sigmoid, then a G step with label 1 on the same fakes; Adam
lr 2e-4, betas (0.5, 0.999); z ~ N(0, 1); the data reshuffled every epoch with the last, smaller
batch kept (DataLoader(shuffle=True), drop_last False). `update` is that loop's body, the one both
benchmarks run: `train_steps` (quality.py) and `timed_step` (train_step.py: on one fixed batch, in
the eager, channels_last bfloat16 and torch.compile variants).
"""

import contextlib
import os

import numpy as np

NZ, NGF, NDF = 100, 64, 64  # pytorch/examples' defaults
LR, BETA1 = 2e-4, 0.5


def set_threads() -> int:
    """Sets torch's intra-op threads for the benchmarks: $OMP_NUM_THREADS where it is set (on a
    machine shared with other work, more threads than free cores slow torch down severalfold),
    else every core. Returns the count."""
    import torch

    threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def num_blocks(image_size: int) -> int:
    """Resolution doublings between 4x4 and the image (image_size = 4 * 2**n)."""
    n = int(np.log2(image_size // 4))
    if image_size < 8 or 4 * 2**n != image_size:
        raise ValueError(f"image size {image_size} is not 4 x 2**n with n >= 1")
    return n


def build_nets(image_size: int, nc: int, nz: int = NZ, ngf: int = NGF, ndf: int = NDF):
    """(G, D) as torch modules, initialized as pytorch/examples does; D returns logits (N,)."""
    from torch import nn

    n = num_blocks(image_size)
    width = ngf * 2 ** (n - 1)
    g_layers = [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False)]
    for i in range(n):
        out = nc if i == n - 1 else width // 2
        g_layers += [
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, out, 4, 2, 1, bias=False),
        ]
        width = out
    netg = nn.Sequential(*g_layers, nn.Tanh())
    d_layers, width = [], nc
    for i in range(n):
        out = ndf * 2**i
        d_layers.append(nn.Conv2d(width, out, 4, 2, 1, bias=False))
        if i > 0:
            d_layers.append(nn.BatchNorm2d(out))
        d_layers.append(nn.LeakyReLU(0.2, inplace=True))
        width = out
    netd = nn.Sequential(*d_layers, nn.Conv2d(width, 1, 4, 1, 0, bias=False), nn.Flatten(0))
    for module in list(netg.modules()) + list(netd.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
    return netg, netd


def _epoch_order(seed: int, epoch: int, n: int):
    """The shuffle of one epoch: a function of (seed, epoch), so a resumed run reads what an
    uninterrupted one would."""
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def _z(seed: int, step: int, num: int, nz: int):
    import torch

    generator = torch.Generator().manual_seed(seed * 1_000_003 + step + 1)
    return torch.randn(num, nz, 1, 1, generator=generator)


def train_steps(
    images: np.ndarray, steps: int, batch_size: int, seed: int, checkpoint: str, every: int = 500
) -> dict:
    """Trains the reference on uint8 images (N, H, W, C) for `steps` batches, resuming from
    `checkpoint` (a file, written every `every` steps and at the end) when it exists. Returns
    {"seconds": training wall time of this call, "steps_run": steps run by this call}."""
    import time

    import torch
    from torch import nn

    torch.manual_seed(seed)
    n, size, _, nc = images.shape
    netg, netd = build_nets(size, nc)
    opt_g = torch.optim.Adam(netg.parameters(), lr=LR, betas=(BETA1, 0.999))
    opt_d = torch.optim.Adam(netd.parameters(), lr=LR, betas=(BETA1, 0.999))
    step = 0
    if os.path.exists(checkpoint):
        saved = torch.load(checkpoint, weights_only=True)
        for module, key in ((netg, "g"), (netd, "d"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(saved[key])
        step = int(saved["step"])
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2)  # uint8 NCHW, converted per batch
    criterion, sigmoid = nn.BCELoss(), nn.Sigmoid()

    def bce(logits, labels):  # the example's nn.BCELoss on D's sigmoid
        return criterion(sigmoid(logits), labels)

    per_epoch = -(-n // batch_size)
    start, first = time.perf_counter(), step
    while step < steps:
        epoch, index = divmod(step, per_epoch)
        rows = _epoch_order(seed, epoch, n)[index * batch_size : (index + 1) * batch_size]
        real = pixels[rows].float() / 127.5 - 1.0  # ToTensor + Normalize((0.5,), (0.5,))
        labels = torch.ones(len(rows)), torch.zeros(len(rows))
        err_real, err_fake, err_g = update(
            netg, netd, opt_g, opt_d, real, _z(seed, step, len(rows), NZ), labels, bce
        )
        step += 1
        if step % every == 0 or step == steps:
            _save(checkpoint, netg, netd, opt_g, opt_d, step)
            print(
                f"torch step {step}/{steps} | d_loss {(err_real + err_fake).item():.3f} "
                f"g_loss {err_g.item():.3f}",
                flush=True,
            )
    return {"seconds": time.perf_counter() - start, "steps_run": step - first}


def update(netg, netd, opt_g, opt_d, real, z, labels, loss, autocast=contextlib.nullcontext):
    """One batch of the example's loop: a D step on `real` (label 1) and G(z) (label 0), then a G
    step with label 1 on the same fakes. `labels` = (ones, zeros) of the batch's length, `loss(logits,
    labels)` the criterion, `autocast()` the context the forward passes run in (mixed precision).
    Returns the three losses (D on real, D on fake, G) as tensors."""
    ones, zeros = labels
    netd.zero_grad(set_to_none=True)
    with autocast():
        err_real = loss(netd(real).float(), ones)
    err_real.backward()
    with autocast():
        fake = netg(z)
        err_fake = loss(netd(fake.detach()).float(), zeros)
    err_fake.backward()
    opt_d.step()
    netg.zero_grad(set_to_none=True)
    with autocast():
        err_g = loss(netd(fake).float(), ones)
    err_g.backward()
    opt_g.step()
    return err_real, err_fake, err_g


def _save(path, netg, netd, opt_g, opt_d, step) -> None:
    import torch

    partial = f"{path}.partial-{os.getpid()}"
    state = {"g": netg.state_dict(), "d": netd.state_dict(), "step": step}
    state.update(opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict())
    torch.save(state, partial)
    os.replace(partial, path)


def samples(
    checkpoint: str, image_size: int, nc: int, num: int, seed: int, batch_size: int, mode: str
) -> np.ndarray:
    """`num` uint8 images (N, H, W, C) of the checkpoint's G for z ~ N(0, 1) drawn with `seed`.
    mode 'train' normalizes with each batch's statistics, as the example draws its samples (G is
    never put in eval mode there); 'eval' uses the running averages."""
    import torch

    netg, _ = build_nets(image_size, nc)
    netg.load_state_dict(torch.load(checkpoint, weights_only=True)["g"])
    netg.train(mode == "train")
    z = torch.randn(num, NZ, 1, 1, generator=torch.Generator().manual_seed(seed + 7_777_777))
    out = []
    with torch.no_grad():
        for start in range(0, num, batch_size):
            images = netg(z[start : start + batch_size])
            # vutils.save_image's rounding: (x + 1) / 2 * 255 + 0.5, clamped, truncated
            out.append(((images + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8))
    return torch.cat(out).permute(0, 2, 3, 1).numpy()


def timed_step(
    image_size: int, nc: int, batch_size: int, variant: str, device: str, compile_dtype: str
):
    """(step, sync) for the train-step benchmark: `step()` runs `update` on a fixed random batch
    and fresh uniform z (as this project's z) with BCE on logits, in `variant` (eager: float32
    NCHW; channels_last_bf16: channels_last and bfloat16 autocast; compile: torch.compile of both
    nets, channels_last, `compile_dtype` autocast and fused Adam where the device has it); `sync()`
    waits for the device."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    netg, netd = build_nets(image_size, nc)
    memory_format = torch.contiguous_format if variant == "eager" else torch.channels_last
    netg = netg.to(device, memory_format=memory_format)
    netd = netd.to(device, memory_format=memory_format)

    def adam(params):
        if variant == "compile":
            try:
                return torch.optim.Adam(params, lr=LR, betas=(BETA1, 0.999), fused=True)
            except (RuntimeError, ValueError):  # no fused kernel for this device
                pass
        return torch.optim.Adam(params, lr=LR, betas=(BETA1, 0.999))

    opt_g, opt_d = adam(list(netg.parameters())), adam(list(netd.parameters()))
    if variant == "compile":
        netg, netd = torch.compile(netg), torch.compile(netd)
    autocast_dtype = {
        "eager": None,
        "channels_last_bf16": torch.bfloat16,
        "compile": torch.bfloat16 if compile_dtype == "bfloat16" else None,
    }[variant]
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    shape = (batch_size, nc, image_size, image_size)
    real = (torch.rand(*shape, device=device) * 2 - 1).contiguous(memory_format=memory_format)
    labels = torch.ones(batch_size, device=device), torch.zeros(batch_size, device=device)

    def autocast():
        return torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None)

    def step():
        z = torch.rand(batch_size, NZ, 1, 1, device=device) * 2 - 1
        update(netg, netd, opt_g, opt_d, real, z, labels, nn.BCEWithLogitsLoss(), autocast)

    def sync():
        if device_type == "cuda":
            torch.cuda.synchronize(device)

    return step, sync
