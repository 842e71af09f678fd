"""Attacks against cleverhans 4 (same images), eps-ball properties, targeted loss, linear closed form."""

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf import adversarial
from cs231n_tf.errors import ConfigError, DataError, InputTypeError

cleverhans_fgm = pytest.importorskip("cleverhans.tf2.attacks.fast_gradient_method").fast_gradient_method
cleverhans_pgd = pytest.importorskip("cleverhans.tf2.attacks.projected_gradient_descent").projected_gradient_descent


@pytest.fixture(scope="module")
def setup():
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)),
                                 tf.keras.layers.Flatten(), tf.keras.layers.Dense(5)])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (6, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 5, 6)
    return model, x, y


def _ce(model, x, y):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x)).numpy()


def test_fgsm_matches_cleverhans(setup):
    model, x, y = setup
    ours = adversarial.fgsm(model, x, y, 0.1)
    ref = cleverhans_fgm(model, tf.constant(x), 0.1, np.inf, clip_min=0.0, clip_max=1.0, y=tf.constant(y)).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert np.abs(ours - x).max() <= 0.1 + 1e-6
    assert np.mean(_ce(model, ours, y)) > np.mean(_ce(model, x, y))


@pytest.mark.parametrize("norm,eps,step", [("inf", 0.1, 0.02), (2, 0.5, 0.1)])
def test_pgd_matches_cleverhans(setup, norm, eps, step):
    model, x, y = setup
    ours = adversarial.pgd(model, x, y, eps, step, 7, norm=norm, random_start=False)
    ref = cleverhans_pgd(model, tf.constant(x), eps, step, 7, np.inf if norm == "inf" else 2, clip_min=0.0,
                         clip_max=1.0, y=tf.constant(y), rand_init=False, sanity_checks=False).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    delta = (ours - x).reshape(len(x), -1)
    size = np.abs(delta).max(1) if norm == "inf" else np.linalg.norm(delta, axis=1)
    assert size.max() <= eps + 1e-5 and ours.min() >= 0 and ours.max() <= 1


