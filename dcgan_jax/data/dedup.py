"""Near-duplicate removal by semantic hashing (the paper's Sec. 4.1.1, used on LSUN bedrooms).

The paper fits a 3072-128-3072 denoising, dropout-regularized ReLU autoencoder on 32x32 downsampled
center crops, binarizes the code layer by thresholding its ReLU activations, and treats images whose
codes collide as duplicates: hashing makes the search linear in the number of images, which matters
at 3M images. Here:

- the corruption the autoencoder learns to undo is the kind a near duplicate differs by (a pixel or two of shift,
  a small change of brightness/colour, pixel noise), so such copies land on the same code;
- a code is 128 bits, packed into 16 bytes (3M images: 48 MB);
- exact collisions (max_hamming=0, the paper) miss most shifted or recoloured copies: on a planted test set, copies
  were 1-18 bits from their original while distinct images were at least 31 bits apart, so `max_hamming` > 0 also
  pairs codes within that many bits, found by bit-sampling locality-sensitive hashing and verified exactly;
- of each group of colliding images, the first in source order is kept; the others are listed as removed, each with
  the index it duplicates.
"""

import collections

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from PIL import Image

from dcgan_jax.data.images import as_model_input


class Autoencoder(nn.Module):
    """One hidden ReLU layer (the code), dropout on the input, linear reconstruction.

    Inputs are centered on the data's mean thumbnail (`input_mean`, set once from the data, never
    trained): on mostly-dark data such as the digits an uncentered input drove every code unit but
    one dead, so all images shared one code and every image was a "duplicate" of the first."""

    code_dim: int
    dropout: float
    input_dim: int

    def setup(self):
        self.input_mean = self.param("input_mean", nn.initializers.zeros, (self.input_dim,))
        self.encoder = nn.Dense(self.code_dim)
        self.decoder = nn.Dense(self.input_dim)
        self.drop = nn.Dropout(self.dropout)

    def _mean(self):
        return jax.lax.stop_gradient(self.input_mean)

    def encode(self, x, train: bool = False):
        return nn.relu(self.encoder(self.drop(x - self._mean(), deterministic=not train)))

    def __call__(self, x, train: bool = False):
        return self.decoder(self.encode(x, train)) + self._mean()


