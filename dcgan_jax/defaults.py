"""Every hyperparameter, documented once: the base config that each file in configs/ starts from and overrides.

Training fields are flat (`--config.batch_size=64`); evaluation fields are grouped under `config.eval`, with the FID
classifier in `config.eval.classifier` and the paper's D-feature probe in `config.eval.probe`. Configs saved by
earlier versions (flat `eval_*` fields, retired upsample names) map onto these fields with `from_saved`.
"""

import importlib.util
import os
from typing import Any, Mapping

import ml_collections


def _configs_dir() -> str:
    """The shipped configs: installed as dcgan_jax/configs/ by a regular install, the top-level configs/ of a
    checkout (editable install)."""
    package = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(package, "configs")
    return installed if os.path.isdir(installed) else os.path.join(os.path.dirname(package), "configs")


CONFIGS_DIR = _configs_dir()


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()

    # Data (dcgan_jax/data/).
    config.dataset = "digits"       # 'digits' (embedded), 'lsun_lmdb', 'image_folder', 'prepared', or a TFDS name
    config.data_dir = ""            # TFDS data_dir ('' = TFDS default, ~/tensorflow_datasets)
    config.data_path = ""           # LMDB directory, image folder or prepared cache
    config.split = "train"
    config.image_size = 32          # 16, 32, 64, 128 or 256 (4 x 2**n, n = 2..6 resolution changes)
    config.num_channels = 1         # 1 (grayscale) or 3 (RGB)
    config.shuffle_seed_offset = 1  # data order = f(seed + offset, step): exact resume
    config.num_data_workers = 0     # decoding processes; 0 = all cores
    config.prefetch_batches = 2     # batches decoded ahead of the training step (beyond one per worker)
    config.max_in_memory_mb = 4096  # TFDS splits in TFRecord format up to this size (preprocessed) load into memory;
                                    # larger: `python -m dcgan_jax.prepare` once (dcgan_jax/data/tfds_source.py)

    # Near-duplicate removal, `prepare --dedup` (dcgan_jax/nn/dedup.py; the paper's Sec. 4.1.1 on LSUN bedrooms).
    config.dedup = ml_collections.ConfigDict()
    config.dedup.thumbnail_size = 32     # the autoencoder sees size x size x 3 center crops (the paper: 32)
    config.dedup.code_dim = 128          # code bits (the paper: 3072-128-3072)
    config.dedup.dropout = 0.1           # on the autoencoder's input
    config.dedup.steps = 3000            # Adam steps of the autoencoder (LSUN bedrooms: raise to ~20_000)
    config.dedup.batch_size = 256
    config.dedup.learning_rate = 1e-3
    config.dedup.max_shift = 2           # denoising corruption: shifts up to this many thumbnail pixels,
    config.dedup.colour_jitter = 0.07    # ... per-channel gains in 1 +- this,
    config.dedup.noise_std = 0.05        # ... and gaussian pixel noise, all of the kind near duplicates show
    config.dedup.max_hamming = 12        # codes this many bits apart or closer are duplicates (0 = exact, the paper)
    config.dedup.num_tables = 32         # LSH tables and the code bits each is keyed on (max_hamming > 0):
    config.dedup.key_bits = 20           # a pair 12 of 128 bits apart is missed with probability 0.018
    config.dedup.max_removed_fraction = 0.5  # removing more stops `prepare` (nothing written): codes that cannot
                                         # tell images apart (LSUN bedrooms: ~9% removed by the paper)

    # Model (dcgan_jax/nn/models.py). g_width: channels of G's last hidden layer (the 4x4 layer has g_width*2**(n-1)).
    # Widths per size: the paper's 64 px nets (g_width=128, d_width=64) have 1024 channels at G's 4x4 layer and 512 at
    # D's last; to keep those ends at other sizes, g_width = 1024 / 2**(n-1) and d_width = 512 / 2**(n-1):
    # 16 px 512/256, 32 px 256/128, 64 px 128/64, 128 px 64/32, 256 px 32/16 (configs/digits.py: 32/32 at 32 px,
    # small enough for a CPU; the benchmark's --image_size takes every size).
    config.latent_dim = 100
    config.z_distribution = "uniform"  # the paper: uniform in [-1, 1]; or 'normal'
    config.g_width = 64
    config.d_width = 64
    # Class-conditional G and D (dcgan_jax/nn/models.py): labelled data (digits, TFDS datasets with labels, image
    # folders with one subfolder per class). G's input is z plus a one-hot class code (nn/latent.py: with_class).
    config.conditional = ml_collections.ConfigDict()
    config.conditional.num_classes = 0          # 0: unconditional (the paper); the dataset's number of classes
    config.conditional.embedding_dim = 10       # G: z is concatenated with a learned class embedding this long
                                                # (50 let the class drown out z on digits: every sample of a
                                                # class alike; 10 keeps z in use)
    config.conditional.d_form = "projection"    # D: 'projection' (class embedding . pooled last features, added to
                                                # the logit) or 'concat' (class code as extra input channels)
    config.conv_impl = "auto"          # the strided convolutions of G and D: 'fast' (exact custom forms,
                                       # dcgan_jax/nn/convolutions.py), 'xla' (XLA's own and their gradients) or
                                       # 'auto' (per backend, the one benchmarks/conv_forms.py measured fastest:
                                       # 'fast' on CPU, 'xla' on backends not measured); the same math
    config.upsample = "subpixel"       # "subpixel" (G's form follows conv_impl) or "transpose" (always XLA's own
                                       # transposed convolution); the same math
    config.bn_momentum = 0.9           # running average decay (PyTorch's momentum 0.1)
    config.bn_epsilon = 1e-5
    config.sync_batchnorm = True       # batch statistics over the global batch (all devices) in training
    config.compute_dtype = "float32"   # 'bfloat16' on GPU/TPU: activations and convolutions; params, optimizer
                                       # states, batchnorm statistics, logits and losses stay float32

    # Optimization (the paper: Adam, lr 2e-4, beta1 0.5, batch 128).
    config.loss = "non_saturating"     # 'non_saturating', 'minimax', 'least_squares' or 'hinge'
    config.label_smoothing = 0.0       # one-sided: real targets 1 - label_smoothing
    config.batch_size = 128            # global, over all devices of all hosts
    config.num_train_steps = 10_000
    config.learning_rate = 2e-4
    config.beta1 = 0.5
    config.beta2 = 0.999
    config.adam_eps = 1e-8
    config.seed = 0
    config.parallelism = "pmap"        # 'pmap' or 'shard_map' (same step body, 1-D device mesh)
    config.ema_decay = 0.0             # > 0: keep a moving average of G's weights and batchnorm statistics with this
                                       # decay (e.g. 0.999; ramped up from 0.1 early on, dcgan_jax/training/ema.py);
                                       # samples, evaluations and every tool then use it. 0: off

    # How D is trained beyond the plain step (dcgan_jax/training/d_training.py); the defaults are the paper's step.
    config.d_training = ml_collections.ConfigDict()
    config.d_training.pretrain_steps = 0     # the first this-many steps update D only (G untouched)
    config.d_training.steps_per_g_step = 1   # k: D updates per G update (a step is one D update; G updates on every
                                             # k-th); num_train_steps counts D updates
    config.d_training.label_noise = 0.0      # n: D's targets drawn per example, real from U[1-s-n, 1-s] (s:
                                             # label_smoothing), fake from U[0, n]; not with loss='hinge'
    config.d_training.label_flip = 0.0       # each of D's examples takes the other side's target with this
                                             # probability (< 0.5); not with loss='hinge'
    config.d_training.instance_noise = 0.0   # std of gaussian noise added to every image D sees, real and fake
                                             # (images are in [-1, 1]; e.g. 0.1)
    config.d_training.instance_noise_decay_steps = 0  # ... decayed linearly to 0 at this step (0: constant)

    # Outputs.
    config.log_every_steps = 50
    config.sample_every_steps = 500
    config.checkpoint_every_steps = 1000
    config.keep_checkpoints = 3
    config.keep_every_steps = 0        # also keep every this-many-steps checkpoint, to go back to (0: none); with
                                       # eval.every_steps the lowest-FID checkpoint is kept too (evaluated steps save)
    config.init_from = ""              # 'DIR' or 'DIR:STEP': a new run starts from that run's checkpoint (latest if
                                       # no STEP): its params, batchnorm statistics and Adam moments, at step 0
    # Collapse: D winning completely for a while (dcgan_jax/training/collapse.py).
    config.collapse = ml_collections.ConfigDict()
    config.collapse.patience = 5       # logged steps in a row with D winning completely -> a warning (0: never)
    config.collapse.d_fake = 0.01      # ... D winning completely: D(G(z)) below this
    config.collapse.loss_factor = 3.0  # ... and g_loss above this times its running median
    config.collapse.stop = False       # stop at that warning (exit 1), keeping the checkpoints from before
    config.num_fixed_samples = 64      # the fixed-z grid saved under workdir/samples/
    config.sample_random_z = True      # also a grid of fresh z (a function of seed and step) in samples/random/

    # Evaluation (dcgan_jax/evaluation/): during training every `every_steps`, and by `python -m dcgan_jax.evaluate`.
    config.eval = ml_collections.ConfigDict()
    config.eval.every_steps = 0               # FID/KID during training every this many steps; 0 disables
    config.eval.num_samples = 1000            # generated images per FID/KID
    config.eval.split = "test"                # held-out real images FID/KID compare against (capped at its size)
    config.eval.batch_size = 256              # inference batch for generators, D features and FID extractors
    config.eval.feature_extractor = "classifier"  # FID/KID features: 'classifier' (trained here) or 'inception'
    config.eval.inception_weights = ""        # .npz of InceptionV3 weights (dcgan_jax/evaluation/inception.py)
    config.eval.kid_subsets = 100             # KID: mean/std of the unbiased MMD^2 over this many random subsets
    config.eval.kid_subset_size = 1000        # ... of this size (capped at the smaller set)

    # The FID classifier (dcgan_jax/evaluation/classifier.py), trained once on a labelled dataset and cached.
    config.eval.classifier = ml_collections.ConfigDict()
    config.eval.classifier.dataset = ""       # '' = config.dataset; 'digits' or a supervised TFDS name
    config.eval.classifier.dir = ""           # '' = ~/.cache/dcgan_jax/classifiers/<dataset>_<size>px_<C>ch
    config.eval.classifier.steps = 1000       # ~98% on digits; raise for CIFAR-10 (e.g. 20_000 on a GPU)
    config.eval.classifier.batch_size = 64
    config.eval.classifier.learning_rate = 1e-3
    config.eval.classifier.width = 32         # channels of the first conv block (doubling per block)
    config.eval.classifier.feature_dim = 128  # penultimate layer: the FID/KID feature space
    config.eval.classifier.max_shift = 2      # augmentation: random translations up to this many pixels

    # The paper's D-feature linear probe (`evaluate --task=classify`, dcgan_jax/evaluation/probe.py).
    config.eval.probe = ml_collections.ConfigDict()
    config.eval.probe.labels_per_class = 0        # labelled training examples per class (0 = all; SVHN paper: 100)
    config.eval.probe.validation_fraction = 0.1   # of the train split, held out to choose the SVM's C
    config.eval.probe.svm_c_values = (1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # the paper: 1e-4...1e-2
    config.eval.probe.solver = "jax"              # 'jax' (evaluation/svm.py, on the run's backend) or 'liblinear'
    config.eval.probe.svm_tol = 3e-3              # jax: stop at ||grad|| <= svm_tol ||grad at 0|| (liblinear: 1e-2)
    config.eval.probe.svm_max_newton = 50         # jax: Newton steps per C at most
    config.eval.probe.svm_max_cg = 100            # jax: conjugate-gradient steps per Newton step at most
    config.eval.probe.block_rows = 2048           # jax: features are held on the device in blocks of this many rows
    config.eval.probe.svm_max_iter = 5000         # liblinear: dual coordinate-descent iterations at most
    config.eval.probe.recompute_batch_stats = True  # D's batchnorm statistics re-estimated on the labelled images
    return config


# Flat names of earlier versions -> today's dotted fields.
RENAMED_FIELDS = {
    "eval_every_steps": "eval.every_steps", "eval_num_samples": "eval.num_samples", "eval_split": "eval.split",
    "eval_batch_size": "eval.batch_size", "eval_feature_extractor": "eval.feature_extractor",
    "eval_inception_weights": "eval.inception_weights", "eval_kid_subsets": "eval.kid_subsets",
    "eval_kid_subset_size": "eval.kid_subset_size",
    "eval_classifier_dataset": "eval.classifier.dataset", "eval_classifier_dir": "eval.classifier.dir",
    "eval_classifier_steps": "eval.classifier.steps", "eval_classifier_batch_size": "eval.classifier.batch_size",
    "eval_classifier_learning_rate": "eval.classifier.learning_rate",
    "eval_classifier_width": "eval.classifier.width", "eval_classifier_feature_dim": "eval.classifier.feature_dim",
    "eval_classifier_max_shift": "eval.classifier.max_shift",
    "eval_labels_per_class": "eval.probe.labels_per_class",
    "eval_validation_fraction": "eval.probe.validation_fraction", "eval_svm_c_values": "eval.probe.svm_c_values",
    "eval_svm_max_iter": "eval.probe.svm_max_iter", "eval_recompute_batch_stats": "eval.probe.recompute_batch_stats",
}
# Upsampling forms earlier versions offered, saved in their checkpoints' configs: the same math as "subpixel".
RETIRED_VALUES = {"upsample": {"subpixel_conv": "subpixel", "subpixel_gemm": "subpixel"}}


def _set(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
    *groups, field = dotted.split(".")
    for group in groups:
        config = config[group]
    if isinstance(config.get(field), ml_collections.ConfigDict) and isinstance(value, Mapping):
        for key, inner in value.items():
            _set(config[field], key, inner)
    elif isinstance(value, list) and isinstance(config.get(field), tuple):
        config[field] = tuple(value)  # JSON has no tuples
    else:
        config[field] = value


def from_saved(saved: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """A config saved with a checkpoint (any version), on top of today's defaults: fields added since get their
    defaults, renamed ones their new names, retired values their current equivalents. Unknown fields are kept."""
    config = get_config()
    for key, value in dict(saved).items():
        key = RENAMED_FIELDS.get(key, key)
        value = RETIRED_VALUES.get(key, {}).get(value, value) if isinstance(value, str) else value
        if key.split(".")[0] in config:
            _set(config, key, value)
        else:
            with config.unlocked():
                config[key] = value
    return config


def config_path(name_or_path: str) -> str:
    """A config file: a path as given, or the name of one of the shipped configs ('lsun' -> configs/lsun.py)."""
    if os.path.exists(name_or_path) or os.sep in name_or_path or name_or_path.endswith(".py"):
        return name_or_path
    return os.path.join(CONFIGS_DIR, f"{name_or_path}.py")


def load_config(name_or_path: str) -> ml_collections.ConfigDict:
    """`get_config()` of a config file loaded by path (no package import, so any folder layout works), or of a
    shipped config by name: `load_config("configs/lsun.py")`, `load_config("digits")`."""
    path = config_path(name_or_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"dcgan_jax_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()
