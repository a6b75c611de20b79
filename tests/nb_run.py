"""Run a notebook the way Jupyter's "Run all" does: every code cell in order, in a real kernel (nbclient), stopping at
the first error. Helper of tests/test_tutorials.py."""
import os, time, threading
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

def never_runs(cell) -> bool:
    "A `#| eval: false` cell (the install command): nbdev-test skips it, and so do we. Jupyter runs every other cell."
    return any(l.replace(' ', '').lower() == '#|eval:false' for l in cell.source.splitlines())

def kernel_env(env=None) -> dict:
    "This process's environment for the kernel, without session budgets or nbdev-test's IN_TEST, plus `env`."
    res = {k: v for k, v in os.environ.items() if not k.startswith('KAGGLE_KIT_SESSION') and k != 'IN_TEST'}
    res.update(WANDB_MODE='offline', WANDB_SILENT='true', OMP_NUM_THREADS='1')
    return {**res, **(env or {})}

def run_all(path, cwd, env=None, watch=None, timeout=900):
    """Execute the notebook at `path` in a fresh `python3` kernel started in `cwd`, with `env` added to its environment.
    `watch(pid, stop, t0)` runs in a thread meanwhile: the kernel's pid, an Event set when the run ends, and the
    time the kernel was started. Returns `(nb, err, t0)`: the executed notebook, and None, the `CellExecutionError`
    of the cell that failed, or the `DeadKernelError` of a killed kernel."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name='python3', timeout=timeout, resources={'metadata': {'path': str(cwd)}})
    client.reset_execution_trackers()
    err, stop, t0 = None, threading.Event(), time.time()
    with client.setup_kernel(env=kernel_env(env)):
        th = threading.Thread(target=watch, args=(client.km.provisioner.process.pid, stop, t0), daemon=True) if watch else None
        if th: th.start()
        try:
            for i, cell in enumerate(nb.cells):
                if cell.cell_type == 'code' and not never_runs(cell): client.execute_cell(cell, i)
        except (CellExecutionError, DeadKernelError) as e: err = e
        finally:
            stop.set()
            if th: th.join()
    return nb, err, t0

def cell_text(cell) -> str:
    "Everything a cell showed: streams, results and the error's rendering (what the user sees under the cell)."
    parts = []
    for o in cell.get('outputs', []):
        if o.output_type == 'stream': parts.append(o.text)
        elif o.output_type == 'error': parts += [*o.traceback, o.ename, o.evalue]
        elif 'data' in o: parts.append(str(o.data.get('text/plain', '')))
    return '\n'.join(parts)

def failed_cells(nb) -> list:
    "The code cells with an error output."
    return [c for c in nb.cells if c.cell_type == 'code' and any(o.output_type == 'error' for o in c.get('outputs', []))]
