import numpy as np
import pytest

from cs231n_tf.errors import ConfigError
from cs231n_tf.train.config import TrainConfig
from cs231n_tf.train.lr_finder import lr_range_test, lr_schedule, suggest
from cs231n_tf.train.config import load_data
from cs231n_tf.train.trainer import train

# Softmax regression (no hidden layer): a convex problem.
SOFTMAX = dict(model="fc_net", model_options={"hidden_dims": []}, optimizer="sgd", batch_size=64)


@pytest.fixture(scope="module")
def digits():
    return load_data(TrainConfig())


@pytest.fixture(scope="module")
def sweep(digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("lr") / "lr.png"
    return lr_range_test(TrainConfig(**SOFTMAX), min_lr=1e-4, max_lr=1e3, steps=100, data=digits,
                         plot_path=str(path), log=None)


def test_sweep_is_geometric_and_smoothing_is_the_debiased_moving_average(sweep):
    lrs = sweep.lrs
    assert lrs[0] == pytest.approx(1e-4) and np.all(np.diff(lrs) > 0)
    np.testing.assert_allclose(lrs, np.geomspace(1e-4, 1e3, 100)[:len(lrs)])
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], (1e7) ** (1 / 99), rtol=1e-9)
    avg, expected = 0.0, []
    for i, loss in enumerate(sweep.losses, start=1):
        avg = 0.9 * avg + 0.1 * loss
        expected.append(avg / (1 - 0.9 ** i))
    np.testing.assert_allclose(sweep.smoothed, expected, rtol=1e-9)
    # Before any learning the loss of the untrained classifier is near ln(10).
    assert abs(sweep.losses[0] - np.log(10)) < 0.5 * np.log(10)


def test_sweep_stops_when_the_loss_explodes(sweep):
    assert sweep.stopped_early and len(sweep.lrs) < 100 and sweep.lrs[-1] < 1e3
    assert (not np.isfinite(sweep.smoothed[-1])) or sweep.smoothed[-1] > 4 * np.min(sweep.smoothed[:-1])
    assert np.all(np.isfinite(sweep.smoothed[:-1]))
    assert "stopped on divergence" in str(sweep)


def test_suggestion_is_sane_and_trains_faster_than_a_hundredth_of_it(sweep, digits, tmp_path):
    assert 1e-3 <= sweep.suggestion <= 3.0
    assert sweep.suggestion == sweep.steepest_lr and sweep.steepest_lr <= sweep.min_loss_lr
    assert sweep.min_loss_lr < sweep.lrs[-1]
    losses = {}
    for name, lr in (("suggested", sweep.suggestion), ("tiny", sweep.suggestion / 100)):
        result = train(TrainConfig(**SOFTMAX, lr=float(lr), epochs=1), run_dir=str(tmp_path / name))
        losses[name] = result.metrics["val_loss"]
    assert losses["suggested"] < losses["tiny"] - 0.3


def test_plot_is_written_as_png(sweep):
    with open(sweep.plot_path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_no_divergence_runs_every_step_and_min_over_ten_method(digits):
    result = lr_range_test(TrainConfig(**SOFTMAX), min_lr=1e-5, max_lr=1e-2, steps=12, data=digits,
                           method="min/10", log=None)
    assert not result.stopped_early and len(result.lrs) == 12 and result.lrs[-1] == pytest.approx(1e-2)
    assert result.suggestion == pytest.approx(result.min_loss_lr / 10)


def test_suggest_finds_the_steepest_point_of_a_known_curve():
    lrs = lr_schedule(1e-6, 1.0, 121)  # 20 points per decade
    # Falls fastest (in log10 lr) at 1e-3, bottoms out near 1e-1 and rises after.
    curve = 2.0 - np.tanh(2 * (np.log10(lrs) + 3)) + 5 * np.maximum(np.log10(lrs) + 1, 0) ** 2
    steepest, lowest = suggest(lrs, curve)
    assert steepest == pytest.approx(1e-3, rel=1e-6)
    assert 1e-2 < lowest <= 1.5e-1


@pytest.mark.parametrize("kwargs", [dict(min_lr=1.0, max_lr=0.1), dict(min_lr=0.0), dict(steps=2),
                                    dict(method="fastest"), dict(beta=1.0), dict(diverge_factor=1.0)])
def test_bad_arguments_raise_config_error(digits, kwargs):
    with pytest.raises(ConfigError):
        lr_range_test(TrainConfig(**SOFTMAX), data=digits, log=None, **kwargs)
