"""fastai's `SaveModelCallback` under `TimedCheckpoint` (issue 23): its best model lives in the run folder, not in
`<learn.path>/models` (the working directory, by default). The README's training cell is SIGKILLed in a real process
the moment it has saved the best model of its second epoch (its first best is older, checkpoints are on disk), then
resumed in a NEW working directory (a new Colab runtime, the run folder on Drive), then run once more, its fit finished,
in another: each new working directory holds a planted `models/model.pth` whose unpickling would write a marker file.
Both end with the uninterrupted run's weights, bit for bit, and the marker is never written. (fastai's own callback
fails the last run: it reads `models/model.pth` of the working directory, the planted pickle, or raises
`FileNotFoundError` without one.)

The module is also the training cell, run in the working directory it is started in:

    python tests/test_savemodel.py RUN DATA [--epochs N] [--no-ckpt]
"""
import os, sys, time, signal, subprocess
from pathlib import Path
import pytest, torch
from fastcore.script import call_parse
from test_checkpoint import ckpts, pos, same, weights

HERE = Path(__file__).resolve().parent

def train(run, data, epochs=3, ckpt=True):
    "The README's training cell on the kit's test learner; `learn.path` is left at the working directory, fastai's default."
    import numpy as np, pandas as pd
    from kaggle_kit.env import seed_everything
    from kaggle_kit.datasets import whale_learner
    from kaggle_kit.checkpoint import TimedCheckpoint
    from kaggle_kit.train import EMACallback
    from fastai.callback.all import MixUp, GradientAccumulation, SaveModelCallback, EarlyStoppingCallback
    seed_everything(0); torch.set_num_threads(1)
    df = pd.read_csv(Path(data)/'train.csv'); df['fold'] = np.arange(len(df)) % 5
    learn = whale_learner(df, data, fold=0, size=16, bs=64, seed=0, dls_kwargs=dict(device='cpu'))
    cbs = [TimedCheckpoint(run, every=0, keep=2, margin=0, search=[])] if ckpt else []
    with learn.no_bar():
        learn.fit_one_cycle(epochs, 5e-3, cbs=[*cbs, MixUp(0.4), GradientAccumulation(n_acc=128), EMACallback(decay=0.99),
                                               SaveModelCallback(monitor='valid_loss', with_opt=False), EarlyStoppingCallback(patience=3)])
    Path(run).mkdir(parents=True, exist_ok=True)
    torch.save(learn.model.state_dict(), Path(run)/'final.pth')
    print('FINISHED')

class Planted:
    "Unpickling it writes `marker`: a `models/model.pth` planted where fastai's `learn.load('model')` reads."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (open, (str(self.marker), 'w'))

def start(run, data, cwd, *args):
    return subprocess.Popen([sys.executable, str(HERE/'test_savemodel.py'), str(run), str(data), *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})

def finish(p):
    log = p.communicate(timeout=600)[0]
    assert p.returncode == 0, log[-4000:]
    return log

def kill_after_best(p, run, epoch, timeout=300):
    """SIGKILL `p` the moment (a millisecond) after its best model of `epoch` (fit 0) appears in `run`: usually before
    the checkpoint at the end of that epoch is written. Returns the newest checkpoint then."""
    from kaggle_kit.run import best_name
    best, t0 = run/best_name('model', 0, epoch), time.time()
    while p.poll() is None and not best.exists() and time.time() - t0 < timeout: time.sleep(0.001)
    if p.poll() is None: p.send_signal(signal.SIGKILL)
    p.log = p.communicate()[0]
    assert p.returncode == -signal.SIGKILL and best.exists(), f'no best model of epoch {epoch} before the end (exit {p.returncode}):\n{p.log[-3000:]}'
    return max(ckpts(run), key=pos)

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from kaggle_kit.datasets import make_whales
    return make_whales(tmp_path_factory.mktemp('data')/'whales')

def test_killed_after_a_best_resumed_in_new_working_directories(data, tmp_path):
    from kaggle_kit.run import best_name
    from kaggle_kit.store import load_checkpoint
    run, marker = tmp_path/'run', tmp_path/'planted-ran'
    cwds = [tmp_path/n for n in ('ref', 'killed', 'resumed', 'again')]
    for d in cwds: d.mkdir()
    for d in cwds[2:]: (d/'models').mkdir(); torch.save({'model': Planted(marker)}, d/'models'/'model.pth')
    ref = start(tmp_path/'ref-run', data, cwds[0], '--no-ckpt')   # fastai's own SaveModelCallback, beside the killed run
    last = kill_after_best(start(run, data, cwds[1]), run, epoch=1)
    st = load_checkpoint(last)['learn']['cbs']['save_model']
    assert st['best'] < float('inf') and st['file'] in (best_name('model', 0, 0), best_name('model', 0, 1)), st
    print(f'\nkilled after {last.name}, which records {st["file"]}; best files:', sorted(f.name for f in run.glob('best-*')))
    assert not (cwds[1]/'models').exists()   # nothing written in the working directory
    resumed = start(run, data, cwds[2])   # a new working directory, the same run folder
    finish(ref); want = weights(tmp_path/'ref-run')
    for d, how in ((cwds[2], f'Resuming from {last}'), (cwds[3], 'this fit is already finished')):
        log = finish(resumed if d == cwds[2] else start(run, data, d))
        assert how in log, log[-3000:]
        assert same(weights(run), want), f"{d.name}: the final weights differ from the uninterrupted run's"
        assert not marker.exists(), f'{d.name}: the planted models/model.pth was unpickled'
        assert os.listdir(d/'models') == ['model.pth']
    assert (cwds[0]/'models'/'model.pth').exists()   # where fastai's own callback keeps it

@call_parse
def main(run:str, # run folder
         data:str, # embedded data folder (make_whales)
         epochs:int=3, # epochs
         no_ckpt:bool=False, # train without TimedCheckpoint: fastai's own SaveModelCallback
        ): train(run, data, epochs, not no_ckpt)