def test_pgd_random_start_properties(setup):
    model, x, y = setup
    a = adversarial.pgd(model, x, y, 0.1, 0.02, 3, seed=1)
    b = adversarial.pgd(model, x, y, 0.1, 0.02, 3, seed=1)
    c = adversarial.pgd(model, x, y, 0.1, 0.02, 3, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.abs(a - x).max() <= 0.1 + 1e-6
    a2 = adversarial.pgd(model, x, y, 0.5, 0.1, 3, norm=2, seed=1)
    assert np.linalg.norm((a2 - x).reshape(6, -1), axis=1).max() <= 0.5 + 1e-5


def test_momentum_matches_cleverhans(setup):
    from cleverhans.tf2.attacks.momentum_iterative_method import momentum_iterative_method
    model, x, y = setup
    ours = adversarial.momentum_iterative_fgsm(model, x, y, 0.1, 0.02, 6)
    ref = momentum_iterative_method(model, tf.constant(x), 0.1, 0.02, 6, np.inf, clip_min=0.0, clip_max=1.0,
                                    y=tf.constant(y), sanity_checks=False).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_targeted_lowers_target_loss(setup):
    model, x, _ = setup
    t = np.full(6, 3)
    for adv in (adversarial.fgsm(model, x, t, 0.05, targeted=True),
                adversarial.pgd(model, x, t, 0.1, 0.02, 5, targeted=True)):
        assert np.all(_ce(model, adv, t) < _ce(model, x, t))


def test_softmax_output_is_attacked_through_log_probabilities(setup):
    model, x, y = setup
    soft = tf.keras.Sequential([model, tf.keras.layers.Activation("softmax")])
    soft_dense = tf.keras.Sequential([tf.keras.layers.Flatten(input_shape=(8, 8, 1)),
                                      tf.keras.layers.Dense(5, activation="softmax")])
    np.testing.assert_allclose(adversarial.fgsm(lambda t: soft(t), x, y, 0.1), adversarial.fgsm(model, x, y, 0.1),
                               atol=1e-6)
    dense = soft_dense.layers[1]
    logits = lambda t: tf.matmul(tf.reshape(t, [-1, 64]), dense.kernel) + dense.bias  # noqa: E731
    np.testing.assert_allclose(adversarial.fgsm(soft_dense, x, y, 0.1), adversarial.fgsm(logits, x, y, 0.1),
                               atol=1e-6)


def test_fool_reaches_target(setup):
    model, x, _ = setup
    out = adversarial.fool(model, x, 2, step_size=0.5, max_steps=200)
    pred = np.argmax(model(out["images"]).numpy(), 1)
    assert out["success"].all() and (pred == 2).all()
    delta = (out["images"] - x).reshape(6, -1)
    np.testing.assert_allclose(out["l2"], np.linalg.norm(delta, axis=1), rtol=1e-5)
    np.testing.assert_allclose(out["linf"], np.abs(delta).max(1), rtol=1e-5)
    already = np.argmax(model(x).numpy(), 1) == 2
    assert (out["steps"][already] == 0).all() and (out["steps"][~already] > 0).all()


def test_linear_attack_closed_form():
    from cs231n_tf.classic.linear import SoftmaxClassifier
    rng = np.random.default_rng(1)
    clf = SoftmaxClassifier()
    clf.W = rng.normal(size=(20, 4)) * 0.1
    clf.b = np.zeros(4)
    x = rng.normal(size=(5, 20))
    pred = clf.predict(x)
    target = (pred + 1) % 4
    eps = 0.3
    adv = adversarial.linear_attack(clf, x, target, eps)
    W = clf.W.numpy() if hasattr(clf.W, "numpy") else np.asarray(clf.W)
    margin = lambda z: np.einsum("nd,dn->n", z, W[:, target] - W[:, pred])  # noqa: E731
    np.testing.assert_allclose(margin(adv) - margin(x), eps * np.abs(W[:, target] - W[:, pred]).sum(0), rtol=1e-10)
    big = adversarial.linear_attack(clf, x, target, 5.0)
    need = -margin(x) / np.abs(W[:, target] - W[:, pred]).sum(0)
    assert (need < 5.0).all() and (clf.predict(big) == target).all()


def test_robustness_curve(setup):
    model, x, y = setup
    curve = adversarial.robustness_curve(model, x, y, [0.0, 0.1], batch_size=4)
    clean = np.mean(np.argmax(model(x).numpy(), 1) == y)
    adv = adversarial.fgsm(model, x, y, 0.1)
    assert curve == [{"eps": 0.0, "accuracy": pytest.approx(clean)},
                     {"eps": 0.1, "accuracy": pytest.approx(np.mean(np.argmax(model(adv).numpy(), 1) == y))}]
    pcurve = adversarial.robustness_curve(model, x, y, [0.1], method="pgd", steps=3, random_start=False)
    assert pcurve[0]["accuracy"] <= curve[1]["accuracy"] + 1e-9


@pytest.mark.parametrize("call,err,msg", [
    (lambda m, x, y: adversarial.fgsm(m, x, y, -0.1), ConfigError, "eps"),
    (lambda m, x, y: adversarial.fgsm(m, x, y, 1.5), ConfigError, "pixel range"),
    (lambda m, x, y: adversarial.pgd(m, x, y, 0.1, 0.01, 3, norm="l7"), ConfigError, "norm"),
    (lambda m, x, y: adversarial.pgd(m, x, y, 0.1, 0.01, 0), ConfigError, "steps"),
    (lambda m, x, y: adversarial.fgsm(m, x, y + 5, 0.1), DataError, "labels must be in 0..4"),
    (lambda m, x, y: adversarial.robustness_curve(m, x, y, [-1.0]), ConfigError, "eps"),
])
def test_bad_input(setup, call, err, msg):
    model, x, y = setup
    with pytest.raises(err, match=msg):
        call(model, x, y)


def test_fgsm_and_pgd_on_a_saved_model_equal_the_keras_model(tmp_path):
    """A SavedModel export (normalisation inside the graph) is attacked through its serving signature."""
    from cs231n_tf.export.exporter import ServingModule, write_saved_model

    tf.keras.utils.set_random_seed(1)
    model = tf.keras.Sequential([tf.keras.layers.Flatten(input_shape=(4, 4, 1)), tf.keras.layers.Dense(8, "relu"),
                                 tf.keras.layers.Dense(3)])
    mean, std = np.float32([0.3]), np.float32([0.25])
    write_saved_model(ServingModule(model, mean, std, (4, 4, 1)), str(tmp_path / "sm"))
    x = np.random.default_rng(0).uniform(0, 1, (6, 4, 4, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    keras_fn = lambda t: model((t - mean) / std)  # noqa: E731
    np.testing.assert_allclose(adversarial.fgsm(str(tmp_path / "sm"), x, y, 0.1), adversarial.fgsm(keras_fn, x, y, 0.1),
                               atol=1e-6)
    np.testing.assert_allclose(adversarial.pgd(str(tmp_path / "sm"), x, y, 0.1, 0.03, 5, random_start=False),
                               adversarial.pgd(keras_fn, x, y, 0.1, 0.03, 5, random_start=False), atol=1e-5)
    (tmp_path / "bad").mkdir()
    tf.saved_model.save(tf.Module(), str(tmp_path / "bad"))
    with pytest.raises(InputTypeError, match="serving_default"):
        adversarial.fgsm(str(tmp_path / "bad"), x, y, 0.1)
