import json
import math
import os

import numpy as np
import pytest

from cs231n_tf import cli
from cs231n_tf.errors import ConfigError, RunDirError
from cs231n_tf.train import search
from cs231n_tf.train.config import TrainConfig
from cs231n_tf.train.search import ParamSpec, parse_param, refine, resolve_params, sample_values

BASE = TrainConfig(model="two_layer_net", model_options={"hidden_dim": 16}, epochs=1, batch_size=64)


# ---- parsing ---------------------------------------------------------------------------------

def test_parse_param_forms():
    assert parse_param("lr=1e-5:1e-1:log") == ParamSpec("lr", "log", 1e-5, 1e-1)
    assert parse_param("weight_decay=0:1e-3:linear") == ParamSpec("weight_decay", "linear", 0.0, 1e-3)
    assert parse_param("hidden_dim=16:256:log") == ParamSpec("hidden_dim", "log", 16, 256, integer=True)
    assert parse_param("batch_size=choice:32,64,128") == ParamSpec("batch_size", "choice", choices=(32, 64, 128))
    assert parse_param("optimizer=choice:adam,sgd").choices == ("adam", "sgd")
    assert parse_param("weight-decay=0:1:linear").name == "weight_decay"
    assert str(parse_param("lr=1e-5:0.1:log")) == "lr=1e-05:0.1:log"


@pytest.mark.parametrize("text, message", [
    ("lr", "expected NAME=LOW:HIGH:SCALE"),
    ("lr=1e-5:1e-1", "expected NAME=LOW:HIGH:SCALE"),
    ("lr=1e-1:1e-5:log", "low must be below high"),
    ("lr=1e-3:1e-3:linear", "low must be below high"),
    ("weight_decay=0:1e-3:log", "log scale needs low > 0"),
    ("lr=-1:1:log", "log scale needs low > 0"),
    ("lr=1e-5:1e-1:cubic", "unknown scale 'cubic'"),
    ("lr=a:1:log", "'a' is not a number"),
    ("lr=1:inf:linear", "finite"),
    ("batch_size=choice:", "comma-separated"),
    ("batch_size=choice:32,32", "repeat"),
])
def test_parse_errors_name_the_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_param(text)


@pytest.mark.parametrize("text, message", [
    ("nonsense=1:2:linear", "unknown search parameter 'nonsense'.*hidden_dim"),
    ("dropout=0:0.5:linear", "unknown search parameter 'dropout'"),  # two_layer_net has no dropout
    ("seed=choice:1,2", "fixed for the whole search"),
    ("model=choice:lenet5", "fixed for the whole search"),
    ("lr=0:1:linear", "lr must be a positive number"),
    ("batch_size=8.5:64:log", "integer bounds"),
    ("optimizer=choice:adam,foo", "unknown optimizer 'foo'"),
])
def test_resolve_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        resolve_params([parse_param(text)], BASE)


def test_resolve_targets_and_duplicates():
    specs = resolve_params([parse_param("batch_size=16:128:log"), parse_param("hidden_dim=choice:8,16")],
                           TrainConfig(model="two_layer_net"))
    assert [(s.target, s.integer) for s in specs] == [("config", True), ("model_options", False)]
    fc = resolve_params([parse_param("dropout=0:0.5:linear")], TrainConfig(model="fc_net"))
    assert fc[0].target == "model_options" and not fc[0].integer
    # The builder's defaults decide: dropout=0.3 is a float even with integer-looking bounds.
    conv = resolve_params([parse_param("dropout=0:1:linear"), parse_param("width=8:64:log")],
                          TrainConfig(model="small_convnet"))
    assert [s.integer for s in conv] == [False, True]
    with pytest.raises(ConfigError, match="width of small_convnet is an integer"):
        resolve_params([parse_param("width=8.5:64:log")], TrainConfig(model="small_convnet"))
    with pytest.raises(ConfigError, match="given twice"):
        resolve_params([parse_param("lr=1e-3:1e-2:log"), parse_param("lr=choice:0.1")], BASE)
    with pytest.raises(ConfigError, match="also fixed by model option"):
        resolve_params([parse_param("hidden_dim=8:32:log")], BASE)


