"""Progressive resizing benchmark: time to accuracy, and the callback's per-batch overhead.

Measures, in one run and side by side (a shared 2-core machine is noisy: the overhead runs are interleaved and
repeated and medians of ratios reported; the time-to-accuracy runs are averaged over `--seeds`):

1. time to accuracy: a fixed final-size run (`fit_one_cycle`, timm `test_resnet`, no pretrained weights) on the
   embedded whale data rendered at `--final` px sets the target, its final validation accuracy; then
   `ProgressiveResize(initial, end)` runs (mode 'batch' and mode 'items', same epochs and learning rate) are timed until their
   validation accuracy first reaches that target. Ratio = progressive time to target / fixed run's time to target
   (goal <= 0.75). Times include data loading and validation; both wall time and this thread's CPU time are given
   (torch runs on one thread, data loading in the main process, so CPU time is wall time minus the other jobs on a
   shared machine, and much steadier).
   Also the training pixels the model saw relative to the fixed run: the work saved, free of timing noise.
2. overhead (goal <= 2%) with `ProgressiveResize(initial=1.)` (constant full size, so only the callback's own work
   remains), at a small size where a fixed cost shows most: the CPU time of its per-batch events (`before_batch`,
   `after_batch`) timed directly on a real mid-epoch batch, as a share of a batch; and end to end, training CPU time per
   batch with vs without the callback (ratio of the fastest of the interleaved runs, and every round's ratio: on a
   shared machine single runs vary by +-15%, far more than the effect).

Same seed => same accuracies (bit for bit on CPU); only the timings vary. A validation set of 269 images moves in
steps of 0.37%, hence the mean over seeds for the target and the curves.

Reproduce:  .venv/bin/python bench/resize.py            (about 15 minutes on 2 idle cores)
            .venv/bin/python bench/resize.py --bs 64 --seeds 2 --overhead-repeats 1
            .venv/bin/python bench/resize.py --quick    (smaller, for a smoke run)
"""
import statistics, tempfile, time, warnings
from pathlib import Path
import pandas as pd, torch
from fastcore.script import call_parse
from fastai.vision.all import (Callback, ImageDataLoaders, Resize, accuracy, set_seed, vision_learner)
from kaggle_kit.datasets import make_whales
from kaggle_kit.resize import ProgressiveResize

warnings.filterwarnings('ignore')

class EpochClock(Callback):
    """Wall and CPU (this thread: torch runs on one thread here) seconds at the end of each epoch; training time per
    batch; training pixels the model saw (after `ProgressiveResize`), a contention-free measure of the work."""
    order = 100
    def before_fit(self):
        self.w0, self.c0, self.ends, self.train_cpu, self.n_batches = time.perf_counter(), time.thread_time(), [], 0., 0
        self.px = 0
    def before_batch(self):
        if self.training: self.px += self.xb[0].shape[0] * self.xb[0].shape[-2] * self.xb[0].shape[-1]
    def before_train(self): self.tc = time.thread_time()
    def after_train(self): self.train_cpu += time.thread_time() - self.tc; self.n_batches += self.n_iter
    def after_epoch(self): self.ends.append((time.perf_counter() - self.w0, time.thread_time() - self.c0))

def dls_for(path, size, bs):
    df = pd.read_csv(path/'train.csv')
    return ImageDataLoaders.from_df(df, path, folder='train', fn_col='Image', label_col='Id', valid_pct=0.2, seed=42,
                                    item_tfms=Resize(size), bs=bs, num_workers=0)

def run(path, size, bs, n_epoch, lr, cbs=(), seed=42):
    "Train from `seed` (DataLoaders built after seeding, so their shuffling is seeded too); per-epoch (wall s, cpu s, acc)."
    set_seed(seed, reproducible=True)
    clock = EpochClock()
    learn = vision_learner(dls_for(path, size, bs), 'test_resnet', pretrained=False, metrics=accuracy, cbs=list(cbs) + [clock])
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(n_epoch, lr)
    return [(w, c, float(v[2])) for (w, c), v in zip(clock.ends, learn.recorder.values)], clock, learn

def mean_curve(curves):
    "Epoch-wise mean of (wall, cpu, acc) over seeds."
    return [tuple(statistics.fmean(o[i] for o in rows) for i in range(3)) for rows in zip(*curves)]

def time_to(curve, target, col):
    "Seconds (column `col`: 0 wall, 1 cpu) until validation accuracy first reaches `target`; None if never."
    return next((o[col] for o in curve if o[2] >= target - 1e-9), None)

