"""What `EMACallback` costs a training epoch, on the demo's model and data.

    .venv/bin/python bench/ema.py [--reps 9] [--epochs 3] [--arch test_resnet] [--size 32]

Measured side by side in one run: the same `whale_learner` (the demo's `test_resnet` at 32 px on the embedded
whales, batch size 32, fits of 3 epochs of 23 batches plus validation) fitted without and with `EMACallback()` (an update
after every optimizer step, the validation on the EMA weights and the fit ending on them), alternating the two `reps`
times; the medians are compared. The update alone (timm's `ModelEmaV3.update`, foreach lerp) is timed too, per step.

Goal, one `VERDICT` line: the epoch with EMA <= 1.03x the epoch without.
"""
import argparse, statistics, time, tempfile
from pathlib import Path
import numpy as np, pandas as pd, torch
from kaggle_kit.datasets import make_whales, whale_learner
from kaggle_kit.train import EMACallback
from timm.utils.model_ema import ModelEmaV3
from verdict import verdict

p = argparse.ArgumentParser()
p.add_argument('--reps', type=int, default=9); p.add_argument('--epochs', type=int, default=3)
p.add_argument('--arch', default='test_resnet'); p.add_argument('--size', type=int, default=32)
args = p.parse_args()

def main():
    data = make_whales(Path(tempfile.mkdtemp())/'whales')
    df = pd.read_csv(data/'train.csv'); df['fold'] = np.arange(len(df)) % 5
    learn = whale_learner(df, data, size=args.size, arch=args.arch, dls_kwargs=dict(device='cpu'))
    n_params = sum(p.numel() for p in learn.model.parameters())
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)   # warm-up: allocations, the loaders' first pass
    times = {'plain': [], 'ema': []}
    for r in range(args.reps):
        for k in (('plain', 'ema') if r % 2 else ('ema', 'plain')):
            cbs = [EMACallback()] if k == 'ema' else []
            t0 = time.perf_counter()
            with learn.no_bar(), learn.no_logging(): learn.fit(args.epochs, 1e-3, cbs=cbs)
            times[k].append(time.perf_counter() - t0)
    ema = ModelEmaV3(learn.model, decay=0.999)
    t0 = time.perf_counter()
    for i in range(200): ema.update(learn.model, step=i + 1)
    upd = (time.perf_counter() - t0)/200
    plain, with_ema = statistics.median(times['plain']), statistics.median(times['ema'])
    steps = len(learn.dls.train)*args.epochs
    print(f"{args.arch} at {args.size} px, {n_params/1e6:.2f} M parameters, {steps} steps a fit, {args.reps} fits each")
    print(f"fit without EMA: median {plain:.3f} s (min {min(times['plain']):.3f}, max {max(times['plain']):.3f})")
    print(f"fit with EMA:    median {with_ema:.3f} s (min {min(times['ema']):.3f}, max {max(times['ema']):.3f})")
    print(f"one EMA update: {upd*1e3:.2f} ms; {steps} of them: {upd*steps:.3f} s = {upd*steps/plain:.1%} of the fit")
    ratio = with_ema/plain
    verdict('EMA epoch <= 1.03x the epoch without', ratio <= 1.03, f'{ratio:.3f}x, medians of {args.reps}', '<= 1.03x')

if __name__ == '__main__': main()
