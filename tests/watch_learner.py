"""The Learner factory `kaggle-kit watch --learner tests/watch_learner.py:make` uses in tests/test_watch.py: the same
fold, data and model as tests/train_resumable.py trains (the embedded whales in $KK_WATCH_DATA)."""
import os
from pathlib import Path
import numpy as np, pandas as pd
from kaggle_kit.datasets import whale_learner

def make():
    data = Path(os.environ['KK_WATCH_DATA'])
    df = pd.read_csv(data/'train.csv'); df['fold'] = np.arange(len(df)) % 5
    return whale_learner(df, data, fold=0, size=24, bs=32, seed=0, dls_kwargs=dict(device='cpu'))
