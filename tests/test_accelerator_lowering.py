"""GPU and TPU programs, lowered on a machine without either (issue 35).

No accelerator runs in CI, so every program the project jits for one is exported with
`jax.export` for the platforms cuda and tpu: traced and lowered to StableHLO for them, not
compiled, which a CPU-only JAX does. A construct only a CPU has (a host callback, a custom call
without a GPU or TPU form, an op TPUs cannot lower) fails the export here instead of a job on a
cluster; `test_a_cpu_only_construct_fails_the_export` shows that it does. The train steps run over a
2-device mesh, which needs a JAX process started with 2 devices: tests/lowering_checks.py, in a
child process.
"""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental import io_callback

from dcgan_jax.evaluation import classifier, inception, nystrom, svm
from dcgan_jax.nn import convolutions, features, generate, models
from tests.helpers import tiny_config

PLATFORMS = ("cuda", "tpu")
# The form conv_impl='auto' gives each platform: the fast forms where they were measured faster
# (convolutions.FAST_FORMS_MEASURED_ON: the CPU), XLA's own convolutions elsewhere.
AUTO_FORMS = {"cuda": "xla", "tpu": "xla", "cpu": "fast"}
Spec = jax.ShapeDtypeStruct


def export(fn, *args, platforms=PLATFORMS, **kwargs) -> jax.export.Exported:
    """Jitted `fn` traced and lowered for `platforms` (`args`: ShapeDtypeStructs; `kwargs`: its
    static arguments). jax.export lowers for platforms this machine lacks and raises on what they
    cannot run."""
    exported = jax.export.export(fn, platforms=platforms)(*args, **kwargs)
    assert exported.platforms == tuple(platforms)
    return exported


def transposed_convolutions(stablehlo: str) -> int:
    """Input-dilated (transposed) convolutions in a program's text. conv_impl='xla' makes them (G's
    upsampling, D's input gradient); 'fast' none (sub-pixel and space-to-depth forms)."""
    return stablehlo.count("lhs_dilate")


def check_form(stablehlo: str, form: str) -> None:
    """Asserts that a program holding G (or D's gradient) was built with conv_impl `form`."""
    found = "xla" if transposed_convolutions(stablehlo) else "fast"
    assert found == form, f"built with conv_impl={form!r}, the program has the {found!r} form"


def by_conv_form(conv_impl: str, platforms=PLATFORMS) -> dict[str, tuple[str, ...]]:
    """{the form `conv_impl` resolves to: the platforms that get it}. The form is chosen when the
    model is built, so a program exported for several platforms is built once per form."""
    groups = {}
    for platform in platforms:
        form = convolutions.resolve_conv_impl(conv_impl, platform)
        groups[form] = groups.get(form, ()) + (platform,)
    return groups


def abstract_g(model):
    """G's variables for `model` (config.model), as shapes: nothing is computed."""
    return jax.eval_shape(lambda: models.init_variables(jax.random.PRNGKey(0), model)[0])


# The module-level jitted functions of the parts of the project that run on an accelerator besides
# the train step (which tests/lowering_checks.py lowers): each is lowered by a test below.
LOWERED = {
    generate: {"_apply", "_activations"},
    features: {"_features_batch", "_batch_moments"},
    inception: {"_features"},
    classifier: {"_apply"},
    svm: {
        "_masked_sum",
        "_masked_square",
        "_scale_block",
        "_margins_and_grad",
        "_hessian_product",
        "_predict_blocks",
        "_line_search",
        "_cg_loop",
    },
    nystrom: {"_sketch_block", "_from_sketch"},
}


def _is_jitted(value) -> bool:
    return callable(value) and hasattr(value, "trace") and hasattr(value, "lower")


def test_no_jitted_function_is_left_out():
    """A new jitted function in these modules fails here until a test below lowers it."""
    for module, names in LOWERED.items():
        jitted = {name for name, value in vars(module).items() if _is_jitted(value)}
        assert jitted == names, module.__name__


