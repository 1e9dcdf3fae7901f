"""Filter dropping (Radford et al. 2015, Sec. 6.1, "forgetting to draw windows"): find the feature
maps of a G layer that fire inside an image region, and draw the same z with them zeroed.

    run = training.run.open_run("runs/lsun")
    picture = filters.drop_filters(run.config.model, run.sampling_g_variables, z, layer=-2,
                                   mask=filters.box_mask(64, (0, 0, 32, 64)))
"""

from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from dcgan_jax.analysis import sampling
from dcgan_jax.analysis.figures import Picture
from dcgan_jax.analysis.sampling import images
from dcgan_jax.data.images import as_uint8
from dcgan_jax.errors import UserError
from dcgan_jax.nn import generate, latent, models


def mask_at_layer(image_masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, S, S) boolean image masks -> (N, height, width) fraction of each layer cell's pixels
    inside the mask."""
    n, size_h, size_w = image_masks.shape
    if size_h % height or size_w % width:
        raise ValueError(
            f"mask size {size_h}x{size_w} is not a multiple of the layer's {height}x{width}"
        )
    cells = image_masks.astype(np.float32).reshape(
        n, height, size_h // height, width, size_w // width
    )
    return cells.mean(axis=(2, 4))


def maps_inside_mask(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    image_masks: np.ndarray,
    layer: int,
    method: str = "logistic",
    batch_size: int = 256,
    seed: int = 0,
):
    """Feature maps of G's layer `layer` that fire inside user-given image regions, e.g. window
    boxes.

    `image_masks` is (S, S) or (N, S, S) boolean, in the generated images' pixels. Every spatial
    position of the layer is one example: its C activations, labelled positive when most of its cell
    lies inside the mask. 'logistic' fits an L2-regularized logistic regression on the standardized
    activations, as the paper did for windows (Sec. 6.1), and scores each map by its weight; the
    paper dropped every map with a positive weight. 'ratio' scores each map by log(mean activation
    inside / mean activation outside). Returns (maps sorted by decreasing score, scores).
    """
    acts = generate.activations(model, g_variables, z, layer, batch_size)
    n, h, w, c = acts.shape
    image_masks = np.broadcast_to(np.asarray(image_masks, bool), (n,) + np.shape(image_masks)[-2:])
    inside = (mask_at_layer(image_masks, h, w) >= 0.5).reshape(-1)
    if inside.all() or not inside.any():
        raise ValueError(
            "the mask must cover some, but not all, cells of the layer "
            f"({h}x{w} cells of {image_masks.shape[-1] // w}px each)"
        )
    features = acts.reshape(-1, c).astype(np.float64)
    if method == "logistic":
        from sklearn.linear_model import LogisticRegression

        std = features.std(axis=0)
        standardized = (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)
        probe = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)
        scores = probe.fit(standardized, inside).coef_[0]
    elif method == "ratio":
        eps = 1e-6
        scores = np.log(
            (features[inside].mean(axis=0) + eps) / (features[~inside].mean(axis=0) + eps)
        )
    else:
        raise ValueError(f"method {method!r} is not supported; use 'logistic' or 'ratio'")
    order = np.argsort(-scores, kind="stable")
    return order, scores


def box_mask(size: int, box: Sequence[int]) -> np.ndarray:
    """(size, size) boolean mask of the pixel box (top, left, bottom, right), bottom/right
    exclusive."""
    if len(box) != 4 or not (0 <= box[0] < box[2] <= size and 0 <= box[1] < box[3] <= size):
        raise UserError(
            f"mask box {tuple(box)} must be (top, left, bottom, right) with 0 <= top < bottom <= "
            f"{size} and 0 <= left < right <= {size}"
        )
    mask = np.zeros((size, size), bool)
    mask[box[0] : box[2], box[1] : box[3]] = True
    return mask


def file_mask(path: str, size: int) -> np.ndarray:
    """A (size, size) boolean mask from a .png (or any image Pillow reads) or .npy file: nonzero =
    inside."""
    try:
        from PIL import Image

        mask = np.load(path) if path.endswith(".npy") else np.asarray(Image.open(path).convert("L"))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the mask file {path!r}: {e}") from None
    if mask.shape != (size, size):
        raise UserError(
            f"the mask file {path!r} is {mask.shape[-1]}x{mask.shape[0]}; the generator makes "
            f"{size}x{size}"
        )
    return mask != 0


def drop_filters(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    layer: int = -2,
    maps: Sequence[int] | None = None,
    mask: np.ndarray | None = None,
    probe_samples: int = 150,
    probe: str = "logistic",
    max_maps: int = 0,
    seed: int = 0,
    batch_size: int = 256,
) -> Picture:
    """Row 1: G(z); row 2: the same z with feature maps of G's hidden `layer` zeroed everywhere (G:
    `g_variables` of `model`, config.model).

    The maps are `maps`, or found from `mask` (an image region) by `maps_inside_mask` on
    `probe_samples` samples of `seed`: every map with a positive score (at most `max_maps`, 0 = no
    limit). The picture's note names them.
    """
    try:
        layer = generate.check_layer(model, layer)
        if not maps:
            if mask is None:
                raise UserError(
                    "drop_filters needs the maps to drop or an image region (mask) to find them from"
                )
            probe_z = sampling.g_inputs(
                model,
                latent.z_for_seed(seed, probe_samples, model.latent_dim, model.z_distribution),
            )
            order, scores = maps_inside_mask(
                model, g_variables, probe_z, mask, layer, probe, batch_size, seed
            )
            maps = [int(m) for m in order if scores[m] > 0][: max_maps or None]
            if not maps:
                raise UserError(
                    "no feature map fires more inside the mask than outside it; try another region"
                )
        dropped = generate.generate_without(model, g_variables, z, layer, maps, batch_size)
    except ValueError as e:
        raise UserError(str(e)) from None
    note = (
        f"layer {layer}: dropped {len(maps)} of {models.g_layer_widths(model)[layer]} feature maps: "
        f"{','.join(map(str, maps))}"
    )
    return Picture([images(model, g_variables, z, batch_size), as_uint8(dropped)], notes=[note])
