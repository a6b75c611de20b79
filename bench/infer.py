"""Dihedral TTA in one pass over the data (`kaggle_kit.infer.tta_preds`) against the multi-pass ways of doing it.

Measured side by side in one run, on the whale-style test set (450 PNG images, `make_whales`), timm `test_resnet`
(random weights, eval mode), batch size 64, CPU, images resized to `--size` px by the kit's `get_test_dl`:
- `tta_preds(learn, dl, n=8)`: each batch is decoded and resized once, the model runs on its 8 dihedral transforms;
- `8 x get_preds`: one `get_preds` pass per transform (the transform applied to the batch by a small callback), i.e.
  every image decoded 8 times. Its mean probabilities are checked equal to `tta_preds`' (max abs difference printed);
- fastai's `learn.tta(n=8)` (train-time augmentation, 8 augmented passes + 1 plain pass; different numbers by design,
  timed only for scale). Its training augmentation here is the kit's albumentations `D4` (random dihedral per item);
- `get_preds` (no TTA), the unit.
Every timing is the best of `--reps` runs (a shared machine disturbs some runs). Ratios are against `tta_preds`.
The ratio shrinks as the model's share of the cost grows (bigger images, bigger models, a GPU that decodes nothing).

Goals, one `VERDICT` line each at the end: one pass is faster than one pass per transform (`8 x get_preds` /
`tta_preds` > 1x), with the same probabilities (max abs difference <= 1e-6).

Reproduce: .venv/bin/python bench/infer.py                 (about 1.5 minutes on 2 shared cores)
           .venv/bin/python bench/infer.py --size 64 --threads 2
"""
import argparse, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch, timm
import albumentations as A
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.vision.all import Normalize, imagenet_stats
from kaggle_kit.datasets import make_whales
from kaggle_kit.data import NEW_WHALE, get_dls, get_test_dl
from kaggle_kit.infer import tta_preds, dihedral_tfm
from verdict import verdict

class _OneTfm(Callback):
    "Apply dihedral transform `i` to the input batch"
    order = 11
    def __init__(self, i): self.i = i
    def before_batch(self): self.learn.xb = (dihedral_tfm(self.xb[0], self.i),)

def best(f, reps):
    ts, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter(); out = f(); ts.append(time.perf_counter() - t0)
    return min(ts), out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--size', type=int, default=32)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); warnings.filterwarnings('ignore')
    path = make_whales(Path(tempfile.gettempdir())/'kaggle_kit_bench_whales')
    df = pd.read_csv(path/'train.csv'); df['fold'] = np.arange(len(df)) % 5
    sample = pd.read_csv(path/'sample_submission.csv')
    dls = get_dls(df, path/'train', 0, size=a.size, bs=64, drop_classes=[NEW_WHALE], train_tfms=[A.D4()],
                  batch_tfms=[Normalize.from_stats(*imagenet_stats)])
    learn = Learner(dls, timm.create_model('test_resnet', pretrained=False, num_classes=dls.c))
    dl = get_test_dl(dls, sample, path/'test')
    with learn.no_bar():
        t_plain, _ = best(lambda: learn.get_preds(dl=dl), a.reps)
        t_one, (p_one, _) = best(lambda: tta_preds(learn, dl=dl, n=8), a.reps)
        t_multi, p_multi = best(lambda: torch.stack([learn.get_preds(dl=dl, cbs=_OneTfm(i))[0] for i in range(8)]).mean(0), a.reps)
        t_fa, _ = best(lambda: learn.tta(dl=dl, n=8), a.reps)
    print(f'{len(sample)} images at {a.size} px, test_resnet, {a.threads} thread(s), best of {a.reps}')
    print(f'{"method":28s} {"seconds":>8s} {"x tta_preds":>12s}')
    for name, t in [('get_preds (no TTA)', t_plain), ('tta_preds(n=8), one pass', t_one),
                    ('8 x get_preds', t_multi), ('fastai learn.tta(n=8)', t_fa)]:
        print(f'{name:28s} {t:8.2f} {t/t_one:12.2f}')
    diff = float((p_one - p_multi).abs().max())
    print(f'max |tta_preds - 8 x get_preds| = {diff:.2e}')
    print()
    verdict('tta_preds faster than one pass per transform', t_multi > t_one, f'{t_multi/t_one:.2f}x at {a.size} px', '> 1x')
    verdict('tta_preds gives the probabilities of one pass per transform', diff <= 1e-6, f'max abs difference {diff:.2e}', '<= 1e-6')

if __name__ == '__main__': main()
