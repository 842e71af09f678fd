"""Search processes sharing one Optuna SQLite study: in parallel, and resumed after SIGKILL."""

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from cs231n_tf.train import search

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "cs231n_tf.cli"]


def _argv(out, trials, *extra):
    return [*CLI, "search", "--model", "two_layer_net", "--model-option", "hidden_dim=16", "--seed", "3",
            "--trials", str(trials), "--param", "lr=1e-3:1e-1:log", "--out", str(out), *extra]


def _env():
    return dict(os.environ, CUDA_VISIBLE_DEVICES="", MPLBACKEND="Agg")


def _trained(log):
    return [line.split(":")[0] for line in log.splitlines() if line.endswith(": training")]


def _study(out):
    return optuna.load_study(study_name="search", storage=f"sqlite:///{out}/study.db")


def test_two_processes_share_one_study_without_losing_or_repeating_a_trial(tmp_path):
    out = tmp_path / "search"
    argv = _argv(out, 4, "--epochs", "1", "--max-steps", "15")
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
             for _ in range(2)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    a, b = (_trained(log) for log in logs)
    assert a and b, logs  # both worked
    assert sorted(a + b) == [f"trial-{i:03d}" for i in range(4)]  # none lost, none twice
    complete = _study(out).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.user_attrs["slot"] for t in complete) == [0, 1, 2, 3]
    # The values are the sampler's for (seed, round, slot), whichever process drew them.
    specs = [search.parse_param("lr=1e-3:1e-1:log")]
    for t in complete:
        assert t.params["lr"] == pytest.approx(search.sample_values(specs, 3, 0, t.user_attrs["slot"])["lr"])
    rows = search.read_csv(out / "results.csv")
    assert sorted(r["trial"] for r in rows) == [f"trial-{i:03d}" for i in range(4)]


def test_search_killed_mid_trial_resumes_the_trial_from_its_checkpoint(tmp_path):
    out = tmp_path / "search"
    argv = _argv(out, 2, "--epochs", "40", "--checkpoint-every", "10", "--max-steps", "400")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    ckpt = out / "trial-000" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and not (ckpt.is_dir() and any(n.endswith(".index") for n in os.listdir(ckpt))):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.is_dir() and not (out / "trial-000" / "metrics.json").exists()
    running = _study(out).get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert [t.user_attrs["slot"] for t in running] == [0]

    again = subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "its process" in again.stdout and "trial-000: resuming" in again.stdout
    assert _trained(again.stdout) == ["trial-001"]
    trials = _study(out).get_trials()
    states = sorted((t.user_attrs.get("slot"), t.state.name) for t in trials)
    assert states == [(0, "COMPLETE"), (0, "FAIL"), (1, "COMPLETE")]
    retry = next(t for t in trials if t.state.name == "COMPLETE" and t.user_attrs["slot"] == 0)
    killed = next(t for t in trials if t.state.name == "FAIL")
    assert retry.params == killed.params  # the same trial, re-queued
    assert len(search.read_csv(out / "results.csv")) == 2