# ---- sampling ---------------------------------------------------------------------------------

def test_log_uniform_sampling_is_uniform_in_log_space():
    # Optuna's RandomSampler through suggest_float(log=True): each decade gets a quarter of the draws.
    spec = parse_param("lr=1e-5:1e-1:log")
    draws = np.array([sample_values([spec], 0, 0, i)["lr"] for i in range(800)])
    assert draws.min() >= 1e-5 and draws.max() <= 1e-1
    exponents = np.log10(draws)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert np.quantile(exponents, q) == pytest.approx(-5 + 4 * q, abs=0.2)
    counts = np.histogram(exponents, bins=[-5, -4, -3, -2, -1])[0]
    np.testing.assert_allclose(counts / 800, 0.25, atol=0.05)
    # A linear range puts most draws in the top decade instead.
    linear = parse_param("lr=1e-5:1e-1:linear")
    top = np.mean([sample_values([linear], 1, 0, i)["lr"] > 1e-2 for i in range(400)])
    assert top == pytest.approx(0.9, abs=0.05)


def test_integer_and_choice_sampling():
    spec = resolve_params([parse_param("batch_size=16:128:log")], BASE)[0]
    draws = [sample_values([spec], 1, 0, i)["batch_size"] for i in range(600)]
    assert all(isinstance(d, int) and 16 <= d <= 128 for d in draws)
    assert np.median(draws) == pytest.approx(math.sqrt(16 * 128), rel=0.15)  # geometric middle, 45
    choice = parse_param("hidden_dims=choice:[8],[16],[4]")  # lists: JSON-encoded for Optuna
    picks = [json.dumps(sample_values([choice], 2, 0, i)["hidden_dims"]) for i in range(600)]
    for c in choice.choices:
        assert picks.count(json.dumps(c)) / 600 == pytest.approx(1 / 3, abs=0.07)


def test_grid_values_are_cell_centres():
    lr = parse_param("lr=1e-4:1:log")
    np.testing.assert_allclose(search.grid_values(lr, 2), [1e-3, 1e-1])
    np.testing.assert_allclose(search.grid_values(parse_param("wd=0.0:3.0:linear"), 3), [0.5, 1.5, 2.5])
    assert search.grid_values(parse_param("optimizer=choice:adam,sgd"), 5) == ["adam", "sgd"]


def test_sampling_is_deterministic_per_seed_round_and_trial():
    specs = [parse_param("lr=1e-5:1e-1:log"), parse_param("batch_size=choice:32,64,128")]
    assert sample_values(specs, 7, 0, 3) == sample_values(specs, 7, 0, 3)
    trials = [sample_values(specs, 7, 0, i) for i in range(5)]
    assert len({t["lr"] for t in trials}) == 5
    assert sample_values(specs, 8, 0, 3) != trials[3] and sample_values(specs, 7, 1, 3) != trials[3]


def test_refine_narrows_around_the_best_trials():
    specs = resolve_params([parse_param("lr=1e-5:1e-1:log"), parse_param("weight_decay=0:1e-2:linear"),
                            parse_param("batch_size=choice:32,64,128")], BASE)
    rows = [
        {"trial": "a", "objective": 0.95, "values": {"lr": 1e-3, "weight_decay": 1e-3, "batch_size": 64}},
        {"trial": "b", "objective": 0.93, "values": {"lr": 4e-3, "weight_decay": 2e-3, "batch_size": 32}},
        {"trial": "c", "objective": 0.50, "values": {"lr": 1e-5, "weight_decay": 9e-3, "batch_size": 128}},
        {"trial": "d", "objective": float("nan"), "values": {"lr": 1e-1, "weight_decay": 0.0, "batch_size": 128}},
    ]
    lr, wd, bs = refine(specs, rows, 2)
    # Log range: span of log(1e-3)..log(4e-3) padded by 25% of it plus 5% of log(1e4).
    pad = 0.25 * math.log(4) + 0.05 * math.log(1e4)
    assert lr.low == pytest.approx(1e-3 * math.exp(-pad)) and lr.high == pytest.approx(4e-3 * math.exp(pad))
    assert wd.low == pytest.approx(1e-3 - (0.25e-3 + 0.5e-3)) and wd.high == pytest.approx(2e-3 + 0.75e-3)
    assert bs.choices == (32, 64)
    # Padding never leaves the first round's range; a lone best point still gets a range.
    (lr1,) = refine(specs[:1], [dict(rows[2], objective=1.0)], 1)
    assert lr1.low == 1e-5 and lr1.high == pytest.approx(1e-5 * 1e4 ** 0.05)
    with pytest.raises(ConfigError, match="nothing to refine"):
        refine(specs, rows[3:], 1)


