"""The Keras optimizers against the course's rules, Keras's built-ins, compile/fit, distribution."""

import numpy as np
import pytest
import tensorflow as tf

import cs231n_tf  # noqa: F401
from cs231n_tf.errors import ConfigError, InputTypeError
from cs231n_tf.optim import keras as course, rules, schedules
from cs231n_tf.train.strategies import make_strategy

# Learning rates and hyperparameters exactly representable in float32: the Keras base class keeps
# the learning rate in a float32 variable and Keras's built-ins cast their hyperparameters through
# float32, so with these values float64 runs agree to rounding error.
LR = 2.0**-5

# rule name, optimizer class, the rule's config keys = the class's keyword arguments
PAIRS = [
    ("sgd", course.CourseSGD, {}),
    ("sgd_momentum", course.CourseSGDMomentum, {"momentum": 0.75}),
    ("nesterov_momentum", course.CourseNesterov, {"momentum": 0.75}),
    ("adagrad", course.CourseAdaGrad, {"epsilon": 0.25}),
    ("rmsprop", course.CourseRMSProp, {"decay_rate": 0.875, "epsilon": 0.25}),
    ("adam", course.CourseAdam, {"beta1": 0.75, "beta2": 0.875, "epsilon": 0.25}),
]


def random_steps(n, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), [rng.normal(size=shape) for _ in range(n)]


def apply_keras(optimizer, w0, grads):
    var = tf.Variable(w0)
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), var)])
    return var.numpy()


def apply_rule(name, w0, grads, **config):
    w, config = w0, {"learning_rate": LR, **config}
    for g in grads:
        w, config = rules.RULES[name](w, g, config)
    return w


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("name,cls,hyper", PAIRS, ids=[p[0] for p in PAIRS])
def test_optimizer_takes_the_rules_steps_in_float64(name, cls, hyper, steps):
    w0, grads = random_steps(steps)
    expected = apply_rule(name, w0, grads, **hyper)
    got = apply_keras(cls(learning_rate=LR, **hyper), w0, grads)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    assert not np.allclose(got, w0)


KERAS_EQUIVALENTS = [
    # (course optimizer, Keras optimizer with the settings under which the two coincide)
    (course.CourseSGD(LR), tf.keras.optimizers.SGD(LR)),
    (course.CourseSGDMomentum(LR, momentum=0.75), tf.keras.optimizers.SGD(LR, momentum=0.75)),
    (course.CourseNesterov(LR, momentum=0.75),
     tf.keras.optimizers.SGD(LR, momentum=0.75, nesterov=True)),
    (course.CourseAdaGrad(LR, epsilon=0.0),
     tf.keras.optimizers.Adagrad(LR, initial_accumulator_value=0.0, epsilon=0.0)),
    (course.CourseRMSProp(LR, decay_rate=0.875, epsilon=0.0),
     tf.keras.optimizers.RMSprop(LR, rho=0.875, epsilon=0.0)),
    (course.CourseAdam(LR, beta1=0.75, beta2=0.875, epsilon=0.25),
     tf.keras.optimizers.Adam(LR, beta_1=0.75, beta_2=0.875, epsilon=0.25, adaptive_epsilon=True)),
]


