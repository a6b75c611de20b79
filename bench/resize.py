"""Progressive resizing benchmark: time to accuracy, and the callback's per-batch overhead.

Measures, in one run and side by side (a shared 2-core machine is noisy: runs of different configurations are
interleaved, their order rotated from seed to seed, and times averaged over `--seeds`; the overhead runs are repeated
and ratios of the fastest given):

1. time to accuracy: a fixed final-size run (`fit_one_cycle`, timm `test_resnet`, no pretrained weights) on the
   embedded whale data rendered at `--final` px sets the target, its final validation accuracy; then
   `ProgressiveResize(initial, end, valid)` runs (mode 'batch' and mode 'items', same epochs and learning rate) are
   timed until their validation accuracy, measured at the full size, first reaches that
   target (with `valid='current'` the mid-ramp validations are at the small size and don't count). Ratio = progressive
   time to target / fixed run's time to target (goal <= 0.75). Times include data loading and validation; both wall
   time and this thread's CPU time are given (torch runs on one thread, data loading in the main process: the two
   agree on an idle machine; the host's noise shows in both, up to 30% between identical runs).
   Also the training pixels the model saw relative to the fixed run: the work saved, free of timing noise.
2. overhead (goal <= 2%) with `ProgressiveResize(initial=1.)` (constant full size, so only the callback's own work
   remains), at a small size where a fixed cost shows most: the CPU time of its per-batch events (`before_batch`,
   `after_batch`) timed directly on a real mid-epoch batch, as a share of a batch; and end to end, training CPU time per
   batch with vs without the callback (ratio of the fastest of the interleaved runs, and every round's ratio: on a
   shared machine single runs vary by +-15%, far more than the effect).

Verdicts: one `VERDICT` line per goal and mode. Time to accuracy: the wall-clock ratio to the target (means over the
seeds), NOT met when the mean count of correct images never reaches the fixed runs'. Overhead: the directly timed
per-batch events as a share of a batch (the end-to-end ratio, far noisier than the effect, is printed beside it).

The defaults (128 px, batch size 64, validation at the current size) are a regime where the model's compute is most of
a batch, as with a real network at 224-512 px; `--final 96 --bs 32 --valid final` is one where a fixed per-batch cost
(decoding, fastai's per-batch work, validation at full size every epoch) is a large share, and the saving shrinks.

Same seed => same accuracies (bit for bit on CPU); only the timings vary. A validation set of 269 images moves in
steps of 0.37%, hence the mean over seeds for the target and the curves; accuracies are compared as counts of correct
images (float32 means of equal counts can differ in the last bit).

On `--data flukes` (`make_flukes`: long-tail whale flukes whose identity is in fine detail a small image loses) the
runs are the kit's own softmax baseline, `whale_learner` (timm `test_resnet`, the kit's `get_dls` with its default
augmentation, `new_whale` left out of training) on fold 0 of `add_folds(df, 'stratified', 4, label_col='Id',
rare='seen')`; accuracy is `accuracy_known`, over the validation images of known individuals.

Reproduce:  .venv/bin/python bench/resize.py            (about 20 minutes on 2 idle cores)
            .venv/bin/python bench/resize.py --data flukes --epochs 25 --bs 32 --seeds 1 --modes items --overhead-repeats 0
                        (on fluke data, where size matters; about 10 minutes)
            .venv/bin/python bench/resize.py --first-seed 4 --overhead-repeats 0    (seeds 4-7, no overhead runs)
            .venv/bin/python bench/resize.py --final 96 --bs 32 --valid final    (the overhead-heavy regime)
            .venv/bin/python bench/resize.py --quick    (smaller, for a smoke run)
"""
import statistics, tempfile, time, warnings
from pathlib import Path
import pandas as pd, torch
from fastcore.script import call_parse
from fastai.vision.all import (Callback, ImageDataLoaders, Resize, accuracy, set_seed, vision_learner)
from kaggle_kit.datasets import make_whales, make_flukes, whale_learner
from kaggle_kit.folds import add_folds
from kaggle_kit.resize import ProgressiveResize
from verdict import verdict

warnings.filterwarnings('ignore')

class EpochClock(Callback):
    """Wall and CPU (this thread: torch runs on one thread here) seconds at the end of each epoch; training time per
    batch; training pixels the model saw (after `ProgressiveResize`), a contention-free measure of the work."""
    order = 100
    def before_fit(self):
        self.w0, self.c0, self.ends, self.train_cpu, self.n_batches = time.perf_counter(), time.thread_time(), [], 0., 0
        self.px, self.valid_sizes = 0, []
    def before_batch(self):
        if self.training: self.px += self.xb[0].shape[0] * self.xb[0].shape[-2] * self.xb[0].shape[-1]
        else: self.vsize = max(self.xb[0].shape[-2:])
    def before_train(self): self.tc = time.thread_time()
    def after_train(self): self.train_cpu += time.thread_time() - self.tc; self.n_batches += self.n_iter
    def after_epoch(self):
        self.ends.append((time.perf_counter() - self.w0, time.thread_time() - self.c0)); self.valid_sizes.append(self.vsize)