# ---- end to end -------------------------------------------------------------------------------

def _search_argv(out, *extra):
    return ["search", "--model", "two_layer_net", "--model-option", "hidden_dim=16", "--epochs", "1",
            "--trials", "2", "--seed", "5", "--param", "lr=1e-3:1e-1:log", "--param", "batch_size=choice:32,64",
            "--out", str(out), *extra]


def test_cli_search_writes_sorted_results_and_a_rerun_trains_nothing(tmp_path, capsys):
    out = tmp_path / "search"
    assert cli.main(_search_argv(out)) == 0
    printed = capsys.readouterr().out
    assert "trained 2 trial(s), 0 already done" in printed and "| rank | trial | lr | batch_size |" in printed
    rows = search.read_csv(out / "results.csv")
    assert len(rows) == 2
    accuracies = [float(r["val_accuracy"]) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True) and all(0.3 < a <= 1 for a in accuracies)
    for row in rows:
        config = json.loads((out / row["trial"] / "config.json").read_text())["train"]
        metrics = json.loads((out / row["trial"] / "metrics.json").read_text())
        assert config["lr"] == pytest.approx(float(row["lr"]), rel=1e-9)
        assert config["batch_size"] == int(row["batch_size"]) and config["seed"] == 5 and config["epochs"] == 1
        assert config["model_options"] == {"hidden_dim": 16}
        assert float(row["val_accuracy"]) == pytest.approx(metrics["val_accuracy"])
        assert int(row["steps"]) == 1295 // config["batch_size"]
    # The values are the ones the sampler gives for seed 5.
    specs = resolve_params([parse_param("lr=1e-3:1e-1:log"), parse_param("batch_size=choice:32,64")], BASE)
    by_trial = {r["trial"]: r for r in rows}
    for i in range(2):
        assert float(by_trial[f"trial-{i:03d}"]["lr"]) == pytest.approx(sample_values(specs, 5, 0, i)["lr"], rel=1e-9)
    assert (out / "search.png").read_bytes()[:4] == b"\x89PNG"

    stamps = {t: os.path.getmtime(out / t / "metrics.json") for t in by_trial}
    assert cli.main(_search_argv(out)) == 0
    assert "trained 0 trial(s), 2 already done" in capsys.readouterr().out
    assert stamps == {t: os.path.getmtime(out / t / "metrics.json") for t in by_trial}
    assert search.read_csv(out / "results.csv") == rows


