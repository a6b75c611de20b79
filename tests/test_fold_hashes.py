"""The same ids and seed give the same folds: on every machine, and in every later version of the kit.

A run folder records its folds (`run.json`), and `check_run` refuses to continue a run whose folds changed; a Kaggler
who made folds on Colab and resumes on Kaggle, or who updates the kit between two sessions, must get the very same
folds. This file pins `add_folds` for every strategy on two tables built from integer draws only (no libm: the same
bits on any CPU), as short hashes of the fold column in id order, and also the table `nbs/02_folds.ipynb` uses (its
sizes come from a lognormal draw through libm, which may round otherwise on another CPU: when its data hash differs,
its folds are reported, not compared; when the data is the same and the folds are not, `add_folds` is at fault).

It runs in CI (pytest) and, without pytest, on another machine: `python tests/test_fold_hashes.py` prints each hash
and one VERDICT line (bench/gpu_device.sh runs it on the GPU machine, a different CPU). When a change to the folds is
intended, update `REF` from `python tests/test_fold_hashes.py --print` and say so in CHANGELOG.md: users' runs made
with the old folds cannot be continued with the new ones.
"""
import hashlib, sys, warnings
import numpy as np, pandas as pd

def _h(values) -> str: return hashlib.sha256(','.join(map(str, values)).encode()).hexdigest()[:12]

def int_table(n=3000, seed=0) -> pd.DataFrame:
    "A Kaggle-like table from integer draws only: ids without extensions, classes, groups, a regression target, tags"
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, 600)
    series = np.repeat(np.arange(600), sizes)[:n]                 # groups of 1-39 rows
    dom = rng.integers(0, 5, 600)
    species = np.where(rng.integers(0, 10, n) < 8, dom[series], rng.integers(0, 5, n))
    ind = rng.integers(0, 250, n) // rng.integers(1, 4, n)                # individuals, the low ids more frequent
    tags = [' '.join(t for t, b in zip(('water', 'cloud', 'road', 'haze'), bits) if b)
            for bits in (rng.integers(0, 4, (n, 4)) == 0)]
    enc = [f'w_{i}_{e}' for i, e in zip(ind, rng.integers(0, 3, n))]   # an individual's encounters: groups of one individual
    return pd.DataFrame(dict(id=[f'{i:06d}' for i in rng.permutation(n)], species=np.array(list('abcde'))[species],
                             series=[f's{s:03d}' for s in series], individual=[f'w_{i}' for i in ind], encounter=enc,
                             target=rng.integers(0, 10_000, n) / 100, tags=tags))

def nb02_table(n=4000, seed=0) -> pd.DataFrame:
    "The toy table of nbs/02_folds.ipynb (`toy_train`), its columns that `add_folds` splits on"
    rng = np.random.default_rng(seed)
    sizes = 1 + rng.lognormal(2, .9, n).astype(int)
    series = np.repeat(np.arange(len(sizes)), sizes)[:n]
    p = np.array([.4, .25, .15, .12, .08])
    dom = rng.choice(5, series.max()+1, p=p)
    species = np.where(rng.random(n) < .8, dom[series], rng.choice(5, n, p=p))
    df = pd.DataFrame(dict(image=[f'{i:05d}.jpg' for i in range(n)], species=np.array(list('abcde'))[species],
                           series=[f's{s:03d}' for s in series]))
    return df.sample(frac=1, random_state=seed)

CASES = {   # name: (table, add_folds keywords)
    'kfold': ('int', dict(strategy='kfold')),
    'stratified': ('int', dict(strategy='stratified', label_col='species')),
    'stratified_binned': ('int', dict(strategy='stratified', label_col='target')),
    'group': ('int', dict(strategy='group', group='series')),
    'stratified_group': ('int', dict(strategy='stratified_group', label_col='species', group='series')),
    'multilabel': ('int', dict(strategy='multilabel', label_col='tags')),
    'open_set': ('int', dict(strategy='stratified', label_col='individual', unseen=0.3)),
    'open_set_group': ('int', dict(strategy='stratified_group', label_col='individual', group='encounter', unseen=0.3)),
    'nb02_stratified_group': ('nb02', dict(strategy='stratified_group', label_col='species', group='series')),
}

REF = {   # python tests/test_fold_hashes.py --print, on CI's machine (2026-12-08: AMD EPYC, numpy 2.4.6, pandas 3.1.2, scikit-learn 1.9.1)
    'data:int': '5da166127624', 'data:nb02': '8e99f89f3a25',
    'kfold': '74fa92aedc4f', 'stratified': '93daf087bb7e', 'stratified_binned': 'c42f70405865', 'group': 'df93fdad8709',
    'stratified_group': '6a46acfcfa38', 'multilabel': 'f3892aecf257', 'open_set': 'b82567523234',
    'open_set_group': 'fad629f6be1d', 'nb02_stratified_group': 'beee4c7546aa',
}

def hashes() -> dict:
    "Hash of each table's data and of each case's folds (fold column in id order)"
    from kaggle_kit.folds import add_folds
    tables = {'int': (int_table(), 'id'), 'nb02': (nb02_table(), 'image')}
    out = {f'data:{k}': _h(df.sort_values(fn).astype(str).to_numpy().ravel()) for k, (df, fn) in tables.items()}
    for name, (t, kw) in CASES.items():
        df, fn = tables[t]
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')   # rare classes: said by add_folds, not what is pinned here
            out[name] = _h(add_folds(df, fn_col=fn, seed=42, **kw).sort_values(fn)['fold'])
    return out

LIBM = {'nb02'}   # tables drawn through libm (lognormal): their data may differ on another machine, the integer one's may not

def differences(got:dict) -> tuple:
    "(hashes that differ from REF, cases not compared because their libm-drawn table differs here)"
    moved = {t for t in LIBM if got[f'data:{t}'] != REF[f'data:{t}']}
    skip = [n for n, (t, _) in CASES.items() if t in moved]
    return [k for k in got if REF.get(k) != got[k] and k not in skip and k.removeprefix('data:') not in moved], skip

def test_fold_hashes():
    got = hashes()
    bad, skip = differences(got)
    assert not bad, (f"add_folds gives other folds than kaggle-kit's reference for the same ids and seed: "
                     f"{ {k: (REF.get(k), got[k]) for k in bad} } (expected, got). A run folder's folds must not change between "
                     "machines or versions; if intended, update REF (see the docstring)")
    if skip: print(f'not compared, their table drawn through libm differs on this machine: {skip}')

if __name__ == '__main__':
    got = hashes()
    if '--print' in sys.argv: print('REF = ' + repr(got).replace(', ', ',\n       ')); sys.exit(0)
    bad, skip = differences(got)
    for k, v in got.items(): print(f"{k:24s} {v}  {'ok' if REF.get(k) == v else f'DIFFERS (reference {REF.get(k)})'}")
    n = len(got) - len(skip)
    print(f"VERDICT add_folds gives the reference folds on this machine: {'met' if not bad else 'NOT met'} "
          f"({n - len(bad)} of {n} hashes equal{'; differ: ' + ', '.join(bad) if bad else ''}"
          f"{'; not compared (libm data differs): ' + ', '.join(skip) if skip else ''} vs all equal)")
    sys.exit(1 if bad else 0)
