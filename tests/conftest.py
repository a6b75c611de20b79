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
