"""How much a TimedCheckpoint pauses training, for a ResNet-50-sized model with its optimizer state (~300 MB).

    .venv/bin/python bench/checkpoint.py [--batches 40] [--every 0.25]

Measured side by side in one run, on the same fastai Learner (timm resnet50, pretrained=False, fastai Adam: two
moment buffers per weight, like AdamW):
1. the time the training loop is blocked per checkpoint (the synchronous snapshot; serializing, checksum, fsync and
   rename run in a background thread) vs a plain synchronous `torch.save` of the same state, without and with fsync;
2. epoch wall time with a checkpoint every `--every` minutes vs no checkpoint; the overhead is also scaled to one
   checkpoint a minute;
3. resume time (`load_checkpoint`: checksum + `weights_only` load) vs a plain `torch.load` of the plain file.

Goals, one `VERDICT` line each at the end: the loop is blocked <= 0.5x a synchronous save, against a durable one
(`torch.save` + fsync) and against a plain `torch.save` into the page cache (not durable); epoch overhead <= 3% with
one checkpoint a minute. The resume time has no goal: it is printed for scale.
"""
import os, sys, time, tempfile, argparse, statistics
from pathlib import Path
import torch, timm
from fastai.vision.all import DataLoaders, Learner, CrossEntropyLossFlat, Adam
from kaggle_kit.checkpoint import TimedCheckpoint
from kaggle_kit.state import learner_state
from kaggle_kit.store import load_checkpoint, save_checkpoint
from verdict import verdict

p = argparse.ArgumentParser(); p.add_argument('--batches', type=int, default=40); p.add_argument('--every', type=float, default=0.25)
args = p.parse_args()

def learner():
    torch.manual_seed(0)
    x, y = torch.randn(args.batches*8, 3, 64, 64), torch.randint(0, 10, (args.batches*8,))
    dls = DataLoaders.from_dsets(list(zip(x, y)), list(zip(x[:16], y[:16])), bs=8, device='cpu')
    return Learner(dls, timm.create_model('resnet50', pretrained=False, num_classes=10), loss_func=CrossEntropyLossFlat(),
                   opt_func=Adam)

class Timed(TimedCheckpoint):
    "Records how long each save blocks the training loop."
    def _save(self, **kw):
        t0 = time.perf_counter(); super()._save(**kw); self.blocked.append(time.perf_counter() - t0)

def main():
    tmp = Path(tempfile.mkdtemp(dir=os.environ.get('BENCH_TMP')))
    learn = learner()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-4)        # fills the optimizer state
    st = learner_state(learn)
    mb = sum(v.numel()*v.element_size() for v in st['model'].values())/2**20
    mb += sum(t.numel()*t.element_size() for s in st['opt']['state'] for t in s.values() if isinstance(t, torch.Tensor))/2**20
    print(f'state: {mb:.0f} MB (model + optimizer)')

    sync, sync_fsync, load_plain, load_kit = [], [], [], []
    for i in range(3):
        f = tmp/f'plain{i}.pth'
        t0 = time.perf_counter(); torch.save({'model': learn.model.state_dict(), 'opt': learn.opt.state_dict()}, f)
        sync.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with open(tmp/f'fs{i}.pth', 'wb') as fh:
            torch.save({'model': learn.model.state_dict(), 'opt': learn.opt.state_dict()}, fh); fh.flush(); os.fsync(fh.fileno())
        sync_fsync.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); torch.load(f, weights_only=False); load_plain.append(time.perf_counter() - t0)  # our own file
        g = save_checkpoint(st, tmp/f'kit{i}.pth')
        t0 = time.perf_counter(); load_checkpoint(g); load_kit.append(time.perf_counter() - t0)
        for h in (f, tmp/f'fs{i}.pth', g): h.unlink()

    def epoch(cbs):
        l = learner(); l.model.load_state_dict(learn.model.state_dict())
        t0 = time.perf_counter()
        with l.no_bar(), l.no_logging(): l.fit(1, 1e-4, cbs=cbs)
        return time.perf_counter() - t0
    base = epoch([])
    cb = Timed(tmp/'run', every=args.every, at_epoch_end=False, budget=False); cb.blocked = []
    with_ck = epoch([cb])
    n = len(cb.blocked)
    med = statistics.median
    print(f'plain torch.save: {med(sync):.3f} s; with fsync: {med(sync_fsync):.3f} s')
    if n:
        print(f'TimedCheckpoint blocks the loop {med(cb.blocked):.3f} s per checkpoint ({n} taken, background write '
              f'{cb.writer.t_save:.3f} s): {med(cb.blocked)/med(sync):.2f}x a plain torch.save, {med(cb.blocked)/med(sync_fsync):.2f}x with fsync')
    extra = (with_ck - base)/max(n, 1)   # wall time each checkpoint costs the epoch
    print(f'epoch: {base:.1f} s without, {with_ck:.1f} s with {n} checkpoint(s) (+{(with_ck/base-1)*100:.1f}%); '
          f'{extra:.3f} s per checkpoint, i.e. +{extra/60*100:.1f}% with one checkpoint a minute')
    print(f'resume: load_checkpoint {med(load_kit):.3f} s vs torch.load {med(load_plain):.3f} s: {med(load_kit)/med(load_plain):.2f}x')
    print()
    none = 'no checkpoint was taken (epoch shorter than --every)'
    for name, ref in (('torch.save + fsync', sync_fsync), ('plain torch.save', sync)):
        r = med(cb.blocked)/med(ref) if n else None
        verdict(f'blocked <= 0.5x a {name}', n > 0 and r <= 0.5, f'{r:.2f}x' if n else none, '<= 0.5x')
    verdict('epoch overhead <= 3% with one checkpoint a minute', n > 0 and extra/60 <= 0.03,
            f'+{extra/60*100:.1f}%' if n else none, '<= 3%')

if __name__ == '__main__': main()