def dls_for(path, size, bs):
    df = pd.read_csv(path/'train.csv')
    return ImageDataLoaders.from_df(df, path, folder='train', fn_col='Image', label_col='Id', valid_pct=0.2, seed=42,
                                    item_tfms=Resize(size), bs=bs, num_workers=0)

def flukes_df(path):
    "`train.csv` of a `make_flukes` folder with 4 stratified folds; singletons always in training."
    return add_folds(pd.read_csv(path/'train.csv'), 'stratified', n_folds=4, label_col='Id', rare='seen')

def run(path, size, bs, n_epoch, lr, cbs=(), seed=42, df=None):
    """Train from `seed` (DataLoaders built after seeding, so their shuffling is seeded too); per-epoch (wall s, cpu s, acc).
    An accuracy measured below the full `size` (`ProgressiveResize(valid='current')` mid-ramp) is recorded as None.
    With `df` (flukes): `whale_learner` on fold 0 of `df`, accuracy over the known individuals' validation images."""
    set_seed(seed, reproducible=True)
    clock = EpochClock()
    if df is None:
        learn = vision_learner(dls_for(path, size, bs), 'test_resnet', pretrained=False, metrics=accuracy, cbs=list(cbs) + [clock])
        n = len(learn.dls.valid_ds)
    else:
        learn = whale_learner(df, path, fold=0, size=size, bs=bs, seed=seed, cbs=list(cbs) + [clock])
        n = int(((df.fold == 0) & (df.Id != 'new_whale')).sum()) # `accuracy_known` counts only these
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(n_epoch, lr)
    # accuracy as a count of correct images: float32 means of equal counts needn't be equal
    return [(w, c, round(float(v[2]) * n) if vs == size else None)
            for (w, c), v, vs in zip(clock.ends, learn.recorder.values, clock.valid_sizes)], clock, learn, n

def mean_curve(curves):
    "Epoch-wise mean of (wall, cpu, correct) over seeds; correct is None where it was measured below the full size."
    mean = lambda xs: None if None in xs else statistics.fmean(xs)
    return [tuple(mean([o[i] for o in rows]) for i in range(3)) for rows in zip(*curves)]

