"""`run_cv` as real processes: two folds in parallel under `torchrun` (gloo, on the CPU), and runs SIGKILLed between
folds and inside a fold, then re-run. Every run's predictions must equal an uninterrupted single-process run's, byte
for byte (numpy writes .npz members with a fixed 1980 date, so the files themselves compare)."""
import os, sys, json, subprocess
from pathlib import Path
import pytest, torch
from kaggle_kit.datasets import make_whales
from kaggle_kit.run import RunFolder

HERE = Path(__file__).resolve().parent
SCRIPT = HERE/'cv_run.py'
PREDS = [('oof', 0), ('oof', 1), ('test', 0), ('test', 1), ('oof', None), ('report', None)]   # `RunFolder.file`'s: folds', then the run's
TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']

@pytest.fixture(scope='module')
def data(tmp_path_factory): return make_whales(tmp_path_factory.mktemp('data')/'whales', size=32)

def run(out, data, *args, launcher=(sys.executable,), env=None, ok=True):
    "Run tests/cv_run.py (under `launcher`); returns (exit code, stdout + stderr)."
    env = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')} | (env or {})
    r = subprocess.run([*launcher, str(SCRIPT), str(out), str(data), *map(str, args)], capture_output=True, text=True,
                       timeout=600, env=env)
    log = r.stdout + r.stderr
    if ok: assert r.returncode == 0, log[-4000:]
    return r.returncode, log

@pytest.fixture(scope='module')
def reference(data, tmp_path_factory):
    "An uninterrupted single-process run."
    out = tmp_path_factory.mktemp('ref')
    run(out, data)
    return out

def assert_same_run(out, ref):
    "Same prediction files byte for byte, same weights, same fold scores."
    for w, k in PREDS:
        a, b = (RunFolder(d).file(w, k) for d in (out, ref))
        assert a.read_bytes() == b.read_bytes(), a
    for k in (0, 1):
        a, b = (torch.load(RunFolder(d).file('model', k), weights_only=True) for d in (out, ref))
        assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a), f'fold {k} weights differ'
        a, b = (RunFolder(d).done(k) for d in (out, ref))
        assert {**a, 'time': 0} == {**b, 'time': 0}

def trained_by(out, fold): return json.loads((out/f'trained_{fold}.json').read_text())

def test_parallel_folds_gloo(data, reference, tmp_path):
    out = tmp_path/'torchrun'
    rc, log = run(out, data, launcher=TORCHRUN)
    assert log.count('FINISHED') == 2, log[-4000:]                  # both ranks returned the report
    by = [trained_by(out, k) for k in (0, 1)]
    assert [b['rank'] for b in by] == [0, 1] and by[0]['pid'] != by[1]['pid'], by
    assert_same_run(out, reference)
    assert not list(out.rglob('.*.tmp'))                            # no write was left half done

def test_cv_interrupted_between_and_inside_folds(data, reference, tmp_path):
    out = tmp_path/'killed'; r = RunFolder(out)
    # between folds: fold 0 is done, the process dies when fold 1's learner is asked for
    rc, log = run(out, data, env={'KK_KILL_BEFORE_FOLD': '1'}, ok=False)
    assert rc == -9, log[-4000:]
    assert r.is_done(0) and not r.fold_dir(1).exists() and not r.file('oof').exists()
    first = trained_by(out, 0)['pid']
    # inside fold 1: a checkpoint after every batch; the process dies after batch 3 of epoch 2 is saved
    rc, log = run(out, data, '--every', 0, env={'KK_KILL_AT': '1,1,3'}, ok=False)
    assert rc == -9, log[-4000:]
    assert trained_by(out, 0)['pid'] == first                       # fold 0 was not trained again
    assert r.checkpoints(1) and not r.is_done(1)
    assert not r.file('oof').exists()
    # the same command again: fold 1 continues from its checkpoint and the run completes
    rc, log = run(out, data)
    assert 'Resuming from' in log and 'epoch 2/2, batch 3/' in log, log[-4000:]
    assert log.count('FINISHED') == 1 and trained_by(out, 0)['pid'] == first
    assert_same_run(out, reference)

def test_parallel_session_limit_stops_every_rank_then_resumes(data, reference, tmp_path):
    "Rank 1 finds no session time left; rank 0 trains its fold, then both stop. Here the script owns the process group."
    out = tmp_path/'stopped'; r = RunFolder(out)
    rc, log = run(out, data, '--init-group', '--stop-rank', 1, launcher=TORCHRUN)
    assert log.count('STOPPED') == 2 and 'FINISHED' not in log, log[-4000:]
    assert 'rank 0: STOPPED\nrank 1: ' in log and 'Stopped with no session time left' in log   # rank 0 tells why
    assert r.is_done(0) and not r.is_done(1)
    assert not r.file('oof').exists() and not r.file('report').exists()
    first = trained_by(out, 0)['pid']
    rc, log = run(out, data, '--init-group', launcher=TORCHRUN)
    assert log.count('FINISHED') == 2, log[-4000:]
    assert trained_by(out, 0)['pid'] == first and trained_by(out, 1)['rank'] == 1
    assert_same_run(out, reference)