class EventCost(Callback):
    "Times `ProgressiveResize`'s per-batch events directly, once per fit, on a real mid-epoch batch."
    order = ProgressiveResize.order+1
    def before_batch(self):
        if not (self.training and self.iter == 3): return
        pr, n = self.learn.progressive_resize, 1000
        t = time.thread_time()
        for _ in range(n): pr('before_batch'); pr('after_batch')
        self.learn.event_spent = time.thread_time() - t # subtracted from the training time by the caller
        self.learn.event_cost = self.learn.event_spent / n

@call_parse
def main(final:int=96, # image size of the fixed run (and the final size of the progressive ones)
         epochs:int=8, # epochs of every run
         lr:float=1e-2, # one-cycle max learning rate
         bs:int=32, # batch size
         initial:float=0.25, # progressive runs: first size, as a fraction of `final`
         end:float=0.5, # progressive runs: the ramp reaches `final` at this fraction of training
         seeds:int=4, # seeds of the time-to-accuracy runs: accuracies and times are averaged over them
         overhead_repeats:int=7, # interleaved repeats of the 1-epoch overhead runs
         quick:bool=False, # small settings for a smoke run
        ):
    if quick: final, epochs, seeds, overhead_repeats = 64, 3, 1, 3
    torch.set_num_threads(1) # tiny model on a shared 2-core machine: one thread is faster and steadier
    tmp = Path(tempfile.mkdtemp())
    path = make_whales(tmp/f'whales{final}', size=final)
    configs = {'fixed': lambda: [], **{m: (lambda m=m: [ProgressiveResize(initial=initial, end=end, mode=m)]) for m in ('batch', 'items')}}
    print(f'time to accuracy: test_resnet, 1347 whale images at {final} px (80/20 split), fit_one_cycle({epochs}, {lr}), '
          f'ProgressiveResize(initial={initial}, end={end}, step=8), mean over {seeds} seed(s)')
    curves, px = {k: [] for k in configs}, {}
    for seed in range(seeds):
        for k, cbs in configs.items():
            curve, clock, _ = run(path, final, bs, epochs, lr, cbs(), seed)
            curves[k].append(curve); px[k] = clock.px
            print(f'  seed {seed} {k:5s} wall {curve[-1][0]:6.1f}s cpu {curve[-1][1]:6.1f}s  valid acc/epoch '
                  + ' '.join(f'{o[2]:.3f}' for o in curve), flush=True)
    means = {k: mean_curve(v) for k, v in curves.items()}
    target = means['fixed'][-1][2]
    print(f"target = the fixed runs' final validation accuracy (mean over seeds), {target:.4f}")
    for k in ('batch', 'items'):
        res = []
        for col, nm in ((0, 'wall'), (1, 'cpu')):
            p, f = time_to(means[k], target, col), time_to(means['fixed'], target, col)
            whole = means[k][-1][col] / means['fixed'][-1][col]
            res.append(f'{nm}: to target {p/f:.3f}, whole fit {whole:.3f}' if p else f'{nm}: target not reached, whole fit {whole:.3f}')
        print(f'{k:5s} (final acc {means[k][-1][2]:.4f}) / fixed -> ' + '; '.join(res)
              + f'; training pixels {px[k]/px["fixed"]:.3f}')

    # overhead at constant size: with initial=1. the callback only does its own bookkeeping
    small = 48
    path = make_whales(tmp/'whales48', size=small)
    per, cost = {k: [] for k in ('none', 'batch', 'items')}, {}
    for r in range(overhead_repeats):
        for k in per:
            cbs = [] if k == 'none' else [ProgressiveResize(initial=1., mode=k), EventCost()]
            _, clock, learn = run(path, small, bs, 1, lr, cbs)
            per[k].append((clock.train_cpu - getattr(learn, 'event_spent', 0.)) / clock.n_batches)
            if k != 'none': cost.setdefault(k, []).append(learn.event_cost)
    base = min(per['none'])
    for k in ('batch', 'items'):
        ratios = sorted(a/b for a, b in zip(per[k], per['none']))
        ev = statistics.median(cost[k])
        print(f'overhead {k:5s} at constant {small} px: the callback\'s per-batch events take {ev*1e6:.0f} us = '
              f'{ev/base:.3%} of a {base*1e3:.1f} ms batch; end to end, training cpu per batch with / without: '
              f'ratio of the fastest runs {min(per[k])/base:.4f}, per-round ratios {" ".join(f"{r:.3f}" for r in ratios)}')
