"""A two-fold `run_cv` on the embedded data, for the process-level tests in test_cv.py.

    python tests/cv_run.py OUT DATA [--epochs N] [--every MIN] [--init-group] [--stop-rank R]
    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/cv_run.py OUT DATA ...

It records OUT/trained_<fold>.json (the rank and pid that trained the fold) and, when asked by the environment,
SIGKILLs itself: KK_KILL_BEFORE_FOLD=k when fold k's learner is asked for (between folds), KK_KILL_AT=fold,epoch,batch
once that batch's checkpoint is on disk (inside a fold). A `SessionLimitReached` out of `run_cv` prints STOPPED.
"""
import os, json, time, signal
from pathlib import Path
import pandas as pd, torch
from fastcore.script import call_parse
from fastai.callback.core import Callback
from kaggle_kit.env import seed_everything, SessionClock
from kaggle_kit.folds import add_folds
from kaggle_kit.checkpoint import TimedCheckpoint, SessionLimitReached
from kaggle_kit.cv import run_cv
from kaggle_kit.datasets import whale_learner

class KillCallback(Callback):
    "SIGKILL this process after batch `batch` (1-based) of epoch `epoch`, once that batch's checkpoint is written."
    order = TimedCheckpoint.order + 1
    def __init__(self, epoch, batch): self.at = (epoch, batch)
    def after_batch(self):
        if self.training and (self.learn.epoch, self.learn.iter + 1) == self.at:
            self.learn.timed_checkpoint.wait()
            os.kill(os.getpid(), signal.SIGKILL)

@call_parse
def main(out:str, # run folder
         data:str, # embedded data folder (make_whales)
         epochs:int=2, # epochs per fold
         size:int=32, # image size
         every:float=30, # minutes between checkpoints (0: after every batch)
         seed:int=0, # each fold is seeded with seed + fold
         init_group:bool=False, # initialise the process group here instead of leaving it to run_cv
         stop_rank:int=None, # this rank finds no session time left: its folds stop before training
        ):
    torch.set_num_threads(1)   # torchrun sets OMP_NUM_THREADS=1; CPU float results can depend on the thread count
    rank = int(os.environ.get('RANK', 0))   # read before run_cv: inside a fold fastai is shown RANK=0
    if init_group: torch.distributed.init_process_group('gloo')
    out, data = Path(out), Path(data)
    df = add_folds(pd.read_csv(data/'train.csv'), 'stratified', n_folds=2, label_col='Id', fn_col='Image', seed=seed)
    test_df = pd.read_csv(data/'sample_submission.csv')[['Image']]
    kill_fold = int(os.environ.get('KK_KILL_BEFORE_FOLD', -1))
    kill_at = [int(x) for x in os.environ['KK_KILL_AT'].split(',')] if os.environ.get('KK_KILL_AT') else None

    def learner_fn(fold):
        if fold == kill_fold: os.kill(os.getpid(), signal.SIGKILL)
        (out/f'trained_{fold}.json').write_text(json.dumps({'rank': rank, 'pid': os.getpid()}))
        seed_everything(seed + fold)
        cbs = [KillCallback(*kill_at[1:])] if kill_at and kill_at[0] == fold else []
        return whale_learner(df, data, fold, size=size, bs=32, seed=seed + fold, cbs=cbs)

    def fit_fn(learn, cbs):
        with learn.no_bar(): learn.fit_one_cycle(epochs, 1e-2, cbs=cbs)

    def predict(learn, dl):
        with learn.no_bar(): return learn.get_preds(dl=dl)

    ckpt = dict(every=every, clock=SessionClock(limit_h=1/3600, start=time.time() - 60) if rank == stop_rank else None)
    try:
        rep = run_cv(df, learner_fn, fit_fn, out, test_df=test_df, test_folder=data/'test', predict=predict,
                     ckpt_kwargs=ckpt, config=dict(epochs=epochs, size=size, seed=seed))
        print(f'rank {rank}: FINISHED\n{rep.to_string()}')
    except SessionLimitReached as e: print(f'rank {rank}: STOPPED\n{e}')
    finally:
        if init_group: torch.distributed.destroy_process_group()