@pytest.mark.parametrize("ours,keras", KERAS_EQUIVALENTS,
                         ids=["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_equals_keras_builtin_where_conventions_coincide(ours, keras):
    w0, grads = random_steps(4, seed=3)
    np.testing.assert_allclose(apply_keras(ours, w0, grads), apply_keras(keras, w0, grads),
                               rtol=1e-12, atol=1e-14)


def test_where_keras_defaults_differ():
    """The documented differences are real: epsilon placement and Adagrad's initial accumulator."""
    w0, grads = random_steps(2, seed=4)
    grads = [1e-2 * g for g in grads]  # small gradients, so epsilon matters
    eps = 1e-3
    pairs = [
        (course.CourseAdam(LR, epsilon=eps), tf.keras.optimizers.Adam(LR, epsilon=eps)),
        (course.CourseRMSProp(LR, decay_rate=0.875, epsilon=eps),
         tf.keras.optimizers.RMSprop(LR, rho=0.875, epsilon=eps)),
        (course.CourseAdaGrad(LR, epsilon=0.0), tf.keras.optimizers.Adagrad(LR, epsilon=0.0)),
    ]
    for ours, keras in pairs:
        step_ours = apply_keras(ours, w0, grads) - w0
        step_keras = apply_keras(keras, w0, grads) - w0
        assert np.max(np.abs(step_ours - step_keras) / np.abs(step_ours)) > 0.05


def test_schedule_sets_the_step_size():
    schedule = tf.keras.optimizers.schedules.PiecewiseConstantDecay([2], [0.5, 0.125])
    var = tf.Variable([1.0, -2.0], dtype=tf.float64)
    opt = course.CourseSGD(schedule)
    for _ in range(4):
        opt.apply_gradients([(tf.constant([1.0, 1.0], tf.float64), var)])
    # Keras's PiecewiseConstantDecay holds a value while step <= boundary: steps 0-2 use 0.5.
    np.testing.assert_allclose(var.numpy(), [1.0 - 1.625, -2.0 - 1.625])


def test_gradient_clipping_pass_through():
    g1, g2 = np.array([3.0, 4.0]), np.array([0.0, 12.0])  # norms 5 and 12, global norm 13

    def step(**clip):
        v1, v2 = tf.Variable(np.zeros(2)), tf.Variable(np.zeros(2))
        course.get_optimizer("sgd", 1.0, **clip).apply_gradients(
            [(tf.constant(g1), v1), (tf.constant(g2), v2)])
        return -v1.numpy(), -v2.numpy()

    by_value = step(clipvalue=3.5)
    np.testing.assert_allclose(by_value[0], [3.0, 3.5])
    np.testing.assert_allclose(by_value[1], [0.0, 3.5])
    by_norm = step(clipnorm=6.0)
    np.testing.assert_allclose(by_norm[0], g1)
    np.testing.assert_allclose(by_norm[1], g2 / 2.0)
    by_global = step(global_clipnorm=6.5)
    np.testing.assert_allclose(by_global[0], g1 / 2.0)
    np.testing.assert_allclose(by_global[1], g2 / 2.0)


def linear_problem():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    kernel0 = rng.normal(size=(3, 1)).astype(np.float32)
    return x, y, kernel0


def linear_model(kernel0, dtype=None):
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1, dtype=dtype)])
    model.layers[-1].set_weights([kernel0, np.zeros(1, np.float32)])
    return model


def test_compile_and_fit_take_the_rules_steps():
    x, y, kernel0 = linear_problem()
    model = linear_model(kernel0)
    model.compile(optimizer=course.get_optimizer("adam", 0.05), loss="mse")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == 2

    ref = linear_model(kernel0)
    weights = [w.astype(np.float64) for w in ref.get_weights()]
    configs = [{"learning_rate": 0.05}, {"learning_rate": 0.05}]
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(ref(x) - y))
        grads = tape.gradient(loss, ref.trainable_variables)
        for i, g in enumerate(grads):
            weights[i], configs[i] = rules.adam(weights[i], g.numpy().astype(np.float64), configs[i])
        ref.set_weights(weights)
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def custom_loop(strategy, optimizer_fn, x, y, kernel0, steps=3):
    """A tf.function loop in the style of the trainer: per-replica loss scaled by the global batch."""
    with strategy.scope():
        model = linear_model(kernel0)
        optimizer = optimizer_fn()

    @tf.function
    def train_step(xb, yb):
        def replica_step(xr, yr):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(model(xr) - yr)) / x.shape[0]
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        strategy.run(replica_step, args=(xb, yb))

    dataset = tf.data.Dataset.from_tensors((x, y))
    dist = iter(strategy.experimental_distribute_dataset(dataset.repeat(steps)))
    for _ in range(steps):
        train_step(*next(dist))
    return model.get_weights(), optimizer


@pytest.mark.parametrize("name", ["nesterov", "adam"])
def test_mirrored_strategy_over_two_replicas_matches_one_device(name):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "conftest splits the CPU into two logical devices"
    x, y, kernel0 = linear_problem()
    make = lambda: course.get_optimizer(name, 0.05)  # noqa: E731
    strategy = make_strategy("mirrored")  # two logical CPUs, as the trainer makes it
    assert strategy.num_replicas_in_sync == 2
    mirrored, opt = custom_loop(strategy, make, x, y, kernel0)
    single, _ = custom_loop(tf.distribute.OneDeviceStrategy(devices[0]), make, x, y, kernel0)
    assert opt.iterations.numpy() == 3
    assert not np.allclose(mirrored[0], kernel0)
    for a, b in zip(mirrored, single):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def lso_steps(optimizer, model, x, y, poison_step=None):
    for step in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(model(x), tf.float32) - y))
            if step == poison_step:
                loss = loss * np.inf  # an overflowing step must be skipped, not applied
            scaled = optimizer.get_scaled_loss(loss)
        grads = optimizer.get_unscaled_gradients(tape.gradient(scaled, model.trainable_variables))
        optimizer.apply_gradients(zip(grads, model.trainable_variables))


