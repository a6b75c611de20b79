"""Run the notebooks in a kernel, as nbdev-test runs them, and keep their outputs: one run tests and documents them.

    python docs/execute.py [NOTEBOOK...]           # run, and write the outputs back (`python3 dev.py docs` runs this)
    python docs/execute.py --check [NOTEBOOK...]   # run, and fail where a stored output differs (`python3 dev.py test`)
    python docs/execute.py --run-only [NOTEBOOK...]  # run, and fail only where a cell raises (as nbdev-test)

With no NOTEBOOK: every notebook nbdev-test would run (nbs/ and nbs/tutorials/). Each runs in a fresh ipykernel
(nbclient) in the notebook's folder, two at a time (`--n-workers`), with nbdev-test's choice of cells: a cell marked
`#| eval: false`, or with a `tst_flags` flag (`notest`, `slow`), is not run and keeps no output; a cell that raises,
or runs longer than `cell_timeout` (600 s), fails the notebook. The tutorials' `working` folders are removed first,
so they train afresh. The kernels are forked from a server that has imported torch and the like once (`serve`):
nbdev-test pays for those imports once per worker, and a kernel started afresh would pay for them every time. The kernel is set up for repeatable runs (`kernel_env`, `_SETUP`): IN_TEST=1 (as nbdev-test
sets it), one torch thread (`OMP_NUM_THREADS=1`, as CI runs the tests), a fixed hash seed, Python's, NumPy's and
torch's generators seeded before the first cell, no tqdm bars, a fresh IPython profile; warnings print as
`Category: message` (no file path, no line number), figures are PNG without matplotlib's version stamp.

What a run shows is then scrubbed of what still differs between runs and machines (`scrub_outputs`): stdout and
stderr merged per stretch (their interleaving is a matter of timing), `\r` redraws and progress bars, this machine's
paths (`placeholders`: the repository, site-packages, temporary folders, the home folder, a local server's port),
fastai's `time` column, and the few values a notebook prints that depend on the clock (`SCRUBS`). Last, nbdev's own
`clean_nb` and writer give the notebook the form nbdev-clean leaves (no execution counts, no metadata noise, memory
addresses out of reprs), so a written notebook goes through `python3 dev.py sync` unchanged.

`--check` compares the result with the stored notebook, byte for byte, and for each notebook that differs names the
first cell whose outputs differ, with a short diff (or the cell that raised). Outputs depend on the code and on the
installed packages: a new torch, fastai or matplotlib may change numbers or figures; then `python3 dev.py docs` runs
the notebooks again, and the new outputs are committed with the change.
"""
import argparse, difflib, functools, json, os, re, shutil, subprocess, sys, tempfile, time
from contextlib import contextmanager
from hashlib import sha1
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# -- the kernel --------------------------------------------------------------------------------------------------