@pytest.mark.slow
def test_train_steps_lower_for_gpu_and_tpu():
    """The train step of each option that changes its program, pmap and shard_map, the batch split
    over 2 devices, built with the convolutions' form of its platforms."""
    script = os.path.join(os.path.dirname(__file__), "lowering_checks.py")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    # 8 configs x 2 parallel forms for cuda and tpu, and the default config's CPU form for contrast.
    assert result.stdout.count("OK ") == 18, result.stdout


SAMPLING_MODELS = {  # (config name, overrides)
    "digits": ("digits", {}),
    "digits_conditional": ("digits_conditional", {}),
    "bfloat16": ("digits", dict(model=dict(compute_dtype="bfloat16"))),
    "conv_impl=fast": ("digits", dict(model=dict(conv_impl="fast"))),
}


@pytest.mark.parametrize("name", sorted(SAMPLING_MODELS))
def test_sampling_lowers_for_gpu_and_tpu(name):
    """G in inference mode (generate.generate), with batch statistics (its batch_stats_mode) and its
    hidden layers (generate.activations), as sample/explore run them."""
    config_name, overrides = SAMPLING_MODELS[name]
    model = tiny_config(config_name, **overrides).model
    g_vars, z = abstract_g(model), Spec((4, models.g_input_dim(model)), jnp.float32)
    for form, platforms in by_conv_form(model.conv_impl).items():
        generator, _ = models.build_models(model, backend=platforms[0])
        for batch_stats_mode in (False, True):
            exported = export(
                generate._apply, generator, g_vars, z, None, batch_stats_mode, platforms=platforms
            )
            check_form(exported.mlir_module(), form)
        export(generate._activations, generator, g_vars, z, layer=1, platforms=platforms)


def test_conv_impl_auto_takes_each_platforms_form():
    """The program exported for a platform has the form 'auto' picks for that platform, not for the
    machine that builds it: building without a backend on this CPU gives the CPU's form."""
    model = tiny_config().model
    assert model.conv_impl == "auto"
    assert models.build_models(model)[0].conv_impl == "fast"  # this machine's: never for a GPU
    # jax.default_backend() calls a GPU 'gpu'; jax.export, 'cuda': the same form.
    assert models.build_models(model, backend="gpu")[0].conv_impl == AUTO_FORMS["cuda"]
    g_vars, z = abstract_g(model), Spec((4, model.latent_dim), jnp.float32)
    for platform, form in AUTO_FORMS.items():
        generator, discriminator = models.build_models(model, backend=platform)
        assert generator.conv_impl == discriminator.conv_impl == form, platform
        exported = export(generate._apply, generator, g_vars, z, None, False, platforms=(platform,))
        check_form(exported.mlir_module(), form)
    assert by_conv_form("auto") == {"xla": PLATFORMS}


@pytest.mark.parametrize("shape", [(2, 32, 32, 1), (2, 64, 64, 3)])
def test_inception_features_lower_for_gpu_and_tpu(shape):
    """The FID InceptionV3 on uint8 pixels, in both preprocessing protocols; its weights as shapes
    (inception.param_shapes), so no weights file is needed."""
    params = {name: Spec(s, jnp.float32) for name, s in inception.param_shapes().items()}
    for tf_protocol in (True, False):
        export(inception._features, params, Spec(shape, jnp.uint8), tf_protocol=tf_protocol)


def test_fid_classifier_lowers_for_gpu_and_tpu():
    """The project's own FID classifier: its features (fid.make_feature_extractor) and its
    training step (a run trains it on its backend when it has none yet)."""
    net = classifier.SmallCNN(num_classes=10, width=4, feature_dim=16)
    images = Spec((8, 32, 32, 1), jnp.float32)
    params = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), jnp.zeros(images.shape)))
    params = params["params"]
    export(classifier._apply, net, params, images)
    tx = optax.adam(1e-3)
    opt_state = jax.eval_shape(tx.init, params)
    step = classifier.make_train_step(net, tx)
    export(step, params, opt_state, images, Spec((8,), jnp.int32))


