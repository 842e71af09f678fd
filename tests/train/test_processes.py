"""Tests that need real processes: SIGKILL mid-run and resume, and multi-worker training."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "cs231n_tf.cli"]
# Dropout makes the run depend on the random generator state too, which must survive the restart.
RUN_FLAGS = ["--model", "fc_net", "--model-option", "hidden_dims=[64,64]", "--model-option", "dropout=0.3",
             "--epochs", "30", "--batch-size", "32", "--lr", "0.003", "--seed", "5", "--deterministic",
             "--checkpoint-every", "25"]


def _env():
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _final_variables(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith("model/") and "OPTIMIZER_SLOT" not in name}


def _latest_step(run_dir):
    path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    return int(path.rsplit("-", 1)[1]) if path else 0


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
    proc = subprocess.Popen(CLI + ["train", "--out", killed] + RUN_FLAGS, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _latest_step(killed) < 100 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed; make it longer"
    killed_at = _latest_step(killed)
    subprocess.run(CLI + ["train", "--out", full] + RUN_FLAGS, env=_env(), check=True, capture_output=True)
    total = json.load(open(os.path.join(full, "metrics.json")))["steps"]
    assert 0 < killed_at < total
    assert not os.path.exists(os.path.join(killed, "metrics.json"))
    out = subprocess.run(CLI + ["train", "--out", killed, "--resume"] + RUN_FLAGS, env=_env(),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resumed from" in out.stdout
    a, b = _final_variables(full), _final_variables(killed)
    assert a.keys() == b.keys() and len(a) >= 6
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert json.load(open(os.path.join(killed, "metrics.json")))["steps"] == total


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_two_local_processes_train(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    run = str(tmp_path / "run")
    procs = []
    for index in range(2):
        env = _env()
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            CLI + ["train", "--strategy", "multi_worker", "--out", run, "--model", "two_layer_net",
                   "--epochs", "2", "--batch-size", "32", "--lr", "0.01"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (stdout, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr[-3000:]
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["replicas"] == 2
    assert metrics["test_accuracy"] > 0.8
    assert not [d for d in os.listdir(run) if d.startswith(".scratch")]  # worker 1's scratch removed
