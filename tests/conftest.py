import os, sys, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

os.environ.setdefault('WANDB_MODE', 'offline')
os.environ.setdefault('WANDB_SILENT', 'true')

def run_cli(*args, timeout=600, check=True, **kw):
    "Run the real `kaggle-kit` console script in a subprocess; returns the CompletedProcess."
    r = subprocess.run([str(BIN/'kaggle-kit'), *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode: raise AssertionError(f'kaggle-kit {" ".join(map(str,args))} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}')
    return r

@pytest.fixture(scope='module')
def whales(tmp_path_factory):
    "`make_whales` in a temporary folder and its train.csv with five round-robin folds: `(df, folder)`."
    import numpy as np, pandas as pd
    from kaggle_kit.datasets import make_whales
    data = make_whales(tmp_path_factory.mktemp('whales'))
    df = pd.read_csv(data/'train.csv'); df['fold'] = np.arange(len(df)) % 5
    return df, data
