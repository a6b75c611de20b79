"""Fold size spread and class balance: `EvenStratifiedGroupKFold` (kaggle_kit.folds) vs scikit-learn's `StratifiedGroupKFold`.

For synthetic tables with groups of skewed sizes (lognormal) and labels correlated with groups, over 5 seeds, prints
per splitter: the fold size spread (largest minus smallest fold, in rows; mean and worst over seeds), the largest
group, the largest |class share in a fold - share in the whole| (mean over seeds) and the time per split.
Every split is also checked: no group in two folds, spread <= largest group.

Goals (the claims of `nbs/02_folds.ipynb`), one `VERDICT` line each at the end, over every scenario:
- bound: spread <= the largest group, on every split;
- even sizes: mean spread no larger than scikit-learn's (`shuffle=True`), in every scenario;
- class balance: class shares within two percentage points of the whole (largest deviation, mean over seeds <= 0.02),
  in every scenario; scikit-learn's deviation in the worst scenario is printed beside it.

Reproduce: .venv/bin/python bench/folds.py
"""
import time, warnings
import numpy as np, pandas as pd
from sklearn.model_selection import StratifiedGroupKFold
from kaggle_kit.folds import EvenStratifiedGroupKFold
from verdict import verdict

def table(n_groups, n_classes, sigma, purity, seed, n_rows=None):
    "Groups with lognormal sizes; each group has a main class that `purity` of its rows carry"
    rng = np.random.default_rng(seed)
    sizes = 1 + rng.lognormal(2.5, sigma, n_groups).astype(int)
    p = rng.dirichlet(np.ones(n_classes)*.7)
    g = np.repeat(np.arange(n_groups), sizes)
    if n_rows: g = np.sort(rng.choice(g, n_rows, replace=False))
    y = np.where(rng.random(len(g)) < purity, rng.choice(n_classes, n_groups, p=p)[g], rng.choice(n_classes, len(g), p=p))
    return g, y

def evaluate(cv, g, y):
    f, t = np.full(len(y), -1), time.perf_counter()
    for i, (_, val) in enumerate(cv.split(np.zeros(len(y)), y, g)): f[val] = i
    dt = time.perf_counter() - t
    assert pd.Series(f).groupby(g).nunique().max() == 1
    ct = pd.crosstab(f, y); n = ct.sum(axis=1)
    dev = (ct.div(n, axis=0) - ct.sum()/n.sum()).abs().to_numpy().max()
    return n.max() - n.min(), dev, dt

scenarios = {  # name: (table kwargs, n_folds)
    'toy-like: 300 groups, 5 classes, 80% pure':     (dict(n_groups=300, n_classes=5, sigma=.9, purity=.8), 5),
    'art_series-like: 3937 rows, 3 folds, pure':     (dict(n_groups=250, n_classes=8, sigma=1., purity=1., n_rows=3937), 3),
    '200 groups, 10 classes, 90% pure':              (dict(n_groups=200, n_classes=10, sigma=1., purity=.9), 5),
    '500 groups, 30 classes, 70% pure':              (dict(n_groups=500, n_classes=30, sigma=.8, purity=.7), 5),
    '1000 groups, 50 classes, pure':                 (dict(n_groups=1000, n_classes=50, sigma=1., purity=1.), 5),
    '60 groups, 5 classes, pure (giant groups)':     (dict(n_groups=60, n_classes=5, sigma=1.2, purity=1.), 5),
}
def main(names=None, # scenarios to run (keys of `scenarios`); None: all
         seeds:int=5, # seeds per scenario
        ):
    warnings.simplefilter('ignore')
    print(f"{'scenario':45s} {'rows':>6s} {'maxgrp':>6s} | {'spread mean/worst':>18s} {'sk spread':>12s} {'sk(noshuf)':>11s} | "
          f"{'dev':>6s} {'sk dev':>6s} {'sk(ns)':>6s} | {'ms':>5s} {'sk ms':>5s}")
    bound, summary = [], {}
    for name, (kw, k) in scenarios.items():
        if names is not None and name not in names: continue
        res = {'even': [], 'sk': [], 'skns': []}; rows = maxg = 0
        for seed in range(seeds):
            g, y = table(seed=seed, **kw); rows += len(g)/seeds; maxg = max(maxg, np.bincount(g).max())
            res['even'].append(evaluate(EvenStratifiedGroupKFold(k, random_state=seed), g, y))
            res['sk'].append(evaluate(StratifiedGroupKFold(k, shuffle=True, random_state=seed), g, y))
            res['skns'].append(evaluate(StratifiedGroupKFold(k), g, y))
            assert res['even'][-1][0] <= np.bincount(g).max()
            bound.append((res['even'][-1][0] / np.bincount(g).max(), name))
        m = {kk: np.array(v) for kk, v in res.items()}
        summary[name] = dict(spread=m['even'][:, 0].mean(), sk_spread=m['sk'][:, 0].mean(),
                             dev=m['even'][:, 1].mean(), sk_dev=m['sk'][:, 1].mean())
        sp = lambda a: f"{a[:, 0].mean():6.1f}/{a[:, 0].max():4.0f}"
        print(f"{name:45s} {rows:6.0f} {maxg:6d} | {sp(m['even']):>18s} {sp(m['sk']):>12s} {sp(m['skns']):>11s} | "
              f"{m['even'][:, 1].mean():.4f} {m['sk'][:, 1].mean():.4f} {m['skns'][:, 1].mean():.4f} | "
              f"{1e3*m['even'][:, 2].mean():5.0f} {1e3*m['sk'][:, 2].mean():5.0f}")
    print()
    r, name = max(bound)
    verdict('spread <= largest group, every split', r <= 1, f'worst spread/largest group {r:.2f}, {name!r}', '<= 1')
    name = max(summary, key=lambda n: summary[n]['spread'] - summary[n]['sk_spread'])
    o = summary[name]
    verdict("mean spread <= scikit-learn's, every scenario", o['spread'] <= o['sk_spread'],
            f"closest: {o['spread']:.1f} rows where scikit-learn's is {o['sk_spread']:.1f}, {name!r}", "<= scikit-learn's")
    name = max(summary, key=lambda n: summary[n]['dev'])
    o, n_over = summary[name], sum(v['dev'] > 0.02 for v in summary.values())
    verdict('class shares within 0.02 of the whole, every scenario', n_over == 0,
            f"worst {o['dev']:.4f} (scikit-learn {o['sk_dev']:.4f}) in {name!r}; {n_over} of {len(summary)} scenarios above", '<= 0.02')

if __name__ == '__main__': main()
