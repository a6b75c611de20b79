"""The checkpoint watcher as a user runs it: `kaggle-kit watch` in its own process beside a real training process,
the trainer SIGKILLed and started again, the watcher killed and started again; every checkpoint scored exactly once."""
import os, sys, json, time, signal, subprocess
from pathlib import Path
import pytest, torch
from conftest import BIN, run_cli
from test_checkpoint import start, run, weights, ckpts, pos, kill_at
from kaggle_kit.run import RunFolder, ckpt_name, read_status

HERE = Path(__file__).resolve().parent

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from kaggle_kit.datasets import make_whales
    return make_whales(tmp_path_factory.mktemp('data')/'whales')

def watcher(out, data, *args):
    return subprocess.Popen([str(BIN/'kaggle-kit'), 'watch', str(out), '--learner', f'{HERE}/watch_learner.py:make',
                             '--poll', '0.1', '--no-idle-class', *map(str, args)],   # pytest's other worker would starve it
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, 'KK_WATCH_DATA': str(data)})

def scores(out): return [json.loads(l) for l in (Path(out)/'watch.jsonl').read_text().splitlines()]

def wait_for(cond, timeout=120, what=''):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout: raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.05)

def test_watcher_beside_a_killed_and_restarted_trainer(data, tmp_path):
    out, args = RunFolder(tmp_path).fold_dir(0), ('--every', 999, '--epochs', 4)   # a checkpoint at each epoch's end
    trainer = start(out, data, *args)
    wait_for(lambda: read_status(out) is not None, what='the trainer to start')
    w = watcher(out, data)
    what = kill_at(trainer, out, (0, 2, 0))                              # SIGKILL once epoch 2's checkpoint is written
    assert trainer.returncode == -signal.SIGKILL, what
    wait_for(lambda: (out/'watch.jsonl').exists() and len(scores(out)) >= 2, what='the first two scores')
    w.send_signal(signal.SIGKILL); w.communicate()                      # the watcher dies too, mid-poll
    before = scores(out)
    w = watcher(out, data, '--wandb-project', 'kaggle-kit-tests')      # both start again; W&B offline (conftest)
    rc, log = run(out, data, *args)
    assert 'Resuming from' in log, log[-2000:]
    wlog, _ = w.communicate(timeout=300)
    assert w.returncode == 0, wlog[-3000:]                               # it stopped by itself: the run is done
    got = scores(out)
    names = [s['checkpoint'] for s in got]
    assert len(names) == len(set(names)), names                          # each scored once, across both watchers
    assert set(names) == {ckpt_name(0, e, 0) for e in (1, 2, 3, 4)}, names
    assert got[:len(before)] == before
    assert all('error' not in s for s in got)   # (the last may be scored before its `complete` rewrite: the same weights)
    assert list((out/'wandb').glob('wandb/offline-run-*/run-*.wandb')), sorted(map(str, (out/'wandb').rglob('*')))[:20]
    from watch_learner import make                                       # the final score is the trained model's
    os.environ['KK_WATCH_DATA'] = str(data); torch.set_num_threads(1)
    learn = make(); learn.model.load_state_dict(weights(out))
    with learn.no_bar(), learn.no_logging(): vl, acc = learn.validate()[:2]
    assert abs(got[-1]['valid_loss'] - vl) < 1e-5 and abs(got[-1]['accuracy_known'] - acc) < 1e-6, (got[-1], vl, acc)

def test_watch_refuses_a_folder_that_is_not_a_run(tmp_path):
    r = run_cli('watch', tmp_path, '--learner', f'{HERE}/watch_learner.py:make', check=False)
    assert r.returncode == 2 and 'is not a run folder' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    r = run_cli('watch', tmp_path, check=False)
    assert r.returncode == 2 and '--learner is required' in r.stderr, r.stderr
