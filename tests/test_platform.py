"""Kaggle and Colab, simulated: which platform the kit sees and when its session began (in fresh processes, with Kaggle's
variables or a fake `google.colab` package), where `get_paths` puts runs, and where `TimedCheckpoint` resumes from after
the session ended: a previous Kaggle version's output attached read-only under `input/`, or the same run on Drive. Real
fastai training of a tiny timm model; an unrelated attached run of the same model and data must be ignored."""
import os, sys, json, time, stat, shutil, subprocess, contextlib, io
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from fastai.callback.core import Callback
from kaggle_kit.env import get_paths, detect_platform, seed_everything, _proc_start
from kaggle_kit.datasets import make_whales, whale_learner
from kaggle_kit.checkpoint import TimedCheckpoint, default_search, find_checkpoint
from kaggle_kit.store import load_checkpoint, save_checkpoint
from kaggle_kit.run import RunFolder, ckpt_pos, ckpt_files, read_status

KAGGLE = {'KAGGLE_KERNEL_RUN_TYPE': 'Interactive', 'KAGGLE_URL_BASE': 'https://www.kaggle.com'}
EPOCHS, KILL_AT = 2, (1, 3)   # the first session ends after batch 3 of epoch 2

def clean_env(**kw):
    "This process's environment without any platform's variables (or the kit's clock overrides), plus `kw`."
    drop = ('KAGGLE_', 'COLAB_')
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | kw

CHILD = """import json, sys
from kaggle_kit.env import SessionClock, get_paths, detect_platform, process_start_time
c = SessionClock()
print(json.dumps(dict(platform=detect_platform(), start=c.start, limit=c.limit, process_start=process_start_time(),
                      persistent=str(get_paths(drive=sys.argv[1], warn=False).persistent))))"""

def child(env, drive='/nonexistent'):
    "What a fresh Python process (a new kernel) sees: platform, `SessionClock()`, its own start, the persistent folder."
    r = subprocess.run([sys.executable, '-c', CHILD, str(drive)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.splitlines()[-1])

def test_kernel_restart_keeps_the_platform_session_clock():
    "Kaggle: a restarted kernel (a later process) counts from the same session start; locally each process has its own."
    if _proc_start(1) is None: pytest.skip('no readable /proc/1/stat here')
    kaggle = [child(clean_env(**KAGGLE)) for _ in range(2)]
    assert [c['platform'] for c in kaggle] == ['kaggle']*2
    assert kaggle[1]['process_start'] > kaggle[0]['process_start']                 # really a new kernel
    assert kaggle[0]['start'] == kaggle[1]['start'] == _proc_start(1) <= kaggle[0]['process_start']
    assert kaggle[0]['limit'] == 12*3600
    t0 = time.time()
    local = [child(clean_env()) for _ in range(2)]
    assert [c['platform'] for c in local] == ['local']*2 and local[0]['limit'] == float('inf')
    assert all(c['start'] == c['process_start'] for c in local)
    assert t0 - 1.05 <= local[0]['start'] <= time.time()   # /proc/stat's boot time is whole seconds
    assert local[1]['start'] > local[0]['start']

def test_colab_found_by_its_module(tmp_path):
    "No Colab variables: an importable `google.colab` (here a fake one on PYTHONPATH) is enough."
    (tmp_path/'fake'/'google'/'colab').mkdir(parents=True)   # `google` stays a namespace package: protobuf etc. still import
    (tmp_path/'fake'/'google'/'colab'/'__init__.py').write_text('"A stand-in for Colab\'s own package."\n')
    drive = tmp_path/'content'/'drive'/'MyDrive'
    drive.mkdir(parents=True)
    c = child(clean_env(PYTHONPATH=str(tmp_path/'fake')), drive)
    assert c['platform'] == 'colab' and c['limit'] == 12*3600 and c['start'] == (_proc_start(1) or c['process_start'])
    assert c['persistent'] == str(drive/'kaggle-kit')
    assert child(clean_env(), drive)['platform'] == 'local'

def test_kaggle_found_by_its_folders(tmp_path):
    assert detect_platform({}, kaggle_root=tmp_path) == 'local'
    for f in ('input', 'working'): (tmp_path/f).mkdir()
    assert detect_platform({}, kaggle_root=tmp_path) == 'kaggle'

# Real training: one fold of the embedded whale data, a tiny timm model, a checkpoint after every batch.

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    path = make_whales(tmp_path_factory.mktemp('data')/'whales')
    df = pd.read_csv(path/'train.csv'); df['fold'] = np.arange(len(df)) % 5
    return path, df

class _SessionEnds(Exception): pass

class _EndSession(Callback):
    "The platform ends the session after batch `batch` of epoch `epoch` (once the checkpoint of that batch is written)."
    order = TimedCheckpoint.order + 1
    def __init__(self, epoch, batch): self.at = (epoch, batch)
    def after_batch(self):
        if self.training and (self.epoch, self.iter) == self.at:
            self.learn.timed_checkpoint.wait()
            raise _SessionEnds('the platform ended the session')

def fit(data, run, search, end=None):
    "The training cell: returns the final weights and what it printed; `end`: where the session ends."
    torch.set_num_threads(1); seed_everything(0)
    path, df = data
    learn = whale_learner(df, path, fold=0, size=24, bs=32, seed=0, dls_kwargs=dict(device='cpu'))
    cbs = [TimedCheckpoint(run, every=0, search=search, margin=0)] + ([_EndSession(*end)] if end else [])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), learn.no_bar(), learn.no_logging():
        try: learn.fit_one_cycle(EPOCHS, 5e-3, cbs=cbs)
        except _SessionEnds: return None, out.getvalue()
    return {k: v.clone() for k, v in learn.model.state_dict().items()}, out.getvalue()

