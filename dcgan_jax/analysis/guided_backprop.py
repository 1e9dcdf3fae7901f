"""What D's last convolutional features respond to (the paper's Fig. 5): guided backpropagation,
trained D against a random-init D.

For each of the first `num_features` channels of D's last conv layer, the `top_k` training images
that excite it most (its maximum over positions) are found, and the gradient of that one activation
with respect to the image is drawn, with guided backpropagation (Springenberg et al. 2014): at every
nonlinearity the gradient passes only where the forward input was positive AND the gradient arriving
is positive, which keeps the evidence FOR the feature and gives sharp maps. A trained D's features
respond to parts of scenes (beds, windows in LSUN; strokes in digits); the random D's maps show no
such structure.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dcgan_jax.analysis.figures import Picture
from dcgan_jax.data import datasets
from dcgan_jax.data.images import as_model_input
from dcgan_jax.data.sources import read_batch
from dcgan_jax.errors import UserError
from dcgan_jax.nn import models
from dcgan_jax.nn.batched import map_batches


@jax.custom_vjp
def guided_activation(x: jax.Array) -> jax.Array:
    """D's LeakyReLU forward; guided backward: gradient only where input > 0 and incoming gradient >
    0."""
    return models.d_activation(x)


def _guided_fwd(x):
    return models.d_activation(x), x


def _guided_bwd(x, g):
    return (jnp.where((x > 0) & (g > 0), g, 0.0).astype(g.dtype),)


guided_activation.defvjp(_guided_fwd, _guided_bwd)


def _last_layer(discriminator: nn.Module, variables: Any, images: jax.Array) -> jax.Array:
    """D's last hidden layer (after its nonlinearity), N x h x w x C, in inference mode."""
    _, state = discriminator.apply(variables, images, train=False, mutable=["intermediates"])
    layers = state["intermediates"]
    return layers[f"layer{len(layers) - 1}"][0].astype(jnp.float32)


def top_activations(
    discriminator: nn.Module,
    variables: Any,
    images: np.ndarray,
    num_features: int,
    top_k: int,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """(image indices F x k, flat positions F x k): per feature of the last layer, the images with
    the largest activation anywhere, largest first, and where in the layer's grid it is."""

    def per_image(batch):
        acts = _last_layer(discriminator, variables, batch)[..., :num_features]
        flat = acts.reshape(acts.shape[0], -1, num_features)
        return flat.max(axis=1), flat.argmax(axis=1)

    peak, where = map_batches(jax.jit(per_image), images, batch_size, prepare=as_model_input)
    order = np.argsort(-peak, axis=0, kind="stable")[:top_k].T  # F x k
    return order, np.take_along_axis(where.T, order, axis=1)


def guided_gradients(
    discriminator: nn.Module,
    variables: Any,
    images: np.ndarray,
    features: np.ndarray,
    positions: np.ndarray,
) -> np.ndarray:
    """d activation[position, feature] / d image, guided, for each (image, feature, flat position)
    triple."""
    guided = discriminator.clone(activation=guided_activation)

    def one(image, feature, position):
        def unit(x):
            acts = _last_layer(guided, variables, x[None])[0]
            return acts.reshape(-1, acts.shape[-1])[position, feature]

        return jax.grad(unit)(image)

    return np.asarray(
        jax.jit(jax.vmap(one))(
            jnp.asarray(as_model_input(images)), jnp.asarray(features), jnp.asarray(positions)
        )
    )


def to_picture_rows(gradients: np.ndarray) -> np.ndarray:
    """Gradient maps -> uint8 images: each scaled by its own largest magnitude, zero at mid grey."""
    scale = np.abs(gradients).reshape(len(gradients), -1).max(axis=1).reshape(-1, 1, 1, 1)
    return np.round(127.5 + 127.5 * gradients / np.maximum(scale, 1e-12)).astype(np.uint8)


def feature_maps(
    discriminator: nn.Module, variables: Any, images: np.ndarray, num_features: int, top_k: int
) -> list[np.ndarray]:
    """One row per feature: the guided-backprop maps of its top_k images."""
    indices, positions = top_activations(discriminator, variables, images, num_features, top_k)
    features = np.repeat(np.arange(num_features), top_k)
    gradients = guided_gradients(
        discriminator, variables, images[indices.reshape(-1)], features, positions.reshape(-1)
    )
    return list(to_picture_rows(gradients).reshape(num_features, top_k, *gradients.shape[1:]))


def guided_backprop(
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    d_variables: Any,
    random_d_variables: Any,
    num_features: int = 6,
    top_k: int = 8,
    num_images: int = 2000,
    split: str = "train",
    step: int | None = None,
) -> Picture:
    """The paper's Fig. 5: rows of the trained D's (`d_variables`, of training step `step`) first
    `num_features` last-layer features (each: the guided maps of its top_k images among `num_images`
    images of the `split` of `data`, config.data), a blank row, then the same for
    `random_d_variables` (the run's random init, `Run.initial_state.d_variables`). `model`:
    config.model."""
    _, discriminator = models.build_models(model)
    width = models.d_layer_widths(model)[-1]
    if not 1 <= num_features <= width:
        raise UserError(
            f"num_features={num_features} must be in 1..{width} (D's last conv layer has {width})"
        )
    source = datasets.load_source(data, model.image_size, model.num_channels, split)
    count = min(num_images, len(source))
    if not 1 <= top_k <= count:
        raise UserError(f"top_k={top_k} must be in 1..{count} (the images searched)")
    images = read_batch(source, np.linspace(0, len(source) - 1, count).astype(int))
    trained = feature_maps(discriminator, d_variables, images, num_features, top_k)
    random = feature_maps(discriminator, random_d_variables, images, num_features, top_k)
    blank = np.full_like(trained[0], 255)
    at_step = "" if step is None else f" (step {step})"
    notes = [
        f"rows 1-{num_features}: trained D{at_step}, features 0-{num_features - 1} of its last conv "
        f"layer; rows {num_features + 2}-{2 * num_features + 1}: random-init D; each row: the guided-backprop "
        f"maps of the {top_k} images (of {count}) that excite the feature most"
    ]
    return Picture(trained + [blank] + random, notes=notes)
