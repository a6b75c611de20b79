"""Per-item deterministic augmentation across worker processes (`kaggle_kit.data.SeededDL`).

The notebook `nbs/06_data.ipynb` checks the rules with `num_workers=0`; these tests start real worker processes.
Run: `.venv/bin/python -m pytest tests/test_data_workers.py -q`
"""
import random
import numpy as np, pandas as pd, pytest, torch
from fastai.vision.all import FlipItem, Transform, aug_transforms
from kaggle_kit.data import get_dls, SeededDL
from kaggle_kit.augment import default_train_tfms
from kaggle_kit.datasets import make_whales
from kaggle_kit.data import NEW_WHALE


class NumpyJitter(Transform):
    "An item transform that draws from NumPy's global generator (as many third-party transforms do)."
    order = 6
    def encodes(self, x: torch.Tensor):
        return x if x.ndim != 3 else x + torch.from_numpy(np.random.randint(0, 3, size=x.shape[-2:], dtype=np.uint8))


@pytest.fixture(scope='module')
def df_path(tmp_path_factory):
    path = make_whales(tmp_path_factory.mktemp('whales'))
    df = pd.read_csv(path/'train.csv').iloc[:240].copy()
    df['fold'] = np.arange(len(df)) % 4
    return df, path/'train'


def _dls(df, folder, num_workers, **kwargs):
    return get_dls(df, folder, 0, size=40, bs=16, num_workers=num_workers, seed=7, resize_method='crop',
                   train_tfms=default_train_tfms(vflip=True), item_tfms=[FlipItem(0.5), NumpyJitter()],
                   drop_classes=[NEW_WHALE], oversample=30, device='cpu', **kwargs)


def _passes(dl, n):
    return [[(x.clone(), y.clone()) for x, y in dl] for _ in range(n)]


def _same(a, b):
    assert len(a) == len(b)
    for (x0, y0), (x1, y1) in zip(a, b):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)


def test_workers_do_not_change_batches(df_path):
    "Two epochs of augmented training batches are identical with 0 and 2 workers."
    df, folder = df_path
    ref = _passes(_dls(df, folder, 0).train, 2)
    got = _passes(_dls(df, folder, 2).train, 2)
    for a, b in zip(ref, got): _same(a, b)
    assert not torch.equal(ref[0][0][0], ref[1][0][0])          # the two epochs differ


def test_valid_and_one_worker(df_path):
    "Validation batches (with new_whale targets at -100) and a single worker agree with the in-process loader."
    df, folder = df_path
    d0, d1 = _dls(df, folder, 0), _dls(df, folder, 1)
    _same(list(d0.valid), list(d1.valid))
    assert (torch.cat([y for _, y in d0.valid]) == -100).any()
    _same(list(d0.train), list(d1.train))


def test_skip_with_workers(df_path):
    "A pass resumed at batch 3 in 2 workers is exactly the tail of the full pass, and the epoch advances."
    df, folder = df_path
    full = _passes(_dls(df, folder, 0).train, 1)[0]
    dl = _dls(df, folder, 2).train
    dl.skip = 3
    tail = _passes(dl, 1)[0]
    assert len(tail) == len(full) - 3 and len(dl) == len(full)
    _same(full[3:], tail)
    assert (dl.epoch, dl.skip) == (1, 0)


def test_set_epoch_with_workers(df_path):
    "`set_epoch` replays an epoch in worker processes, after other passes ran."
    df, folder = df_path
    ref = _passes(_dls(df, folder, 0).train, 2)[1]
    dl = _dls(df, folder, 2).train
    _passes(dl, 2)
    dl.set_epoch(1)
    _same(ref, _passes(dl, 1)[0])


def test_main_process_streams_untouched_with_batch_tfms(df_path):
    "With fastai batch transforms, Python's and NumPy's global states are unchanged by a pass with 0 workers."
    df, folder = df_path
    dls = _dls(df, folder, 0, batch_tfms=aug_transforms(size=40))
    random.seed(5); np.random.seed(5)
    a = random.random(), np.random.rand()
    random.seed(5); np.random.seed(5)
    for _ in dls.train: pass
    assert (random.random(), np.random.rand()) == a


def test_persistent_workers_refused(df_path):
    df, folder = df_path
    with pytest.raises(ValueError, match='persistent_workers'): _dls(df, folder, 2, persistent_workers=True)