def test_inside_loss_scale_optimizer():
    x, y, kernel0 = linear_problem()
    plain = linear_model(kernel0)
    plain_opt = course.CourseAdam(0.05)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(plain(x) - y))
        plain_opt.apply_gradients(zip(tape.gradient(loss, plain.trainable_variables),
                                      plain.trainable_variables))

    # Loss scaling multiplies and divides by a power of two: exact in float32. The poisoned last
    # step halves the loss scale and leaves the weights alone (Keras still counts it as a step).
    wrapped = linear_model(kernel0)
    lso = tf.keras.mixed_precision.LossScaleOptimizer(course.CourseAdam(0.05))
    lso_steps(lso, wrapped, x, y, poison_step=2)
    assert int(lso.inner_optimizer.iterations) == 3
    assert float(lso.loss_scale) == 2.0**14
    for a, b in zip(wrapped.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    # Under mixed_float16 the weights and slots stay float32 and the course's Adam tracks Keras's
    # (adaptive-epsilon) Adam through the float16 forward pass.
    results = []
    for inner in (course.CourseAdam(0.05), tf.keras.optimizers.Adam(0.05, epsilon=1e-8,
                                                                     adaptive_epsilon=True)):
        model = linear_model(kernel0, dtype="mixed_float16")
        opt = tf.keras.mixed_precision.LossScaleOptimizer(inner)
        lso_steps(opt, model, x, y)
        assert all(v.dtype == tf.float32 for v in inner.variables[1:])
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(results[0][0], kernel0)


def test_checkpoint_resume_continues_exactly(tmp_path):
    x, y, kernel0 = linear_problem()

    def train(model, opt, steps):
        for _ in range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x) - y))
            opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                    model.trainable_variables))

    straight = linear_model(kernel0)
    train(straight, course.CourseNesterov(0.05), 4)

    first = linear_model(kernel0)
    opt = course.CourseNesterov(0.05)
    train(first, opt, 2)
    path = tf.train.Checkpoint(model=first, optimizer=opt).write(str(tmp_path / "ckpt"))

    resumed = linear_model(np.zeros_like(kernel0))
    opt2 = course.CourseNesterov(0.05)
    opt2.build(resumed.trainable_variables)
    tf.train.Checkpoint(model=resumed, optimizer=opt2).read(path).assert_consumed()
    assert int(opt2.iterations) == 2
    train(resumed, opt2, 2)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_model_save_and_load_keeps_optimizer_state(tmp_path):
    x, y, kernel0 = linear_problem()
    model = linear_model(kernel0)
    model.compile(optimizer=course.get_optimizer(
        "adam", schedules.make_schedule("step", 0.05, 10, warmup_steps=1, every=1, factor=0.5)),
        loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = tf.keras.models.load_model(tmp_path / "model.keras")  # safe_mode: registered classes
    assert type(loaded.optimizer) is course.CourseAdam
    assert isinstance(loaded.optimizer._learning_rate, schedules.LinearWarmup)
    assert int(loaded.optimizer.iterations) == 2
    for m in (model, loaded):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_config_round_trip_with_a_schedule():
    schedule = schedules.LinearWarmup(tf.keras.optimizers.schedules.CosineDecay(0.1, 50), 5)
    opt = course.get_optimizer("rmsprop", schedule, decay_rate=0.9, clipnorm=1.0)
    clone = tf.keras.optimizers.deserialize(tf.keras.optimizers.serialize(opt))
    assert type(clone) is course.CourseRMSProp
    assert (clone.decay_rate, clone.epsilon, clone.clipnorm) == (0.9, 1e-8, 1.0)
    assert isinstance(clone._learning_rate, schedules.LinearWarmup)
    for step in (0, 3, 5, 30):
        assert float(clone._learning_rate(step)) == pytest.approx(float(schedule(step)))


def test_get_optimizer_names_and_errors():
    assert type(course.get_optimizer("momentum")) is course.CourseSGDMomentum
    assert course.get_optimizer("adam").learning_rate.numpy() == pytest.approx(1e-3)
    nesterov = course.get_optimizer("keras_nesterov", 0.1)
    assert type(nesterov) is tf.keras.optimizers.SGD and nesterov.nesterov and nesterov.momentum == 0.9
    adamw = course.get_optimizer("adamw", 1e-3, weight_decay=0.01)
    assert type(adamw) is tf.keras.optimizers.AdamW and adamw.weight_decay == 0.01
    assert set(course.OPTIMIZER_NAMES) >= {"sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                           "adam", "adamw"}
    with pytest.raises(ConfigError, match="'lbfgs'.*accepted: sgd, momentum"):
        course.get_optimizer("lbfgs")
    with pytest.raises(ConfigError, match="beta1.*accepted"):
        course.get_optimizer("sgd", 0.1, beta1=0.9)
    with pytest.raises(ConfigError, match="learning_rate"):
        course.get_optimizer("sgd", 0.0)
    with pytest.raises(InputTypeError, match="LearningRateSchedule"):
        course.get_optimizer("sgd", "0.1")
    with pytest.raises(ConfigError, match="momentum"):
        course.get_optimizer("momentum", 0.1, momentum=1.5)