@pytest.fixture(scope='module')
def reference(data, tmp_path_factory):
    "An uninterrupted run: its final weights, and its completed run folder."
    run = RunFolder(tmp_path_factory.mktemp('ref')/'runs'/'whale').fold_dir(0)
    weights, _ = fit(data, run, [])
    return weights, run

def same(a, b): return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def someone_elses_run(reference, dest):
    "A finished run of the same model on the same data, other weights: the fingerprint cannot tell it apart."
    f = ckpt_files(reference[1])[0]   # the furthest along
    st = load_checkpoint(f)
    st['learn']['model'] = {k: v + 1 if v.is_floating_point() else v for k, v in st['learn']['model'].items()}
    dest.mkdir(parents=True)
    save_checkpoint(st, dest/f.name)

def read_only(folder):
    "chmod a-w everything under `folder` (as on Kaggle's `/kaggle/input`); returns its content, to check it is unchanged."
    for p in [folder, *folder.rglob('*')]: p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return snapshot(folder)

def snapshot(folder): return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob('*')}

def test_kaggle_next_version_resumes_from_its_attached_output(data, reference, tmp_path):
    root = tmp_path/'kaggle'                     # stands for /kaggle
    (root/'input'/'whales').mkdir(parents=True); (root/'working').mkdir()
    p = get_paths('whales', env=KAGGLE, kaggle_root=root)
    assert (p.platform, p.input, p.working, p.persistent) == ('kaggle', root/'input'/'whales', root/'working', root/'working')
    run = RunFolder(p.persistent/'runs'/'whale').fold_dir(0)
    search = lambda run: default_search(run, env=KAGGLE, kaggle_root=root)
    assert search(run) == []
    assert fit(data, run, search(run), end=KILL_AT)[0] is None           # version 1: the session ends mid-epoch
    newest = ckpt_files(run)[0].name
    assert ckpt_pos(newest) == (0, KILL_AT[0], KILL_AT[1] + 1)

    # Version 2: version 1's output attached read-only, a fresh /kaggle/working, and unrelated attached runs.
    shutil.copytree(root/'working', root/'input'/'whale-train-v1'); shutil.rmtree(root/'working'); (root/'working').mkdir()
    someone_elses_run(reference, RunFolder(root/'input'/'public-notebook').fold_dir(0))
    someone_elses_run(reference, RunFolder(root/'input'/'public-notebook'/'runs'/'whale-b').fold_dir(0))
    someone_elses_run(reference, RunFolder(root/'input'/'cv-outputs'/'oof').fold_dir(0))
    attached = read_only(root/'input')
    prev = RunFolder(root/'input'/'whale-train-v1'/'runs'/'whale').fold_dir(0)
    assert search(run) == [prev]
    elsewhere = RunFolder(tmp_path/'elsewhere'/'whale').fold_dir(0)      # a run folder outside /kaggle/working
    assert search(elsewhere) == [prev]
    assert find_checkpoint(elsewhere, search(elsewhere))[0] == prev/newest   # not a finished `fold_0` of another run
    weights, log = fit(data, run, search(run))
    assert f'Resuming from {prev/newest}: epoch {KILL_AT[0]+1}/{EPOCHS}, batch {KILL_AT[1]+1}/' in log, log
    assert same(weights, reference[0])                                   # exactly the uninterrupted run
    assert snapshot(root/'input') == attached                            # nothing written to the input
    assert read_status(run)['state'] == 'done' and ckpt_files(run)

def test_colab_next_runtime_resumes_from_drive(data, reference, tmp_path, monkeypatch):
    "Colab found by its module alone; the run continues in a folder on the runtime's disk from its copy on Drive."
    monkeypatch.setitem(sys.modules, 'google.colab', type(sys)('google.colab'))
    # each runtime has just started (on this machine PID 1 may be older than Colab's 12 hours: the clock would say stop)
    monkeypatch.setenv('KAGGLE_KIT_SESSION_START', f'{time.time():.3f}')
    env, content = {}, tmp_path/'content'          # no Colab variables; `content` stands for /content
    drive = content/'drive'/'MyDrive'
    drive.mkdir(parents=True)
    p = get_paths('whales', env=env, drive=drive)
    assert (p.platform, p.working, p.persistent) == ('colab', content, drive/'kaggle-kit')
    on_drive = RunFolder(p.persistent/'runs'/'whale').fold_dir(0)
    search = lambda run: default_search(run, env=env, drive=drive)
    assert fit(data, on_drive, search(on_drive), end=KILL_AT)[0] is None   # runtime 1, run folder on Drive: disconnected
    assert search(on_drive) == []                                          # on Drive already: nothing else to search
    someone_elses_run(reference, RunFolder(p.persistent/'runs'/'whale-b').fold_dir(0))
    someone_elses_run(reference, RunFolder(p.persistent).fold_dir(0))
    someone_elses_run(reference, RunFolder(drive/'runs'/'whale').fold_dir(0))   # outside the kit's folder on Drive
    on_disk = RunFolder(content/'runs'/'whale').fold_dir(0)                # runtime 2: the run folder on the runtime's disk
    monkeypatch.setenv('KAGGLE_KIT_SESSION_START', f'{time.time():.3f}')
    assert search(on_disk) == [on_drive]
    newest = ckpt_files(on_drive)[0].name
    weights, log = fit(data, on_disk, search(on_disk))
    assert f'Resuming from {on_drive/newest}: epoch {KILL_AT[0]+1}/{EPOCHS}' in log, log
    assert same(weights, reference[0])
    assert read_status(on_disk)['state'] == 'done'
    assert read_status(on_drive)['state'] == 'running'   # Drive's copy is left as it was