def thumbnails(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 N x H x W x C -> uint8 N x size x size x 3, area-resized (the images are center crops
    already)."""
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        out[i] = np.asarray(pil.convert("RGB").resize((size, size), Image.BOX))
    return out


def _corrupt(
    rng: np.random.Generator, thumbs: np.ndarray, dedup: ml_collections.ConfigDict
) -> np.ndarray:
    """The perturbations a near duplicate shows, on uint8 thumbnails B x S x S x 3 -> float32 in
    model range: a shift of up to dedup.max_shift pixels (edge-padded), a per-channel gain, pixel
    noise. On the host: it is cheap in numpy and costs more than the autoencoder's own step when
    compiled."""
    b, size = thumbs.shape[0], thumbs.shape[1]
    shift = dedup.max_shift
    x = as_model_input(thumbs)
    if shift:
        padded = np.pad(x, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
        offsets = rng.integers(0, 2 * shift + 1, (b, 2))
        x = np.stack([p[dy : dy + size, dx : dx + size] for p, (dy, dx) in zip(padded, offsets)])
    gain = 1.0 + dedup.colour_jitter * rng.uniform(-1.0, 1.0, (b, 1, 1, 3))
    x = np.clip((x + 1.0) * gain - 1.0, -1.0, 1.0) + dedup.noise_std * rng.standard_normal(x.shape)
    return x.reshape(b, -1).astype(np.float32)


def _mean_thumbnail(thumbs: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """The mean of uint8 thumbnails, summed in chunks (LSUN's 3M thumbnails in float would take 37
    GB)."""
    total = np.zeros(thumbs.shape[1:], np.float64)
    for start in range(0, len(thumbs), chunk):
        total += thumbs[start : start + chunk].sum(axis=0, dtype=np.float64)
    return total / len(thumbs)


def train_autoencoder(
    thumbs: np.ndarray, dedup: ml_collections.ConfigDict, seed: int = 0
) -> tuple[Autoencoder, dict]:
    """Fits the denoising autoencoder (`dedup`: config.dedup) to uint8 thumbnails N x S x S x 3;
    returns (module, params)."""
    dim = int(np.prod(thumbs.shape[1:]))
    model = Autoencoder(dedup.code_dim, dedup.dropout, dim)
    rng = jax.random.PRNGKey(seed)
    params = dict(model.init(rng, jnp.zeros((1, dim)))["params"])
    mean = as_model_input(
        _mean_thumbnail(thumbs), pixel_scale=True
    )  # a float mean of 0..255 pixels
    params["input_mean"] = jnp.asarray(mean.reshape(dim), jnp.float32)
    tx = optax.adam(dedup.learning_rate)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, noisy, clean, dropout_rng):
        def loss_fn(p):
            recon = model.apply({"params": p}, noisy, train=True, rngs={"dropout": dropout_rng})
            return jnp.mean((recon - clean) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    batch = min(dedup.batch_size, len(thumbs))
    host_rng = np.random.default_rng(seed)
    for i in range(dedup.steps):
        chosen = thumbs[np.sort(host_rng.choice(len(thumbs), batch, replace=False))]
        clean = as_model_input(chosen).reshape(batch, dim)
        params, opt_state, _ = step(
            params, opt_state, _corrupt(host_rng, chosen, dedup), clean, jax.random.fold_in(rng, i)
        )
    return model, params


def codes(model: Autoencoder, params, thumbs: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Binary codes, packed: N x ceil(code_dim / 8) uint8 (a bit is set where the code's ReLU is
    active)."""
    dim = int(np.prod(thumbs.shape[1:]))
    encode = jax.jit(lambda x: model.apply({"params": params}, x, method=Autoencoder.encode) > 0)
    bits = [
        np.asarray(
            encode(jnp.asarray(as_model_input(thumbs[start : start + batch_size]).reshape(-1, dim)))
        )
        for start in range(0, len(thumbs), batch_size)
    ]  # only the last batch smaller: two compilations at most
    bits = np.concatenate(bits) if bits else np.zeros((0, model.code_dim), bool)
    return np.packbits(np.asarray(bits, np.uint8), axis=1)


def duplicates(
    packed: np.ndarray,
    max_hamming: int = 0,
    num_tables: int = 32,
    key_bits: int = 20,
    seed: int = 0,
) -> dict[int, int]:
    """{removed index: the kept index it duplicates} for codes within `max_hamming` bits of a kept
    code.

    max_hamming=0 is the paper's exact collision: one hash table. Otherwise candidates come from
    `num_tables` hash tables, each keyed on `key_bits` bits drawn at random (bit-sampling LSH), and
    are verified by their exact Hamming distance, so nothing farther than max_hamming is ever
    removed; a pair d bits apart is missed only when every table's key holds a differing bit, with
    probability (1 - C(n-d, k)/C(n, k))^num_tables (d=12, n=128, k=20, 32 tables: 0.018). Images are
    visited in index order and an image is removed only when it is close to a KEPT image, so a chain
    of small differences never removes an image far from every kept one.
    """
    bits = np.unpackbits(packed, axis=1)
    n_bits = bits.shape[1]
    if max_hamming == 0:
        positions = [np.arange(n_bits)]
    else:
        rng = np.random.default_rng(seed)
        positions = [
            np.sort(rng.choice(n_bits, min(key_bits, n_bits), replace=False))
            for _ in range(num_tables)
        ]
    keys = [np.packbits(bits[:, pos], axis=1) for pos in positions]
    tables: list[dict[bytes, list[int]]] = [collections.defaultdict(list) for _ in positions]
    removed: dict[int, int] = {}
    for i in range(len(packed)):
        row_keys = [k[i].tobytes() for k in keys]
        candidates = {kept for table, key in zip(tables, row_keys) for kept in table.get(key, ())}
        close = [
            kept
            for kept in candidates
            if int(np.count_nonzero(bits[i] != bits[kept])) <= max_hamming
        ]
        if close:
            removed[i] = min(close)
        else:
            for table, key in zip(tables, row_keys):
                table[key].append(i)
    return removed


def find_duplicates(
    images: np.ndarray, dedup: ml_collections.ConfigDict, seed: int = 0
) -> dict[int, int]:
    """Near duplicates among uint8 images N x H x W x C: {removed index: kept index} (see the module
    docstring); `dedup` is config.dedup."""
    thumbs = thumbnails(images, dedup.thumbnail_size)
    model, params = train_autoencoder(thumbs, dedup, seed)
    return duplicates(
        codes(model, params, thumbs), dedup.max_hamming, dedup.num_tables, dedup.key_bits, seed
    )
