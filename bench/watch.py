"""What a checkpoint watcher (`kaggle-kit watch`) running beside training costs the trainer, on 2 CPU cores.

    .venv/bin/python bench/watch.py [--reps 3] [--epochs 6] [--threads 1]

Measured side by side in one run, alternating: a training process (the demo's `test_resnet` at 32 px on the embedded
whales, a `TimedCheckpoint` at every epoch's end, `--threads` torch threads) alone, and the same process with
`kaggle-kit watch` (its defaults: the SCHED_IDLE class, nice 10, one thread) validating each checkpoint as it appears. The trainer reports its own epoch
times (the first epoch, with the loaders' start, left out); the medians over all epochs of all reps are compared.
Also checked: the watcher scored every checkpoint exactly once.

Goal, one `VERDICT` line: the trainer's epoch with the watcher <= 1.05x without it.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

def make():
    "The Learner factory the watcher calls: the trainer's fold, data and model."
    import numpy as np, pandas as pd
    from kaggle_kit.datasets import whale_learner
    data = Path(os.environ['KK_BENCH_DATA'])
    df = pd.read_csv(data/'train.csv'); df['fold'] = np.arange(len(df)) % 5
    return whale_learner(df, data, fold=0, size=32, bs=32, seed=0, dls_kwargs=dict(device='cpu'))

def train(out, epochs, threads):
    "The trainer: epoch times as JSON on the last line."
    import torch
    from fastai.callback.core import Callback
    from kaggle_kit.checkpoint import TimedCheckpoint
    torch.set_num_threads(threads)
    class EpochTimes(Callback):
        def before_fit(self): self.ts = []
        def before_epoch(self): self.t0 = time.perf_counter()
        def after_epoch(self): self.ts.append(time.perf_counter() - self.t0)
    learn, et = make(), EpochTimes()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 5e-3, cbs=[TimedCheckpoint(out, every=999, keep=epochs + 1), et])
    print(json.dumps(et.ts))

def trainer_run(data, out, epochs, threads, watch):
    from kaggle_kit.run import write_status, ckpt_files
    env = {**os.environ, 'KK_BENCH_DATA': str(data)}
    w = None
    if watch:
        out.mkdir(parents=True)
        write_status(out, 'running', time=0)   # the watcher may start before the trainer
        w = subprocess.Popen([str(BIN/'kaggle-kit'), 'watch', str(out), '--learner', f'{HERE/"watch.py"}:make', '--poll', '0.2'],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    r = subprocess.run([sys.executable, __file__, '--train', str(out), '--epochs', str(epochs), '--threads', str(threads)],
                       env=env, capture_output=True, text=True, check=True)
    ts = json.loads(r.stdout.strip().splitlines()[-1])
    if w is not None:
        log, _ = w.communicate(timeout=600)
        assert w.returncode == 0, log[-2000:]
        names = [json.loads(l)['checkpoint'] for l in (out/'watch.jsonl').read_text().splitlines()]
        assert sorted(names) == sorted(f.name for f in ckpt_files(out)) and len(set(names)) == len(names), names
    return ts[1:]

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--reps', type=int, default=3); p.add_argument('--epochs', type=int, default=6)
    p.add_argument('--threads', type=int, default=1); p.add_argument('--train')
    a = p.parse_args()
    if a.train: return train(a.train, a.epochs, a.threads)
    from verdict import verdict   # here: the watcher imports this file for `make` from elsewhere
    from kaggle_kit.datasets import make_whales
    tmp = Path(tempfile.mkdtemp()); data = make_whales(tmp/'whales')
    times = {False: [], True: []}
    for r in range(a.reps):
        for watch in ((False, True) if r % 2 == 0 else (True, False)):
            times[watch] += trainer_run(data, tmp/f'run-{r}-{int(watch)}', a.epochs, a.threads, watch)
    alone, beside = statistics.median(times[False]), statistics.median(times[True])
    print(f"trainer {a.threads} thread(s), {a.epochs} epochs x {a.reps} reps; watcher SCHED_IDLE, nice 10, 1 thread; every checkpoint scored once")
    print(f"epoch alone:        median {alone:.3f} s (min {min(times[False]):.3f}, max {max(times[False]):.3f})")
    print(f"epoch with watcher: median {beside:.3f} s (min {min(times[True]):.3f}, max {max(times[True]):.3f})")
    verdict('trainer epoch with the watcher <= 1.05x without', beside/alone <= 1.05, f'{beside/alone:.3f}x, medians', '<= 1.05x')

if __name__ == '__main__': main()