def test_probe_features_lower_for_gpu_and_tpu():
    """D's features for the linear probe (features.discriminator_features, and the batchnorm
    statistics the probe recomputes), for each platform's form of D."""
    model = tiny_config().model
    d_vars = jax.eval_shape(lambda: models.init_variables(jax.random.PRNGKey(0), model)[1])
    images = Spec((4, 32, 32, 1), jnp.float32)
    for platforms in by_conv_form(model.conv_impl).values():
        _, discriminator = models.build_models(model, backend=platforms[0])
        export(features._features_batch, discriminator, d_vars, images, platforms=platforms)
        export(features._batch_moments, discriminator, d_vars, images, platforms=platforms)


def test_probe_svm_lowers_for_gpu_and_tpu():
    """The probe's L2-SVM (svm.py): 2 blocks of 8 rows, 5 features, 3 classes; CG with and without
    the Nystrom preconditioner (nystrom.py), whose QR, Cholesky, triangular solve and SVD are
    the linear algebra a GPU and a TPU each lower in their own way."""
    f32 = jnp.float32
    block, blocks, rows = Spec((8, 5), f32), [Spec((8, 5), f32)] * 2, Spec((8,), f32)
    w, b, c = Spec((3, 5), f32), Spec((3,), f32), Spec((), f32)
    per_row, weights = Spec((16, 3), f32), Spec((16,), f32)  # targets, margins; row weights
    export(svm._masked_sum, block, rows)
    export(svm._masked_square, block, rows, Spec((5,), f32))
    export(svm._scale_block, block, Spec((5,), f32), Spec((5,), f32))
    export(svm._margins_and_grad, blocks, w, b, per_row, weights, c)
    export(svm._hessian_product, blocks, per_row, w, b, c)
    export(svm._predict_blocks, blocks, w, b)
    export(svm._line_search, w, b, w, b, per_row, per_row, per_row, weights, c)
    pre = nystrom.Nystrom(Spec((6, 4), f32), Spec((4,), f32), Spec((), f32))
    for preconditioner in (None, pre):
        export(svm._cg_loop, blocks, per_row, w, b, c, b, max_cg=5, pre=preconditioner)
    sketch = Spec((6, 4), f32)
    export(nystrom._sketch_block, sketch, block, rows, sketch)
    export(nystrom._from_sketch, sketch, sketch, Spec((), f32))
    export(jax.jit(jnp.linalg.qr), sketch)  # nystrom.sketch's QR, run outside a jitted function


def _host(x):
    return np.asarray(x) * 2


CPU_ONLY = {
    "pure_callback": lambda x: jax.pure_callback(_host, Spec(x.shape, x.dtype), x),
    "io_callback": lambda x: io_callback(_host, Spec(x.shape, x.dtype), x),
    "debug.print": lambda x: (jax.debug.print("{}", x), x + 1)[1],
    "custom call": lambda x: jax.ffi.ffi_call("cpu_only_kernel", Spec(x.shape, x.dtype))(x),
    "eig (no TPU lowering)": lambda x: jnp.linalg.eigvals(x).real,
}


@pytest.mark.parametrize("name", sorted(CPU_ONLY))
def test_a_cpu_only_construct_fails_the_export(name):
    """The checks above cannot pass by lowering anything: a host callback, a custom call with no
    compatibility guarantee, and an op with no TPU lowering (nonsymmetric eig, which the CPU
    lowers through LAPACK) each fail the export."""
    # Which error depends on the construct (and on JAX's version): NotImplementedError for a
    # callback or a missing lowering, ValueError for a custom call, TypeError for debug.print.
    with pytest.raises((NotImplementedError, ValueError, TypeError)):
        export(jax.jit(CPU_ONLY[name]), Spec((3, 3), jnp.float32))


def test_eig_lowers_for_the_cpu():
    """The eig of the check above is a CPU-only construct, not an unlowerable one: CI on a CPU would
    run it."""
    eig = jax.jit(CPU_ONLY["eig (no TPU lowering)"])
    export(eig, Spec((3, 3), jnp.float32), platforms=("cpu",))
