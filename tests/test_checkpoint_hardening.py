"""Issue 14 hardening of TimedCheckpoint (items 1, 2, 4, 9 disk full, 10 lock), on the kit's test learner.

    .venv/bin/python -m pytest tests/test_checkpoint_hardening.py -q
"""
import errno, fcntl, json, os, subprocess, sys, time, warnings
from contextlib import contextmanager
import pytest, torch
from fastai.callback.core import Callback
import kaggle_kit.store as store
from kaggle_kit.checkpoint import TimedCheckpoint
from kaggle_kit.store import load_checkpoint
from kaggle_kit.run import read_status, ckpt_name, ckpt_pos, ckpt_files
from kaggle_kit.env import seed_everything
from kaggle_kit.datasets import whale_learner   # the `whales` fixture is in conftest.py

def train(whales, run, method='one_cycle', lr=5e-3, size=16, bs=64, epochs=1, **kw):
    "A training cell with TimedCheckpoint (no session limit), as a Kaggler writes it."
    seed_everything(0)
    learn = whale_learner(*whales, fold=0, size=size, bs=bs)
    cb = TimedCheckpoint(run, every=kw.pop('every', 60), budget=False, search=[], **kw)
    with learn.no_bar(), learn.no_logging():
        if method == 'fine_tune': learn.fine_tune(epochs, lr, freeze_epochs=1, cbs=cb)
        else: learn.fit_one_cycle(epochs, lr, cbs=cb)
    return learn

def ckpts(run): return sorted(f.name for f in ckpt_files(run))

# 14.1: a checkpoint of a later fit is compared, not trusted
def test_later_fit_checkpoint_of_another_configuration_is_refused(whales, tmp_path):
    run = tmp_path/'run'
    ref = train(whales, run, 'fine_tune').model.state_dict()
    assert ckpt_pos(ckpts(run)[-1])[0] == 1                         # fine_tune's second fit
    before = {f: (run/f).read_bytes() for f in ckpts(run)}
    with pytest.raises(store.CheckpointError, match=r"fit 1 of its cell; this is fit 0\) is from another configuration(.|\n)*bs: checkpoint has 64, now 32"):
        train(whales, run, bs=32)                                    # a single fit, another batch size: not skipped
    assert {f: (run/f).read_bytes() for f in ckpts(run)} == before  # nothing touched
    again = train(whales, run, 'fine_tune')                          # the same cell: both fits fast-forward
    for k, v in again.model.state_dict().items(): assert torch.equal(v, ref[k]), k
    assert ckpts(run) == list(before)

# 14.4: what changes the result is in the fingerprint
@pytest.mark.parametrize('change,named', [({'lr': 1e-2}, 'sched.lr'), ({'size': 24}, 'sizes'), ({'epochs': 2}, 'n_epoch')])
def test_changed_lr_size_or_schedule_is_refused(whales, tmp_path, change, named):
    run = tmp_path/'run'
    train(whales, run)
    with pytest.raises(store.CheckpointError, match=rf"refusing to resume from it:(.|\n)*{named}: checkpoint has (.|\n)*Use another run folder"):
        train(whales, run, **change)
    with warnings.catch_warnings():
        warnings.simplefilter('error')   # no warning either: the same cell resumes (here: is finished)
        train(whales, run)

# 14.2: a corrupt furthest file holds no `keep` place
def test_keep_1_with_a_corrupt_furthest_checkpoint(whales, tmp_path):
    run = tmp_path/'run'; run.mkdir()
    junk = run/ckpt_name(0, 9, 0); junk.write_bytes(b'not a checkpoint')
    with pytest.warns(UserWarning) as w:
        train(whales, run, epochs=2, keep=1, every=0)
    st = read_status(run)
    assert st['state'] == 'done' and (run/st['checkpoint']).exists(), st   # status names a file that exists
    assert ckpts(run) == [st['checkpoint']] == [ckpt_name(0, 2, 0)]
    assert (run/(junk.name + '.aside')).read_bytes() == b'not a checkpoint'
    assert any('Moved' in str(x.message) and 'fails verification' in str(x.message) for x in w)
    load_checkpoint(run/st['checkpoint'])