def time_to(curve, target, col):
    "Seconds (column `col`: 0 wall, 1 cpu) until the mean count of correct validation images first reaches `target`; None if never."
    return next((o[col] for o in curve if o[2] is not None and o[2] >= target), None)

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
def main(final:int=128, # image size of the fixed run (and the final size of the progressive ones)
         epochs:int=8, # epochs of every run
         lr:float=1e-2, # one-cycle max learning rate
         bs:int=64, # batch size
         initial:float=0.25, # progressive runs: first size, as a fraction of `final`
         end:float=0.5, # progressive runs: the ramp reaches `final` at this fraction of training
         valid:str='current', # progressive runs: validate at the 'final' size or the 'current' one (mid-ramp accuracies then don't count)
         modes:str='batch,items', # progressive runs: `ProgressiveResize` modes to time, comma-separated
         first_seed:int=0, # seeds are first_seed, first_seed+1, ...
         seeds:int=4, # seeds of the time-to-accuracy runs: accuracies and times are averaged over them
         overhead_repeats:int=7, # interleaved repeats of the 1-epoch overhead runs
         quick:bool=False, # small settings for a smoke run
         data:str='whales', # 'whales' (`make_whales`, digits) or 'flukes' (`make_flukes`, identity in fine detail)
        ):
    if data not in ('whales', 'flukes'): raise ValueError(f"--data must be 'whales' or 'flukes', got {data!r}")
    if quick: final, epochs, seeds, overhead_repeats = 64, 3, 1, 1
    torch.set_num_threads(1) # tiny model on a shared 2-core machine: one thread is faster and steadier
    tmp = Path(tempfile.mkdtemp())
    path = (make_whales if data == 'whales' else make_flukes)(tmp/f'{data}{final}', size=final)
    df = flukes_df(path) if data == 'flukes' else None
    modes = modes.split(',')
    configs = {'fixed': lambda: [], **{m: (lambda m=m: [ProgressiveResize(initial=initial, end=end, mode=m, valid=valid)]) for m in modes}}
    what = ('1347 whale images (80/20 split)' if df is None else
            f'whale_learner on {len(df)} fluke images, fold 0 of 4 ({((df.fold == 0) & (df.Id != "new_whale")).sum()} known validation images)')
    print(f'time to accuracy: test_resnet, {what} at {final} px, bs {bs}, '
          f'fit_one_cycle({epochs}, {lr}); progressive runs add '
          f'ProgressiveResize(initial={initial}, end={end}, step=8, valid={valid!r}); mean over seeds {first_seed}-{first_seed+seeds-1}')
    curves, px, n_valid = {k: [] for k in configs}, {}, None
    for seed in range(first_seed, first_seed+seeds):
        order = list(configs)[seed % len(configs):] + list(configs)[:seed % len(configs)] # no config always runs first
        for k in order:
            curve, clock, learn, n_valid = run(path, final, bs, epochs, lr, configs[k](), seed, df)
            curves[k].append(curve); px[k] = clock.px
            print(f'  seed {seed} {k:5s} wall {curve[-1][0]:6.1f}s cpu {curve[-1][1]:6.1f}s  valid acc/epoch '
                  + ' '.join('  -  ' if o[2] is None else f'{o[2]/n_valid:.3f}' for o in curve), flush=True)
    means = {k: mean_curve(v) for k, v in curves.items()}
    target = means['fixed'][-1][2]
    print(f"target = the fixed runs' final validation accuracy (mean over seeds), {target/n_valid:.4f} "
          f"({round(target*seeds)} of {n_valid*seeds} validation images over the seeds)")
    for k in modes:
        res = []
        for col, nm in ((0, 'wall'), (1, 'cpu')):
            p, f = time_to(means[k], target, col), time_to(means['fixed'], target, col)
            whole = means[k][-1][col] / means['fixed'][-1][col]
            res.append(f'{nm}: to target {p/f:.3f}, whole fit {whole:.3f}' if p else f'{nm}: target not reached, whole fit {whole:.3f}')
        per_seed = ' '.join(f'{p[-1][0]/f[-1][0]:.3f}' for p, f in zip(curves[k], curves['fixed']))
        print(f'{k:5s} (final acc {means[k][-1][2]/n_valid:.4f}, {round(means[k][-1][2]*seeds)} correct) / fixed -> ' + '; '.join(res)
              + f'; training pixels {px[k]/px["fixed"]:.3f}; whole fit wall per seed {per_seed}')
    for k in modes:
        p, f = time_to(means[k], target, 0), time_to(means['fixed'], target, 0)
        whole = means[k][-1][0] / means['fixed'][-1][0]
        verdict(f"time to the fixed run's accuracy <= 0.75x ({k})", bool(p) and p/f <= 0.75,
                f'{p/f:.3f}x wall, whole fit {whole:.3f}x' if p else
                f'target not reached: best {round(max((o[2] for o in means[k] if o[2] is not None), default=0)*seeds)} vs '
                f'{round(target*seeds)} correct images over the seeds; whole fit {whole:.3f}x', '<= 0.75x')

    # overhead at constant size: with initial=1. the callback only does its own bookkeeping
    if not overhead_repeats: print('VERDICT overhead <= 2%: not measured (--overhead-repeats 0)'); return
    small = 48
    path = make_whales(tmp/'whales48', size=small)
    per, cost = {k: [] for k in ('none', 'batch', 'items')}, {}
    for r in range(overhead_repeats):
        for k in per:
            cbs = [] if k == 'none' else [ProgressiveResize(initial=1., mode=k), EventCost()]
            _, clock, learn, _ = run(path, small, bs, 1, lr, cbs)
            per[k].append((clock.train_cpu - getattr(learn, 'event_spent', 0.)) / clock.n_batches)
            if k != 'none': cost.setdefault(k, []).append(learn.event_cost)
    base = min(per['none'])
    for k in ('batch', 'items'):
        ratios = sorted(a/b for a, b in zip(per[k], per['none']))
        ev = statistics.median(cost[k])
        print(f'overhead {k:5s} at constant {small} px: the callback\'s per-batch events take {ev*1e6:.0f} us = '
              f'{ev/base:.3%} of a {base*1e3:.1f} ms batch; end to end, training cpu per batch with / without: '
              f'ratio of the fastest runs {min(per[k])/base:.4f}, per-round ratios {" ".join(f"{r:.3f}" for r in ratios)}')
    for k in ('batch', 'items'):
        ev = statistics.median(cost[k])
        verdict(f'overhead <= 2% ({k})', ev/base <= 0.02,
                f'{ev/base:.3%} of a batch, events timed directly; end to end {min(per[k])/base:.3f}x', '<= 2%')
