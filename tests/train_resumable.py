"""A small resumable training run on the embedded data, for the process-level tests in test_checkpoint.py.

    python tests/train_resumable.py OUT DATA [--workers W] [--epochs N] [--every MIN] [--no-ckpt] [--budget-s S] [--method M] [--model embed] [--recipe R,R...]

Recipes (tests/test_resume_matrix.py): mixup, cutmix, grad_acc, bf16, fp16, early_stop, save_model, ema.

Writes OUT/final.pth (the final state dict) when training ends; exits 0 after a budget stop too, printing the message.
"""
import sys, os
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastcore.script import call_parse
from kaggle_kit.env import seed_everything, SessionClock
from kaggle_kit.datasets import whale_learner, whale_dls
from kaggle_kit.embed import embedding_learner
from kaggle_kit.checkpoint import TimedCheckpoint, SessionLimitReached
from kaggle_kit.train import EMACallback
from fastai.callback.all import MixUp, CutMix, GradientAccumulation, MixedPrecision, EarlyStoppingCallback, SaveModelCallback
from torch.amp import GradScaler

class CPUMixedPrecision(MixedPrecision):
    """fastai's `MixedPrecision` with its autocast and scaler on the CPU: fastai builds them for CUDA, which a machine
    without a GPU switches off, so the same code runs (bf16: no scaler; fp16: a real, enabled `GradScaler`)."""
    def before_fit(self):
        super().before_fit()
        dtype = torch.float16 if self.amp_mode.value == 'fp16' else torch.bfloat16
        self.autocast = torch.autocast('cpu', dtype=dtype)
        self.learn.scaler = GradScaler('cpu', enabled=dtype == torch.float16, init_scale=2.**8, growth_interval=4)

def recipe_cbs(names, out):
    "The callbacks of the comma-separated recipes `names` (see the module's docstring)."
    make = dict(mixup=lambda: MixUp(0.4), cutmix=lambda: CutMix(1.), grad_acc=lambda: GradientAccumulation(n_acc=64),
                bf16=lambda: CPUMixedPrecision('bf16'), fp16=lambda: CPUMixedPrecision('fp16'),
                early_stop=lambda: EarlyStoppingCallback(monitor='valid_loss', patience=2, min_delta=10.),   # stops after the 3rd epoch
                save_model=lambda: SaveModelCallback(monitor='valid_loss', fname='best', with_opt=False),
                ema=lambda: EMACallback(decay=0.99))
    bad = [n for n in names.split(',') if n and n not in make]
    if bad: raise SystemExit(f"unknown recipe(s) {bad}; known: {', '.join(make)}")
    return [make[n]() for n in names.split(',') if n]

@call_parse
def main(out:str, # run folder
         data:str, # embedded data folder (make_whales)
         workers:int=0, # DataLoader workers
         epochs:int=2, # epochs
         every:float=0., # minutes between checkpoints
         no_ckpt:bool=False, # train without TimedCheckpoint
         budget_s:float=None, # session budget in seconds, counted from now
         method:str='one_cycle', # one_cycle, flat_cos or fine_tune
         model:str='softmax', # softmax (`whale_learner`) or embed (`embedding_learner`: GeM, neck, sub-center ArcFace, kNN)
         recipe:str='', # comma-separated training recipes (callbacks), e.g. mixup,ema
        ):
    seed_everything(0)
    torch.set_num_threads(1)
    data = Path(data)
    df = pd.read_csv(data/'train.csv')
    df['fold'] = np.arange(len(df)) % 5
    if model == 'softmax':
        learn = whale_learner(df, data, fold=0, size=24, bs=32, seed=0, num_workers=workers, dls_kwargs=dict(device='cpu'))
    else:   # learned GeM p, dynamic margins, sub-centers: every piece of state a resume must bring back
        dls = whale_dls(df, data, 0, size=24, bs=32, seed=0, num_workers=workers, dls_kwargs=dict(device='cpu'))
        learn = embedding_learner(dls, 'test_resnet', emb_dim=32, learn_p=True, lr=5e-4)
    clock = SessionClock(limit_h=budget_s/3600, start=__import__('time').time()) if budget_s else None
    search = [os.environ['KAGGLE_KIT_TEST_SEARCH']] if os.environ.get('KAGGLE_KIT_TEST_SEARCH') else []
    learn.path = Path(out)   # SaveModelCallback's best model: in the run folder, as it is kept across sessions
    cbs = recipe_cbs(recipe, out) + ([] if no_ckpt else [TimedCheckpoint(out, every=every, keep=2, clock=clock, margin=0, search=search)])
    try:
        lr = None if model == 'embed' else 5e-3   # the embedding learner's own rates: the head's 10x the body's
        if method == 'one_cycle': learn.fit_one_cycle(epochs, lr or learn.lr, cbs=cbs)
        elif method == 'flat_cos': learn.fit_flat_cos(epochs, 5e-3, cbs=cbs)
        elif method == 'fine_tune': learn.fine_tune(epochs, 5e-3, freeze_epochs=1, cbs=cbs)
    except SessionLimitReached as e:
        print(e); return
    Path(out).mkdir(parents=True, exist_ok=True)
    torch.save(learn.model.state_dict(), Path(out)/'final.pth')
    print('FINISHED')