def test_cli_errors_are_one_line_with_exit_2(tmp_path, capsys):
    cases = [
        (["--param", "lr=1e-1:1e-5:log"], "low must be below high"),
        (["--param", "nope=1:2:linear"], "unknown search parameter 'nope'"),
        (["--param", "lr=1e-3:1e-2:log", "--lr", "0.1"], "also fixed by --lr"),
        (["--param", "hidden_dim=8:16:log"], "also fixed by --model-option hidden_dim"),
        (["--param", "lr=1e-3:1e-2:log", "--strategy", "multi_worker"], "not supported by search"),
    ]
    for extra, message in cases:
        argv = ["search", "--model", "two_layer_net", "--model-option", "hidden_dim=16", "--out", str(tmp_path / "x"),
                *extra]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and err.startswith("cs231n-tf search:")
    assert cli.main(["search", "--param", "lr=1e-3:1e-2:log"]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_other_settings_are_refused(tmp_path):
    base = TrainConfig(**{**BASE.to_json(), "max_steps": 2})
    specs = [parse_param("lr=1e-3:1e-1:log")]
    first = search.run_search(base, specs, trials=1, out=str(tmp_path), log=None)
    assert first.trained == ["trial-000"] and first.best["steps"] == 2
    assert (tmp_path / "study.db").is_file()
    with pytest.raises(RunDirError, match="holds a different search"):
        search.run_search(base, [parse_param("lr=1e-4:1e-1:log")], trials=1, out=str(tmp_path), log=None)
    with pytest.raises(ConfigError, match="unknown objective 'bleu4'"):
        search.run_search(base, specs, trials=1, out=str(tmp_path), objective="bleu4", log=None)


def test_grid_search_visits_each_point_once_and_minimises_val_loss(tmp_path):
    base = TrainConfig(**{**BASE.to_json(), "max_steps": 2})
    specs = [parse_param("lr=1e-3:1e-1:log"), parse_param("batch_size=choice:32,64")]
    with pytest.raises(ConfigError, match="has 4 points, not 3 trials"):
        search.run_search(base, specs, trials=3, out=str(tmp_path), sampler="grid", grid_points=2, log=None)
    result = search.run_search(base, specs, out=str(tmp_path), sampler="grid", grid_points=2, objective="val_loss",
                               log=None)
    points = sorted((round(r["values"]["lr"], 12), r["values"]["batch_size"]) for r in result.rows)
    lrs = [round(v, 12) for v in search.grid_values(specs[0], 2)]
    assert points == sorted((lr, bs) for lr in lrs for bs in (32, 64))
    losses = [r["val_loss"] for r in result.rows]
    assert result.direction == "minimize" and losses == sorted(losses)
    assert [r["objective"] for r in result.rows] == losses


def test_diverged_trials_rank_last_and_are_not_retrained(tmp_path):
    base = TrainConfig(**{**BASE.to_json(), "optimizer": "sgd", "max_steps": 5})
    specs = [parse_param("lr=choice:0.05,1e30")]
    result = search.run_search(base, specs, out=str(tmp_path), sampler="grid", log=None)
    statuses = [r["status"] for r in result.rows]
    lrs = [r["values"]["lr"] for r in result.rows]
    assert lrs == [0.05, 1e30] and statuses == ["done", "diverged"]
    assert all(math.isnan(r["val_accuracy"]) for r in result.rows if r["status"] == "diverged")
    diverged = result.rows[1]["trial"]
    assert json.loads((tmp_path / diverged / "diverged.json").read_text())["step"] >= 1
    again = search.run_search(base, specs, out=str(tmp_path), sampler="grid", log=None)
    assert again.trained == [] and [r["status"] for r in again.rows] == statuses


def test_refine_round_samples_inside_the_narrowed_ranges(tmp_path):
    base = TrainConfig(**{**BASE.to_json(), "max_steps": 4})
    specs = [parse_param("lr=1e-4:1e-1:log"), parse_param("batch_size=choice:32,64")]
    result = search.run_search(base, specs, trials=2, out=str(tmp_path), seed=1, refine_top=1, log=None)
    assert len(result.rows) == 4 and len(result.rounds) == 2
    first = sorted((r for r in result.rows if r["round"] == 0), key=search._sort_key)[0]
    lr2, bs2 = result.rounds[1]
    assert lr2.low <= first["values"]["lr"] <= lr2.high and lr2.high / lr2.low < 1e3
    assert bs2.choices == (first["values"]["batch_size"],)
    for row in (r for r in result.rows if r["round"] == 1):
        assert lr2.low <= row["values"]["lr"] <= lr2.high and row["values"]["batch_size"] == bs2.choices[0]
    assert sorted(r["trial"] for r in result.rows) == [f"trial-{i:03d}" for i in range(4)]
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["refine"] == 1 and ParamSpec.from_json(saved["rounds"][1][0]) == lr2
    # Re-running continues the recorded rounds and trains nothing.
    assert search.run_search(base, specs, trials=2, out=str(tmp_path), seed=1, refine_top=1, log=None).trained == []
    with pytest.raises(RunDirError, match="refined around the best 1"):
        search.run_search(base, specs, trials=2, out=str(tmp_path), seed=1, refine_top=2, log=None)