def kernel_env(ipython_dir:str)->dict:
    "The kernel's environment: this one, plus what makes a run repeatable and quiet"
    env = {**os.environ,
           'IN_TEST': '1',                # as nbdev-test sets it
           'OMP_NUM_THREADS': '1',        # torch's results are bit-identical run to run for a given thread count
           'PYTHONHASHSEED': '0',         # the order of sets of strings
           'TQDM_DISABLE': '1',           # download bars: redraws and timings
           'WANDB_MODE': os.environ.get('WANDB_MODE', 'offline'), 'WANDB_SILENT': 'true',
           'MPLBACKEND': 'module://matplotlib_inline.backend_inline',   # figures are outputs, whatever the shell sets
           'IPYTHONDIR': ipython_dir,     # no user profile, startup files or shared history database
           # nbdev-test puts the repository on sys.path (its `basepath`)
           'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
    for k in ('JPY_PARENT_PID', 'COLUMNS', 'LINES', 'FORCE_COLOR', 'CLICOLOR_FORCE'): env.pop(k, None)
    for k in [k for k in env if k.startswith('KAGGLE_KIT_SESSION')]: del env[k]   # a budget of this shell's, not the docs'
    return env

# run in the kernel before the notebook's cells, leaving no output
_SETUP = '''
import warnings as _w
# `UserWarning: message`: a warning's file path and line number change with the machine and with every edit above it
_w.formatwarning = lambda message, category, filename, lineno, line=None: f'{category.__name__}: {message}\\n'
# noise of this environment, not of the notebooks: torch's own deprecation of the `torch.jit.script` fastai calls when
# imported, and tqdm.auto's complaint that ipywidgets is not installed
_w.filterwarnings('ignore', message=r'`torch\\.jit\\.script` is deprecated')
_w.filterwarnings('ignore', message=r'IProgress not found')
# PNG figures without the "Software: Matplotlib version ..." stamp: a new matplotlib that draws the same figure
# stores the same bytes
from matplotlib_inline.config import InlineBackend as _IB
_IB.instance(parent=get_ipython()).print_figure_kwargs = {'bbox_inches': 'tight', 'metadata': {'Software': None}}
# the same random numbers on every run for a notebook that draws some before (or without) seeding
import random as _r, numpy as _np, torch as _t
_r.seed(0); _np.random.seed(0); _t.manual_seed(0)
del _w, _IB, _r, _np, _t
'''

# -- kernels forked from a process that imported the heavy packages once ---------------------------------------

# Imported once, by the fork server, instead of by each kernel: torch and its company take most of a kernel's start
# (6 of its 7 seconds), a cost nbdev-test pays once per worker. Only packages that leave `_IPYTHON_AWARE` alone:
# those decide how they display when imported (pandas its width, fastai's progress bars HTML or text, pyplot its
# backend), so each kernel imports them itself, as a kernel started afresh does. (timm imports tqdm.auto, which picks
# its notebook or console bar when imported: with TQDM_DISABLE neither shows.)
PRELOAD = ('numpy', 'scipy', 'PIL', 'cv2', 'matplotlib', 'torch', 'torchvision', 'timm', 'albumentations', 'wandb')
_IPYTHON_AWARE = ('IPython', 'pandas', 'sklearn', 'fastcore', 'fastprogress', 'fastai', 'matplotlib.pyplot')

def serve(sock:str):
    """The fork server (`--fork-server SOCK`): import `PRELOAD`, then fork a kernel for each launcher that connects to
    the Unix socket `sock`. A launcher sends one line of JSON (the kernel's arguments, folder and environment) and
    reads the kernel's pid, then its exit code; when the launcher goes (jupyter_client kills it), its kernel goes."""
    import importlib, select, signal, socket
    parent = os.getppid()   # this run's main process: when it is gone, so is this server, and its kernels with it
    if sys.path and sys.path[0] == str(Path(__file__).parent): del sys.path[0]   # not a kernel's: docs/ was __main__'s
    for m in PRELOAD:
        try: importlib.import_module(m)
        except ImportError: pass
    if aware := [m for m in _IPYTHON_AWARE if m in sys.modules]:   # a new version of a package in PRELOAD imports one
        sys.exit(f'docs/execute.py: importing PRELOAD imports {", ".join(aware)}: kernels start afresh instead (slower); '
                 f'take the package that imports it out of PRELOAD')
    srv = socket.socket(socket.AF_UNIX); srv.bind(sock); srv.listen(8)
    kernels = {}   # launcher's connection: its kernel's pid
    while os.getppid() == parent:
        for s in select.select([srv, *kernels], [], [], 0.2)[0]:
            if s is srv:
                conn = srv.accept()[0]
                req = json.loads(conn.makefile('rb').readline())
                if not (pid := os.fork()):
                    srv.close(); conn.close()
                    for c in kernels: c.close()
                    _be_kernel(**req)
                kernels[conn] = pid; conn.sendall(b'%d\n' % pid)
            elif not s.recv(64):
                os.kill(kernels.pop(s), signal.SIGKILL); s.close()
        while True:   # kernels that ended: their launchers exit with their exit codes
            try: pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError: break
            if not pid: break
            for c in [c for c, p in kernels.items() if p == pid]:
                try: c.sendall(b'%d\n' % os.waitstatus_to_exitcode(status))
                except OSError: pass
                del kernels[c]; c.close()

def _be_kernel(argv:list, cwd:str, env:dict):
    "In the fork server's child: the kernel jupyter_client asked for, as `python -m ipykernel_launcher ARGV` is"
    import signal, traceback
    code = 0
    try:
        os.setsid()
        try: import ctypes; ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG: it ends with the server
        except Exception: pass
        os.chdir(cwd); os.environ.clear(); os.environ.update(env)
        sys.argv = ['ipykernel_launcher', *argv]
        from ipykernel import kernelapp
        kernelapp.launch_new_instance(argv=argv)
    except BaseException: traceback.print_exc(); code = 1
    finally:
        sys.stdout.flush(); sys.stderr.flush(); os._exit(code)

def launch(sock:str, argv:list):
    "The kernel as jupyter_client starts it (`--launch SOCK ARGV`): one from the fork server, passed its signals"
    import signal, socket
    s = socket.socket(socket.AF_UNIX)
    for _ in range(1200):   # the server takes a few seconds to import `PRELOAD`
        try: s.connect(sock); break
        except (FileNotFoundError, ConnectionRefusedError): time.sleep(0.1)
    else: sys.exit(f'no fork server at {sock}')
    s.sendall(json.dumps({'argv': argv, 'cwd': os.getcwd(), 'env': dict(os.environ)}).encode() + b'\n')
    f = s.makefile('rb')
    pid = int(f.readline())
    def forward(signum, _):
        try: os.kill(pid, signum)
        except ProcessLookupError: pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(sig, forward)
    code = f.readline().strip()
    sys.exit(int(code) if code else 1)

@contextmanager
def fork_server():
    "A fork server for the kernels of this run: yields its socket's path, or None if it did not start"
    with tempfile.TemporaryDirectory(prefix='kk-fork-') as d:
        sock = f'{d}/sock'
        p = subprocess.Popen([sys.executable, __file__, '--fork-server', sock], env=kernel_env(f'{d}/ipython'))
        try:
            while not os.path.exists(sock) and p.poll() is None: time.sleep(0.1)
            yield sock if p.poll() is None else None   # None: kernels start afresh, with the same outputs
        finally: p.kill(); p.wait()

@functools.cache
def _forked_kernel_manager():
    "jupyter_client's kernel manager, starting `launch` (a forked kernel) instead of `python -m ipykernel_launcher`"
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Unicode
    class ForkedKernelManager(AsyncKernelManager):
        server = Unicode(config=True, help='the fork server\'s socket')
        def format_kernel_cmd(self, extra_arguments=None):
            return [sys.executable, __file__, '--launch', self.server, '-f', os.path.realpath(self.connection_file)]
    return ForkedKernelManager

def cells_to_run(path:Path)->set:
    "Ids of the cells nbdev-test runs in `path`: nbdev's own `nb_test_cells`, with the `tst_flags` of pyproject.toml"
    from nbdev.config import get_config
    from nbdev.test import nb_test_cells
    flags = get_config().tst_flags
    return {c.id for c in nb_test_cells(path, skip_flags=flags.split() if isinstance(flags, str) else flags)}

class CellError(Exception):
    "A cell that raised, timed out or killed its kernel"
    def __init__(self, cell_id, msg): super().__init__(f'cell {cell_id}: {msg}'); self.cell_id = cell_id

def run_nb(path:Path, timeout:int=None, server:str=None):
    """Execute the notebook at `path` in a fresh kernel in its folder, forked from the fork `server` (a socket) if
    given; the notebook (nbformat) with its raw outputs"""
    import nbformat
    from nbclient import NotebookClient
    from nbdev.config import get_config
    from traitlets.config import Config
    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    run, timeout = cells_to_run(path), timeout or get_config().cell_timeout or None
    with tempfile.TemporaryDirectory(prefix='kk-kernel-') as tmp:
        cfg = Config()   # Unix sockets in `tmp`: no TCP port that another kernel, or a notebook's server, takes first
        cfg.KernelManager.transport, cfg.KernelManager.ip = 'ipc', f'{tmp}/ipc'
        kw = {}
        if server: kw['kernel_manager_class'], cfg.ForkedKernelManager.server = _forked_kernel_manager(), server
        client = NotebookClient(nb, timeout=timeout, kernel_name='python3', allow_errors=False, record_timing=False,
                                shutdown_kernel='immediate', config=cfg,
                                resources={'metadata': {'path': str(path.parent)}}, **kw)
        with client.setup_kernel(env=kernel_env(f'{tmp}/ipython')):
            # a cell of the notebook's own: nbclient stores a cell it ran at its index
            nb.cells.insert(0, setup := nbformat.v4.new_code_cell(_SETUP))
            try: _run_cells(client, nb, run, timeout)
            finally: nb.cells.remove(setup)
    return nb

def _run_cells(client, nb, run:set, timeout):
    "Run `nb`'s first cell (the setup), then the cells whose ids are in `run`; the others' outputs are cleared"
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    client.execute_cell(nb.cells[0], 0, store_history=False)
    if nb.cells[0].outputs: raise CellError('(setup)', json.dumps(nb.cells[0].outputs)[:2000])
    for i, cell in enumerate(nb.cells[1:], 1):
        if cell.cell_type != 'code': continue
        if cell.id not in run: cell.outputs = []; continue
        try: client.execute_cell(cell, i)
        except CellExecutionError as e: raise CellError(cell.id, _strip_ansi(str(e))[-4000:]) from None
        except CellTimeoutError: raise CellError(cell.id, f'timed out after {timeout}s') from None
        except DeadKernelError as e: raise CellError(cell.id, f'the kernel died: {e}') from None

_re_ansi = re.compile(r'\x1b\[[0-9;]*[a-zA-Z]')
def _strip_ansi(s): return _re_ansi.sub('', s)

# -- scrubbing ---------------------------------------------------------------------------------------------------

def placeholders()->list:
    "(regex, replacement) for the paths of this machine, most specific first"
    import sysconfig
    tmps = dict.fromkeys([tempfile.gettempdir(), os.path.realpath(tempfile.gettempdir())])
    home = str(Path.home())
    res = [(re.escape(sysconfig.get_paths()['purelib']), '/path/to/site-packages'),
           (re.escape(str(ROOT)), '/path/to/kaggle-kit'),
           (r'\b(https?://(?:127\.0\.0\.1|localhost)):\d+\b', r'\1:PORT')]   # a local server's free port
    for t in tmps:   # `tempfile`'s names: "tmp" and 8 random characters
        res += [(re.escape(t) + r'/tmp[a-z0-9_]{8}(?![\w.-])', '/tmp/tmpXXXXXXXX'), (re.escape(t) + r'(?=/)', '/tmp')]
    if home not in ('', '/'): res.append((re.escape(home) + r'(?![\w.-])', '~'))
    return [(re.compile(p), r) for p, r in res]

_STOPPED = {'5858ce40', '498b3f0b', '0a0f1eaf'}   # 16_checkpoint's cells that stop on a wall-clock limit, and resume
_WHALE_STOP = {'41d62d0c', '95f3f991', '2d68346d'}   # the whale tutorial's: the stop, its status.json, the resume

# What a notebook prints that changes from run to run, each a narrow pattern: (notebook, cell ids or None for all of
# its cells, regex, replacement)
SCRUBS = [
    # timings printed on purpose: how long the datasets take to make, the CLI's summary
    ('24_datasets.ipynb', None, r'\b(built|rendered) in \d+\.\ds', r'\1 in …s'),
    ('24_datasets.ipynb', None, r'\(\d+ ms an image\)', '(… ms an image)'),
    ('27_cli.ipynb', None, r'\b(\d+ fold\(s\)), \d+\.\d min\b', r'\1, … min'),
    # a run's status.json: when it was written, and the W&B run's random id
    ('whale.ipynb', None, r"'time': \d+\.\d+,", "'time': …,"),
    ('whale.ipynb', None, r"'wandb': '[a-z0-9]{8}'", "'wandb': '…'"),
    # session clocks set from measured times (a quarter of a fold's training; this process's start): their readings
    ('whale.ipynb', None, r'\b(elapsed|remaining)=\d+\.\d+ h\b', r'\1=… h'),
    # the tutorial's session limit, a quarter of fold 0's time after fold 1 starts: where fold 1 stops depends on how
    # fast each batch ran (under load, the other notebook's): the stop's position, the checkpoint's name, the slack,
    # and the progress tables of the stopped and the resumed fit, whose rows are the epochs each ran (the next cell
    # shows the recorder's values of all four)
    ('whale.ipynb', _WHALE_STOP, r'epoch \d+/(\d+), batch \d+/(\d+)', r'epoch …/\1, batch …/\2'),
    ('whale.ipynb', _WHALE_STOP, r'ckpt-(\d\d)-\d{4}-\d{6}\.pth', r'ckpt-\1-….pth'),
    ('whale.ipynb', {'41d62d0c'}, r'\d+\.\d min before the limit', '… min before the limit'),
    ('whale.ipynb', {'41d62d0c', '2d68346d'}, r'(?s)<table class="fastprogress">.*?</table>', ''),
    # a session limit on the wall clock: the batch training stops at depends on the machine's speed
    ('16_checkpoint.ipynb', _STOPPED, r'epoch \d+/(\d+), batch \d+/(\d+)', r'epoch …/\1, batch …/\2'),
    ('16_checkpoint.ipynb', _STOPPED, r'ckpt-(\d\d)-\d{4}-\d{6}\.pth', r'ckpt-\1-….pth'),
    ('16_checkpoint.ipynb', {'5858ce40'}, r'\d+\.\d min before the limit', '… min before the limit'),
]

_re_bs = re.compile(r'[^\n]\x08')                 # a character taken back by a backspace
_re_cr = re.compile(r'^.*\r(?=[^\n])', re.M)       # a line redrawn after a carriage return: its last state stays
_re_bar = re.compile(r'^.*\d+%\|.*\|.*\[\d+:\d+.*\]\s*$\n?', re.M)   # tqdm's last state, should one still print
_re_progress = re.compile(r'(<div>\s*)?<progress\b[^>]*>\s*</progress>[^<]*(\s*</div>)?')   # fastprogress's bars
_re_style = re.compile(r'<style\b[^>]*>.*?</style>', re.S)
# fastai's recorder: a table whose last column is `time`
_re_time_table = re.compile(r'<table[^>]*>(?:(?!</table>).)*?<th>time</th>\s*</tr>.*?</table>', re.S)
_re_time_cell = re.compile(r'(<td>\s*)(?:\d+:)?\d\d:\d\d(\s*</td>\s*</tr>)')
_re_time_row = re.compile(r"^(\[\d+, .*, )'(?:\d+:)?\d\d:\d\d'\]$", re.M)   # `[epoch, losses..., metrics..., 'mm:ss']`

def _terminal(text:str)->str:
    "Stream text as a terminal leaves it: backspaces and carriage returns applied, progress bars gone"
    while (new := _re_bs.sub('', text)) != text: text = new
    return _re_bar.sub('', _re_cr.sub('', text).replace('\r\n', '\n').replace('\r', ''))

def _blank_html(html:str)->bool:
    "Nothing to see: no text, table or image once styles, tags and code fences are gone"
    return not re.sub(r'```\w*|<[^>]+>|\s', '', _re_style.sub('', html)) and not re.search(r'<(img|svg|table)\b', html)

def scrub_text(text:str, rules:list)->str:
    "Machine paths as placeholders, fastprogress bars out, fastai's recorder times as `--:--`, the listed timings"
    for p, r in rules: text = p.sub(r, text)
    text = _re_progress.sub('', text)
    text = _re_time_table.sub(lambda m: _re_time_cell.sub(r'\1--:--\2', m[0]), text)
    text = _re_time_row.sub(r"\1'--:--']", text)   # fastprogress without HTML prints each epoch's row as a list
    return re.sub(r'Total time: (?:\d+:)?\d\d:\d\d', 'Total time: --:--', text)

def scrub_outputs(outputs:list, rules:list)->list:
    "A cell's outputs as they document it: the same on every run and machine"
    outs = []
    for o in outputs:
        if o['output_type'] != 'stream':
            o = dict(o, metadata={})
            if 'execution_count' in o: o['execution_count'] = None
            if 'data' in o:
                o['data'] = {k: scrub_text(v, rules) if k.startswith('text/') and isinstance(v, str) else v
                             for k, v in o['data'].items()}
                if 'text/html' in o['data'] and _blank_html(o['data']['text/html']): continue   # a progress bar, gone
        outs.append(o)
    res, run = [], []   # `run`: consecutive stream outputs, whose stdout/stderr interleaving is a matter of timing
    for o in outs + [None]:
        if o is not None and o['output_type'] == 'stream': run.append(o); continue
        for name in ('stdout', 'stderr'):
            text = scrub_text(_terminal(''.join(s['text'] for s in run if s['name'] == name)), rules)
            if text.strip(): res.append({'output_type': 'stream', 'name': name, 'text': text})
        run.clear()
        if o is not None: res.append(o)
    return res

def canonical(nb, name:str)->str:
    "The executed notebook `nb` scrubbed, as nbdev-clean writes it (the text of its file)"
    from fastcore.nbio import nb2str
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    rules = placeholders()
    nb = json.loads(json.dumps(nb))
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        own = [(re.compile(p, re.M), r) for n, ids, p, r in SCRUBS if n == name and (ids is None or c['id'] in ids)]
        c['outputs'] = scrub_outputs(c.get('outputs', []), rules + own)
    cfg = get_config()
    clean_nb(nb, clear_all=False, allowed_metadata_keys=cfg.get('allowed_metadata_keys') or [],
             allowed_cell_metadata_keys=cfg.get('allowed_cell_metadata_keys') or [], clean_ids=cfg.clean_ids,
             allowed_out_metadata_keys=cfg.get('allowed_out_metadata_keys') or [], repair=False)
    return nb2str(nb)

# -- comparing ---------------------------------------------------------------------------------------------------

def _lines(outputs:list)->list:
    "Outputs as lines for a diff: text as it is, images by size"
    res = []
    for i, o in enumerate(outputs):
        res.append(f'({i}: {o["output_type"]})')
        if o['output_type'] == 'stream': res += [f'[{o["name"]}] {l}' for l in ''.join(o['text']).splitlines()]
        for k, v in o.get('data', {}).items():
            v = ''.join(v)
            if k.startswith('image/'): res.append(f'[{k}] {len(v)} base64 characters, sha1 {sha1(v.encode()).hexdigest():.8}')
            else: res += [f'[{k}] {l}' for l in v.splitlines()]
    return res

def first_difference(stored:str, fresh:str)->str:
    "Where the stored notebook and a fresh run first differ: the cell id and a short diff of its outputs"
    a, b = json.loads(stored), json.loads(fresh)
    ids_a, ids_b = [c.get('id') for c in a['cells']], [c.get('id') for c in b['cells']]
    if ids_a != ids_b: return 'the cells differ (the notebook changed while it ran?)'
    for ca, cb in zip(a['cells'], b['cells']):
        if ca.get('outputs', []) == cb.get('outputs', []): continue
        diff = list(difflib.unified_diff(_lines(ca.get('outputs', [])), _lines(cb.get('outputs', [])), 'stored',
                                         'this run', n=1, lineterm=''))
        more = f'\n    ... {len(diff) - 30} more diff lines' if len(diff) > 30 else ''
        return f'cell {ca["id"]} outputs differ:\n    ' + '\n    '.join(l[:200] for l in diff[:30]) + more
    return 'the notebook differs outside the cell outputs (metadata, format): run `python3 dev.py sync`'

# -- the command -------------------------------------------------------------------------------------------------

def process(path:str, mode:str, server:str=None):
    "Run the notebook at `path`; `mode` 'write' its outputs, 'check' them, or only 'run' it. (path, error or None, seconds, changed)"
    t0, path = time.time(), Path(path)
    stored = path.read_text(encoding='utf-8')
    try: fresh = canonical(run_nb(path, server=server), path.name)
    except CellError as e: return str(path), str(e), time.time() - t0, False
    except Exception as e: return str(path), f'{type(e).__name__}: {e}', time.time() - t0, False   # no kernel started
    if mode == 'run': return str(path), None, time.time() - t0, False
    if mode == 'check': return str(path), None if fresh == stored else first_difference(stored, fresh), time.time() - t0, False
    if fresh == stored: return str(path), None, time.time() - t0, False
    if path.read_text(encoding='utf-8') != stored: return str(path), 'edited as it ran: not written', time.time() - t0, False
    path.write_text(fresh, encoding='utf-8')
    return str(path), None, time.time() - t0, True

def notebooks(paths=None)->list:
    "The notebooks to run: those given, or every one nbdev-test runs (`nbglob`, less those next to a `.notest`)"
    from nbdev.doclinks import nbglob
    if paths: return [Path(p).resolve() for p in paths]
    return [p.resolve() for p in nbglob(as_path=True) if not (p.parent/'.notest').exists()]

def _cost(p:Path)->tuple:
    "Longest first, so that two workers finish together: the tutorials train, then by the size of the code"
    nb = json.loads(p.read_text(encoding='utf-8'))
    return p.parent.name != 'tutorials', -sum(len(''.join(c['source'])) for c in nb['cells'] if c['cell_type'] == 'code')

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['--fork-server']: return serve(argv[1])
    if argv[:1] == ['--launch']: return launch(argv[1], argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('notebooks', nargs='*', help='notebooks to run (default: all of them)')
    ap.add_argument('--check', action='store_true', help='compare with the stored outputs instead of writing them')
    ap.add_argument('--run-only', action='store_true', help='only run them, as nbdev-test does: fail on a cell that raises')
    ap.add_argument('--n-workers', type=int, default=2, help='notebooks run at once')
    ap.add_argument('--timing', action='store_true', help="print each notebook's time")
    args = ap.parse_args(argv)
    mode = 'run' if args.run_only else 'check' if args.check else 'write'
    os.chdir(ROOT)   # nbdev reads pyproject.toml's [tool.nbdev]
    nbs = sorted(notebooks(args.notebooks), key=_cost)
    for w in {p.parent/'working' for p in nbs}:   # the tutorials keep their runs there: each run starts afresh
        if w.is_dir(): shutil.rmtree(w)
    t0, failed, times, changed = time.time(), [], {}, []
    print(f'{"checking" if mode == "check" else "running"} {len(nbs)} notebooks, {args.n_workers} at a time', flush=True)
    with fork_server() as server, ProcessPoolExecutor(max(1, min(args.n_workers, len(nbs)))) as pool:
        for f in as_completed([pool.submit(process, str(p), mode, server) for p in nbs]):
            path, err, secs, ch = f.result()
            rel = Path(path).relative_to(ROOT)
            times[rel] = secs
            if ch: changed.append(rel)
            if err: failed.append(rel); print(f'FAIL {rel}: {err}\n', file=sys.stderr, flush=True)
            else: print(f'{"written" if ch else "unchanged" if mode == "write" else "ok"}: {rel} ({secs:.0f}s)', flush=True)
    if args.timing:
        for p, s in sorted(times.items(), key=lambda o: -o[1]): print(f'{p}: {s:.0f} secs')
    if mode == 'write': print(f'outputs written: {len(changed)} notebook(s) changed', *changed, sep='\n  ')
    print(f'{len(nbs) - len(failed)} of {len(nbs)} notebooks {"match their stored outputs" if mode == "check" else "ran"} '
          f'in {time.time() - t0:.0f}s', flush=True)
    if failed:
        print(f'\nFAIL: {len(failed)} notebook(s): ' + ', '.join(map(str, failed)) +
              ('\nOutputs that changed on purpose: `python3 dev.py docs NOTEBOOK` writes them anew; commit them.'
               '\nThe stored outputs are CI\'s machine\'s: another CPU family can compute other last digits, and a '
               'training run then ends at other scores. There, `KAGGLE_KIT_OUTPUTS=run python3 dev.py test` runs the '
               'notebooks without comparing their outputs.' if mode == 'check' else ''), file=sys.stderr)
        sys.exit(1)

if __name__ == '__main__': main()