# 14.9: a full disk says so, and the previous checkpoint survives
class _FullDisk:
    def __init__(self, f): self.f, self.n = f, 200
    def write(self, b):
        if self.n < len(b): raise OSError(errno.ENOSPC, 'No space left on device')
        self.n -= len(b); return self.f.write(b)
    def __getattr__(self, k): return getattr(self.f, k)

def test_disk_full_is_reported_and_the_previous_checkpoint_survives(whales, tmp_path, monkeypatch):
    run, orig, calls = tmp_path/'run', store.atomic_file, []
    @contextmanager
    def atomic_file(path, mode='wb'):   # the first checkpoint is written; the disk is full from then on
        calls.append(path)
        with orig(path, mode) as f: yield f if len(calls) == 1 else _FullDisk(f)
    monkeypatch.setattr(store, 'atomic_file', atomic_file)
    with pytest.warns(UserWarning) as w:
        train(whales, run, epochs=2)
    msgs = [str(x.message) for x in w if 'Could not write checkpoint' in str(x.message)]
    assert msgs and all('disk full' in m and f'in {run.absolute()} (' in m and 'MB free' in m and 'unexpected pos' not in m for m in msgs), msgs
    first = run/ckpt_name(0, 1, 0)
    assert f'the previous checkpoint {first} is intact' in msgs[0]
    assert ckpts(run) == [first.name] and not list(run.glob('.*.tmp'))
    assert load_checkpoint(first)['epoch'] == 1
    assert read_status(run)['checkpoint'] == first.name

# 14.10: one process per run folder
PROBE = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
         "try: fcntl.flock(fd, fcntl.LOCK_EX|fcntl.LOCK_NB); print('free')\n"
         "except OSError: print('held', os.read(fd, 32).decode().strip())")

class _Probe(Callback):
    "Ask another process, in the middle of the fit, whether the run folder is locked."
    order = 110
    def after_epoch(self): self.seen = subprocess.run([sys.executable, '-c', PROBE, str(self.learn.timed_checkpoint.dir/'.lock')],
                                                      capture_output=True, text=True, check=True).stdout.strip()

def test_the_run_folder_is_locked_for_the_length_of_a_fit(whales, tmp_path):
    run, probe = tmp_path/'run', _Probe()
    seed_everything(0)
    learn = whale_learner(*whales, fold=0, size=16, bs=64, cbs=[probe])
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 5e-3, cbs=TimedCheckpoint(run, every=60, budget=False, search=[]))
    assert probe.seen == f'held {os.getpid()}'
    out = subprocess.run([sys.executable, '-c', PROBE, str(run/'.lock')], capture_output=True, text=True, check=True).stdout
    assert out.strip() == 'free'   # released after the fit

def test_a_second_process_on_the_same_run_folder_fails_at_once(whales, tmp_path):
    run, dead = tmp_path/'run', f'.{ckpt_name(0, 1, 0)}.dead.tmp'   # a checkpoint's temporary file, as `atomic_file` names it
    hold = ("import sys, time; from kaggle_kit.run import folder_lock\n"
            "with folder_lock(sys.argv[1]): print('locked', flush=True); time.sleep(120)")
    p = subprocess.Popen([sys.executable, '-c', hold, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == 'locked'
        (run/dead).write_bytes(b'')   # as if its writer were mid-write
        t0 = time.time()
        with pytest.raises(RuntimeError, match=rf"run folder {run} is in use by another process \(PID {p.pid}\)"):
            train(whales, run)
        assert time.time() - t0 < 30
        assert sorted(os.listdir(run)) == [dead, '.lock']   # nothing written, nothing deleted
    finally: p.kill(); p.wait()
    (run/dead).write_bytes(b'')
    train(whales, run)                      # its process is dead: the lock is free, its leftovers are cleaned
    assert not list(run.glob('.*.tmp')) and read_status(run)['state'] == 'done'
