"""InceptionV3 pool features for FID/KID comparable with published numbers: user-supplied weights only.

Nothing is ever downloaded. The expected weights file is a .npz of the FID InceptionV3 (the TF-slim graph of
Heusel et al.'s TTUR code, as ported by pytorch-fid in `pt_inception-2015-12-05-6726825d.pth`), one array per
parameter named by its PyTorch state_dict key (e.g. `Conv2d_1a_3x3.conv.weight`); convert it once with
    python -c "import torch, numpy as np; sd = torch.load('pt_inception-2015-12-05-6726825d.pth');
               np.savez('inception_fid.npz', **{k: v.numpy() for k, v in sd.items()})"
The .pth is distributed with pytorch-fid's GitHub releases (github.com/mseitzer/pytorch-fid).

This version does not include the InceptionV3 network itself: with or without weights, selecting it is a UserError
pointing to the built-in classifier features (eval_feature_extractor='classifier').
"""

import os
from typing import Callable

import numpy as np

from dcgan_jax.errors import UserError

WEIGHTS_HELP = ("convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth to .npz as described in "
                "dcgan_jax/inception.py")


def check_weights(path: str) -> str:
    """The absolute path of a readable .npz weights file, or a UserError saying how to get one."""
    if not path:
        raise UserError("eval_feature_extractor='inception' needs InceptionV3 weights: set "
                        f"--inception_weights=FILE.npz ({WEIGHTS_HELP}); nothing is downloaded. Or use "
                        "eval_feature_extractor='classifier' (works offline)")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise UserError(f"InceptionV3 weights {path} do not exist; {WEIGHTS_HELP}")
    if not path.endswith(".npz"):
        raise UserError(f"InceptionV3 weights {path} must be a .npz; {WEIGHTS_HELP}")
    return path


def make_extractor(weights_path: str, batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    """images -> 2048-d pool features; see the module docstring for what is and is not available."""
    del batch_size
    path = check_weights(weights_path)
    raise UserError(f"InceptionV3 features are not implemented in this version (weights {path} were found but "
                    "cannot be used); use eval_feature_extractor='classifier'")
