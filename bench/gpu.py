"""The GPU path (issue 26): exact resume on CUDA, the kit's loop against a plain PyTorch AMP loop, the checkpoint's
pause and device-to-host copy, kNN and TTA on the GPU. Every part also runs on the CPU with tiny settings (`--tiny`,
CI's smoke test: tests/test_bench_gpu.py), so the script cannot rot between the rare runs on a GPU.

    python3 bench/gpu.py --device cuda                   # one GPU: about 6 minutes (bench/gpu_device.sh runs it)
    .venv/bin/python bench/gpu.py --device cpu --tiny    # every part on tiny settings: under a minute
    .venv/bin/python bench/gpu.py --prepare              # here, with the internet: .gpu/, the offline bundle for the GPU image

Data: `make_flukes` drawn at 64 px (seeded) and, on the GPU, upscaled to 256 px PNGs, so that decoding and resizing
cost what a Kaggle photo's do; fold 0 validates. Model: timm `resnet26d`, `pretrained=False` (`test_resnet` with
`--tiny`); fastai Adam; the kit's learner (`whale_learner`: `SeededDL` per-item seeding, albumentations
`default_train_tfms(hflip=False)`, `SeededDLCallback`, `NewWhaleCallback`).

1. resume: for fp16 (fastai's `MixedPrecision`, a real `GradScaler`) and bf16, each with `seed_everything(0,
   reproducible=True)` and with `reproducible=False` (cuDNN benchmark on): an uninterrupted run (two without the
   reproducible mode), then a run with the kit's real `TimedCheckpoint(every=0)` SIGKILLed at a seeded mid-epoch point,
   then the same command again, which resumes; final weights compared bit for bit (the approach of
   tests/test_resume_matrix.py, in subprocesses started side by side). Goal: bit-identical in the reproducible mode
   for fp16 + scaler and for bf16.
2. speed, at 224 px (`--tiny`: 32): training images/s over the epochs after the first, of the kit's `fit_one_cycle`
   (`MixedPrecision` fp16, the learner's callbacks and a `TimedCheckpoint` saving at each epoch's end) against a plain
   PyTorch AMP loop (`torch.utils.data.DataLoader` over the same files, the same albumentations pipeline, the same
   model, batch size, optimizer family and one-cycle schedule, `autocast` + `GradScaler`); the same kit loop in the
   reproducible mode (its cost) and with fastai's `ChannelsLast`; the kit's loader alone with 0, 2 and 4 workers, and
   the plain loader alone. Goal: kit >= 0.9x the plain loop.
3. ckpt: the time a `TimedCheckpoint(every=0)` blocks the loop per checkpoint (the snapshot: `plain_data`'s copy into
   pinned host memory) against `torch.save` + fsync of the same model and optimizer state; the copy alone, pinned
   (the kit's) against `.to('cpu')` into pageable memory; pinned blocks reused, never one still held. Goal: blocked <=
   0.1x a durable `torch.save`.
4. knn/tta: `knn` of 30,000 queries against 50,000 x 512 (top 100) on the GPU against all the machine's CPU cores,
   same neighbours up to ties; `knn_classes` ('max' and 'mean') of 10,000 of those queries against the gallery as
   15,000 individuals, the same way (the retrieval functions' `device=`, default CPU, is decided on it); `tta_preds(n=8)`
   in one pass against eight `get_preds` passes. Goal: GPU knn >= 20x CPU.

One `VERDICT` line per goal (bench/verdict.py). `--parts resume,speed` runs some; `--out DIR` keeps the work folder.
"""
import argparse, json, os, random, shutil, signal, statistics, subprocess, sys, tempfile, time, warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = dict(arch='resnet26d', draw=64, src=256, n_ids=200, size=128, bs=32, epochs=2, rw=4,    # resume
            ssize=224, sbs=64, sepochs=3, srep=8, sw=8, lw=(0, 2, 4), lbatches=20,          # speed
            csize=128, cbatches=12,                                                          # ckpt
            nq=30_000, ng=50_000, dim=512, k=100, ncls=15_000, tsize=224)                               # knn, tta
TINY = dict(arch='test_resnet', draw=32, src=32, n_ids=10, size=32, bs=8, epochs=2, rw=0,
            ssize=32, sbs=16, sepochs=2, srep=2, sw=0, lw=(0, 2), lbatches=4,
            csize=32, cbatches=4,
            nq=600, ng=2_000, dim=64, k=10, ncls=200, tsize=32)
PARTS = ('resume', 'speed', 'ckpt', 'knn')
AMP = {'cuda': 'fp16', 'cpu': 'bf16'}   # the speed part's autocast: a CPU has no fast float16 kernels

def log(*a): print(*a, flush=True)

# ---------------------------------------------------------------------------------------------------- data and learners
def _upscale(args):
    from PIL import Image
    src, dst, size = args
    Image.open(src).convert('RGB').resize((size, size), Image.BICUBIC).save(dst, compress_level=1)

def make_data(work:Path, c:dict) -> Path:
    "`make_flukes` at `c['draw']` px, upscaled to `c['src']` px PNGs (a process per core) when larger."
    from kaggle_kit.datasets import make_flukes
    d = make_flukes(work/f"flukes{c['draw']}", size=c['draw'], n_ids=c['n_ids'])
    if c['src'] == c['draw']: return d
    out = work/f"flukes{c['src']}"
    if (out/'done').exists(): return out
    jobs = []
    for sub in ('train', 'test'):
        (out/sub).mkdir(parents=True, exist_ok=True)
        jobs += [(f, out/sub/f.name, c['src']) for f in sorted((d/sub).glob('*.png'))]
    from multiprocessing import Pool
    with Pool(os.cpu_count()) as p: p.map(_upscale, jobs, chunksize=16)
    for f in d.glob('*.csv'): shutil.copy(f, out/f.name)
    (out/'done').write_text('')
    return out

def folds(data:Path, rep:int=1):
    """train.csv with 5 round-robin folds (fold 0 validates); with `rep`, the training rows `rep` times (a longer epoch),
    the copies under other names (hard links to the same files)."""
    import numpy as np, pandas as pd
    df = pd.read_csv(data/'train.csv'); df['fold'] = np.arange(len(df)) % 5
    trn, copies = df[df.fold != 0], []
    for k in range(1, rep):
        for f in trn.Image:
            if not (data/'train'/f'r{k}-{f}').exists(): os.link(data/'train'/f, data/'train'/f'r{k}-{f}')
        copies.append(trn.assign(Image='r' + str(k) + '-' + trn.Image))
    return pd.concat([trn, *copies, df[df.fold == 0]], ignore_index=True)

def amp_cb(amp:str, device:str):
    "fastai's `MixedPrecision` (on a CPU: its autocast and a real, enabled GradScaler for fp16 on the CPU, as tests/train_resumable.py)."
    import torch
    from fastai.callback.fp16 import MixedPrecision
    if amp == 'none': return []
    if device == 'cuda': return [MixedPrecision(amp_mode=amp)]
    class CPUMixedPrecision(MixedPrecision):
        def before_fit(self):
            super().before_fit()
            dtype = torch.float16 if amp == 'fp16' else torch.bfloat16
            self.autocast = torch.autocast('cpu', dtype=dtype)
            self.learn.scaler = torch.amp.GradScaler('cpu', enabled=dtype == torch.float16, init_scale=2.**8, growth_interval=4)
    return [CPUMixedPrecision(amp_mode=amp)]

def learner(data, c, size, bs, workers, device, rep=1, n_train=None):
    "The kit's learner (`whale_learner`) on fold 0; `n_train`: only the first so many training rows."
    from kaggle_kit.datasets import whale_learner
    df = folds(data, rep)
    if n_train: df = df.drop(df.index[(df.fold != 0).cumsum().gt(n_train) & (df.fold != 0)])
    return whale_learner(df, data, 0, size=size, bs=bs, arch=c['arch'], seed=0, num_workers=workers,
                         pretrained=False, dls_kwargs=dict(device=device, unseen='new'))

def n_batches(data, bs):
    "Training batches an epoch of fold 0 has: new_whale rows never train, fastai drops the last partial batch."
    from kaggle_kit.data import NEW_WHALE
    df = folds(data)
    return int(((df.fold != 0) & (df.Id != NEW_WHALE)).sum()) // bs

# ---------------------------------------------------------------------------------------------------- 1. resume
def worker(cfg:dict):
    "One training process of part 1 (`--worker JSON`): train, save the final weights; a TimedCheckpoint run resumes."
    import torch
    from kaggle_kit.env import seed_everything
    from kaggle_kit.checkpoint import TimedCheckpoint
    seed_everything(0, reproducible=cfg['repro'])
    if not cfg['repro']: torch.backends.cudnn.benchmark = True   # what a user after speed sets
    torch.set_num_threads(1 if cfg['device'] == 'cpu' else 2)   # processes side by side
    out = Path(cfg['out'])
    learn = learner(Path(cfg['data']), cfg, cfg['size'], cfg['bs'], cfg['rw'], cfg['device'])
    cbs = amp_cb(cfg['amp'], cfg['device']) + ([TimedCheckpoint(out, every=0, keep=2, margin=0, search=[])] if cfg['ckpt'] else [])
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(cfg['epochs'], 2e-3, cbs=cbs)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(learn.model.state_dict(), out/'final.pth')
    print('FINISHED', flush=True)

def start(cfg):
    return subprocess.Popen([sys.executable, __file__, '--worker', json.dumps(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)

def finish(p, what, timeout=600):
    out, _ = p.communicate(timeout=timeout)
    if p.returncode: raise SystemExit(f'{what}: exit {p.returncode}\n{out[-3000:]}')
    return out

def kill_all(runs:dict, timeout=600) -> dict:
    """SIGKILL each process `extra` s after it wrote a checkpoint at or past its `target` (fit, epoch, batch), all
    watched at once: `runs` maps a key to `(process, run folder, target, extra)`; returns what happened to each."""
    from kaggle_kit.run import ckpt_files, ckpt_pos
    t0, what, due = time.time(), {}, {}
    while len(what) < len(runs) and time.time() - t0 < timeout:
        for k, (p, out, target, extra) in runs.items():
            if k in what: continue
            if p.poll() is not None:
                raise SystemExit(f'the run to kill at {target} ended first (exit {p.returncode}):\n{p.communicate()[0][-3000:]}')
            fs = ckpt_files(out) if k not in due and out.exists() else []
            if fs and ckpt_pos(fs[0]) >= target: due[k] = (time.time() + extra, fs[0].name)
            if k in due and time.time() >= due[k][0]:
                p.send_signal(signal.SIGKILL); p.communicate(); what[k] = f'killed {extra*1000:.0f} ms after {due[k][1]}'
        time.sleep(0.002)
    if len(what) < len(runs): raise SystemExit(f'no kill within {timeout} s: {sorted(set(runs) - set(what))}')
    return what

def part_resume(c, data, work, device):
    import torch
    rng = random.Random(26)
    n_iter = n_batches(data, c['bs'])
    rows = [(amp, repro) for amp in ('fp16', 'bf16') for repro in ((True,) if c is TINY else (True, False))]   # a CPU is deterministic
    cfg = lambda amp, repro, name, ckpt: dict(c, device=device, data=str(data), amp=amp, repro=repro, ckpt=ckpt,
                                              out=str(work/'resume'/f'{amp}-{int(repro)}-{name}'))
    shutil.rmtree(work/'resume', ignore_errors=True); t0 = time.time()
    ps = {(a, r, n): start(cfg(a, r, n, False)) for a, r in rows for n in (['ref'] if r else ['ref', 'ref2'])}
    for k, p in ps.items(): finish(p, f'uninterrupted run {k}')
    targets = {row: (0, rng.randrange(c['epochs']), rng.randrange(1, n_iter - 1)) for row in rows}
    what = kill_all({row: (start(cfg(*row, 'killed', True)), Path(cfg(*row, 'killed', True)['out']), targets[row],
                           rng.uniform(0, 0.05)) for row in rows})
    from kaggle_kit.run import ckpt_files
    from kaggle_kit.store import load_checkpoint
    scaler = {row: load_checkpoint(ckpt_files(Path(cfg(*row, 'killed', True)['out']))[0])['learn']['scaler'] for row in rows}
    ps = {row: start(cfg(*row, 'killed', True)) for row in rows}
    logs = {row: finish(p, f'resumed run {row}') for row, p in ps.items()}
    log(f'resume: {c["arch"]} at {c["size"]} px, bs {c["bs"]}, {c["epochs"]} epochs of {n_iter} batches, {len(rows)*3 + sum(not r for _, r in rows)} '
        f'processes in {time.time()-t0:.0f} s')
    w = lambda row, n: torch.load(Path(cfg(*row, n, False)['out'])/'final.pth', weights_only=True)
    diff = lambda a, b: max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())
    res = {}
    for row in rows:
        ref, got = w(row, 'ref'), w(row, 'killed')
        same = all(torch.equal(ref[k], got[k]) for k in ref)
        resumed = 'Resuming from' in logs[row]
        sc = scaler[row]
        extra = '' if row[1] else (f"; two uninterrupted runs {'identical' if diff(ref, w(row, 'ref2')) == 0 else 'differ'}"
                                   f" (max |diff| {diff(ref, w(row, 'ref2')):.1e})")
        log(f"  {row[0]} reproducible={row[1]}: target {targets[row]}, {what[row]}, resumed: {resumed}; resumed == "
            f"uninterrupted: {same} (max |diff| {diff(ref, got):.1e}){extra}; scaler in the checkpoint: "
            f"{ {k: round(v, 1) if isinstance(v, float) else v for k, v in sc.items()} if sc else None}")
        res[row] = same and resumed
    for amp in ('fp16', 'bf16'):
        what_ = f'resume bit-identical on {device} in reproducible mode, {amp}' + (' + GradScaler' if amp == 'fp16' else '')
        verdict(what_, res[(amp, True)], f"{'identical' if res[(amp, True)] else 'different'} final weights after a SIGKILL", 'bit-identical')

# ---------------------------------------------------------------------------------------------------- 2. speed
class ImagesPerSecond:
    "Training phase time and images per epoch, as a fastai callback (made inside, so that fastai is imported lazily)."
    def __new__(cls):
        from fastai.callback.core import Callback
        import torch
        class _Ips(Callback):
            order = 99
            def before_fit(self): self.times, self.n = [], []
            def before_train(self): self._n = 0; self._sync(); self._t = time.perf_counter()
            def after_batch(self):
                if self.training: self._n += len(self.xb[0])
            def after_train(self): self._sync(); self.times.append(time.perf_counter() - self._t); self.n.append(self._n)
            def _sync(self):
                if torch.cuda.is_available(): torch.cuda.synchronize()
            def ips(self): return sum(self.n[1:]) / sum(self.times[1:])   # the epochs after the first
        return _Ips()

def kit_ips(c, data, device, work, repro=False, channels_last=False):
    import torch
    from kaggle_kit.env import seed_everything
    from kaggle_kit.checkpoint import TimedCheckpoint
    seed_everything(0, reproducible=repro)
    if not repro: torch.backends.cudnn.benchmark = True
    learn = learner(data, c, c['ssize'], c['sbs'], c['sw'], device, rep=c['srep'])
    cb = ImagesPerSecond()
    extra = []
    if channels_last:
        from fastai.callback.channelslast import ChannelsLast
        extra = [ChannelsLast()]
    run = work/f'speed-{int(repro)}{int(channels_last)}'; shutil.rmtree(run, ignore_errors=True)
    cbs = [*amp_cb(AMP[device], device), *extra, TimedCheckpoint(run, every=30, margin=0, search=[]), cb]
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(c['sepochs'], 2e-3, cbs=cbs)
    seed_everything(0, reproducible=False)
    return cb.ips(), learn

def plain_loader(c, data, device, workers):
    "A plain PyTorch loader over the kit's training rows: cv2 read, resize, the same albumentations pipeline."
    import cv2, numpy as np, torch
    from kaggle_kit.augment import default_train_tfms
    from kaggle_kit.data import NEW_WHALE
    df = folds(data, c['srep']); df = df[(df.fold != 0) & (df.Id != NEW_WHALE)]   # the kit's training rows
    vocab = {v: i for i, v in enumerate(sorted(df.Id.unique()))}
    tfms = default_train_tfms(hflip=False)
    class DS(torch.utils.data.Dataset):
        def __len__(self): return len(df)
        def __getitem__(self, i):
            im = cv2.cvtColor(cv2.imread(str(data/'train'/df.Image.iloc[i])), cv2.COLOR_BGR2RGB)
            im = tfms(image=cv2.resize(im, (c['ssize'], c['ssize']), interpolation=cv2.INTER_AREA))['image']
            return torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1), vocab[df.Id.iloc[i]]
    return torch.utils.data.DataLoader(DS(), batch_size=c['sbs'], shuffle=True, num_workers=workers, drop_last=True,
                                       pin_memory=device == 'cuda'), len(vocab)

def plain_ips(c, data, device):
    "Training images/s of a plain PyTorch AMP loop: autocast fp16, GradScaler, AdamW, OneCycleLR."
    import timm, torch
    torch.manual_seed(0); torch.backends.cudnn.benchmark = True
    dl, n_cls = plain_loader(c, data, device, c['sw'])
    model = timm.create_model(c['arch'], pretrained=False, num_classes=n_cls).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=c['sepochs']*len(dl))
    scaler = torch.amp.GradScaler(device, enabled=device == 'cuda')
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)*255
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)*255
    times, n = [], []
    for _ in range(c['sepochs']):
        model.train(); sync(device); t = time.perf_counter(); k = 0
        for x, y in dl:
            x = (x.to(device, non_blocking=True).float() - mean) / std; y = y.to(device, non_blocking=True)
            with torch.autocast(device, dtype=getattr(torch, {'fp16': 'float16', 'bf16': 'bfloat16'}[AMP[device]])):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True); scaler.scale(loss).backward(); scaler.step(opt); scaler.update(); sched.step()
            k += len(x)
        sync(device); times.append(time.perf_counter() - t); n.append(k)
    return sum(n[1:]) / sum(times[1:])

def sync(device):
    import torch
    if device == 'cuda': torch.cuda.synchronize()

def loader_ips(dl, batches, device):
    "Images/s of a loader alone, batches moved to `device`, the first batch (worker start) left out."
    it, n = iter(dl), 0
    b = next(it); t = time.perf_counter()
    for _ in range(batches):
        try: b = next(it)
        except StopIteration: it = iter(dl); b = next(it)
        x = b[0].to(device, non_blocking=True); n += len(x)
    sync(device); t = time.perf_counter() - t
    del it, b   # its worker processes end here, not in a process forked later
    return n / t

def part_speed(c, data, work, device):
    import torch
    ips = {}
    ips['kit'], learn = kit_ips(c, data, device, work)
    ips['plain'] = plain_ips(c, data, device)
    ips['kit, reproducible mode'], _ = kit_ips(c, data, device, work, repro=True)
    ips['kit, channels_last'], _ = kit_ips(c, data, device, work, channels_last=True)
    log(f"speed: {c['arch']} at {c['ssize']} px, bs {c['sbs']}, {c['sw']} workers, {AMP[device]} autocast, {c['sepochs']} epochs of "
        f"{len(learn.dls.train)} batches (images/s of the epochs after the first)")
    for k, v in ips.items(): log(f"  {k:28s} {v:8.0f} images/s   {v/ips['kit']:.2f}x the kit's loop")
    for w in c['lw']:
        l = learner(data, c, c['ssize'], c['sbs'], w, device, rep=c['srep'])
        log(f"  kit loader alone, {w} workers   {loader_ips(l.dls.train, c['lbatches'], device):8.0f} images/s")
    dl, _ = plain_loader(c, data, device, max(c['lw']))
    log(f"  plain loader alone, {max(c['lw'])} workers {loader_ips(dl, c['lbatches'], device):8.0f} images/s")
    log(f"  reproducible mode costs {1 - ips['kit, reproducible mode']/ips['kit']:+.1%} of the kit loop's images/s; "
        f"channels_last changes it by {ips['kit, channels_last']/ips['kit'] - 1:+.1%}")
    r = ips['kit'] / ips['plain']
    verdict("kit fit_one_cycle >= 0.9x a plain PyTorch AMP loop", r >= 0.9, f"{r:.2f}x ({ips['kit']:.0f} vs {ips['plain']:.0f} images/s)", '>= 0.9x')

# ---------------------------------------------------------------------------------------------------- 3. ckpt
def part_ckpt(c, data, work, device):
    import torch
    from kaggle_kit.checkpoint import TimedCheckpoint
    from kaggle_kit.env import seed_everything
    from kaggle_kit.store import plain_data
    seed_everything(0, reproducible=False)
    class Timed(TimedCheckpoint):
        blocked = []
        def _save(self, **kw):
            sync(device); t0 = time.perf_counter(); super()._save(**kw); self.blocked.append(time.perf_counter() - t0)
    learn = learner(data, c, c['csize'], c['bs'], 0, device, n_train=c['bs']*(c['cbatches'] + 1))   # a short epoch
    run = work/'ckpt'; shutil.rmtree(run, ignore_errors=True)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=[*amp_cb('fp16', device), Timed(run, every=0, keep=2, margin=0, search=[])])
    blocked = statistics.median(Timed.blocked[1:])   # the first pays the pinned blocks' allocation
    st = {'model': learn.model.state_dict(), 'opt': learn.opt.state_dict()}
    mb = sum(t.numel()*t.element_size() for t in plain_data(st)['model'].values())/2**20
    saves = []
    for i in range(3):
        t0 = time.perf_counter()
        with open(work/f'plain{i}.pth', 'wb') as f: torch.save(st, f); f.flush(); os.fsync(f.fileno())
        saves.append(time.perf_counter() - t0)
    save = min(saves)
    tens = list(_tensors(st))
    total = sum(t.numel()*t.element_size() for t in tens)
    def pageable(): x = [t.detach().to('cpu', copy=True) for t in tens]; sync(device); return x
    def pinned(): return plain_data(tens)
    t_pg = _best(pageable); t_pin = _best(pinned)
    log(f"ckpt: {c['arch']}, model {mb:.0f} MB, model + optimizer {total/2**20:.0f} MB on {device}; {len(Timed.blocked)} checkpoints")
    log(f"  TimedCheckpoint blocks the loop {blocked*1000:.1f} ms per checkpoint (median; the first {Timed.blocked[0]*1000:.0f} ms); "
        f"torch.save + fsync of the same state {save*1000:.0f} ms: {blocked/save:.3f}x")
    log(f"  device-to-host copy of the state: pinned (plain_data) {t_pin*1000:.1f} ms ({total/t_pin/1e9:.1f} GB/s), "
        f"pageable .to('cpu') {t_pg*1000:.1f} ms ({total/t_pg/1e9:.1f} GB/s): {t_pg/t_pin:.2f}x faster")
    if device == 'cuda':
        a = plain_data(tens); held = {t.untyped_storage().data_ptr() for t in a}
        b = plain_data(tens); nb = {t.untyped_storage().data_ptr() for t in b}
        del a; c2 = plain_data(tens); reused = len({t.untyped_storage().data_ptr() for t in c2} & held)
        log(f"  pinned: {all(t.is_pinned() for t in b)}; a snapshot taken while another is held shares {len(held & nb)} of "
            f"{len(held)} blocks with it; after it is freed the next reuses {reused} of them")
        stats = getattr(torch.cuda, 'host_memory_stats', None)
        if stats: log(f"  host allocator: {json.dumps({k: v for k, v in stats().items() if 'allocations' in k or 'reserved' in k})[:300]}")
    verdict('checkpoint blocks <= 0.1x a durable torch.save', blocked <= 0.1*save, f'{blocked/save:.3f}x ({blocked*1000:.1f} vs {save*1000:.0f} ms)', '<= 0.1x')

def _tensors(o):
    import torch
    if isinstance(o, torch.Tensor): yield o
    elif isinstance(o, dict): yield from (t for v in o.values() for t in _tensors(v))
    elif isinstance(o, (list, tuple)): yield from (t for v in o for t in _tensors(v))

def _best(f, reps=5):
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); r = f(); best = min(best, time.perf_counter() - t); del r
    return best

# ---------------------------------------------------------------------------------------------------- 4. knn, tta
def part_knn(c, data, work, device):
    import numpy as np, torch
    from kaggle_kit.knn import knn
    rng = np.random.default_rng(0)
    G = rng.standard_normal((c['ng'], c['dim']), dtype=np.float32); Q = rng.standard_normal((c['nq'], c['dim']), dtype=np.float32)
    threads = torch.get_num_threads(); torch.set_num_threads(os.cpu_count())
    knn(Q[:64], G[:4096], min(c['k'], 4096))
    (s_cpu, i_cpu), t_cpu = _timed(lambda: knn(Q, G, c['k']))
    torch.set_num_threads(threads)
    knn(Q[:64], G[:4096], min(c['k'], 4096), device=device)   # warm-up: CUDA context, cuBLAS
    (s_dev, i_dev), t_dev = min((_timed(lambda: knn(Q, G, c['k'], device=device)) for _ in range(2)), key=lambda r: r[1])
    diff = np.nonzero((np.sort(i_cpu, 1) != np.sort(i_dev, 1)).any(1))[0]
    ties = all(abs(s_cpu[r, -1] - s_dev[r, -1]) <= 1e-4 for r in diff)   # a different k-th neighbour: a near-tie at the cut
    log(f"knn: {c['nq']:,} queries x {c['ng']:,} x {c['dim']}, top {c['k']}: {device} {t_dev:.2f} s, {os.cpu_count()} CPU "
        f"threads {t_cpu:.2f} s: {t_cpu/t_dev:.1f}x; rows whose neighbour sets differ: {len(diff)} (all near-ties at the "
        f"k-th: {ties}); max |sim diff| {np.abs(s_cpu - s_dev).max():.1e}")
    knn_classes_vs_cpu(c, G, Q, device)
    tta(c, data, device)
    r = t_cpu / t_dev
    verdict(f'knn on {device} >= 20x the CPU cores', r >= 20, f'{r:.1f}x ({t_dev:.2f} vs {t_cpu:.2f} s)', '>= 20x')

def knn_classes_vs_cpu(c, G, Q, device):
    "`knn_classes` (how='max' and 'mean') of a third of the queries against the gallery as `ncls` individuals, on `device` and the CPU cores."
    import numpy as np, torch
    from kaggle_kit.knn import knn_classes
    t = np.random.default_rng(1).integers(0, c['ncls'], len(G)); q = Q[:len(Q)//3]
    for how in ('max', 'mean'):
        threads = torch.get_num_threads(); torch.set_num_threads(os.cpu_count())
        (s_cpu, c_cpu), t_cpu = _timed(lambda: knn_classes(q, G, t, c['ncls'], how=how))
        torch.set_num_threads(threads)
        knn_classes(q[:64], G[:4096], t[:4096], c['ncls'], how=how, device=device)   # warm-up
        (s_dev, c_dev), t_dev = _timed(lambda: knn_classes(q, G, t, c['ncls'], how=how, device=device))
        diff = np.nonzero((c_cpu != c_dev).any(1))[0]
        ties = all(np.abs(s_cpu[r] - s_dev[r]).max() <= 1e-4 for r in diff)   # a different order: near-equal similarities
        log(f"knn_classes how={how!r}: {len(q):,} queries x {len(G):,} gallery rows of {c['ncls']:,} individuals, top 5: "
            f"{device} {t_dev:.2f} s, {os.cpu_count()} CPU threads {t_cpu:.2f} s: {t_cpu/t_dev:.1f}x; rows ranked "
            f"differently: {len(diff)} (all near-ties: {ties}); max |score diff| {np.abs(s_cpu - s_dev).max():.1e}")

def _timed(f):
    sync_all(); t = time.perf_counter(); r = f(); sync_all(); return r, time.perf_counter() - t

def sync_all():
    import torch
    if torch.cuda.is_available(): torch.cuda.synchronize()

def tta(c, data, device):
    "`tta_preds(n=8)` in one pass against eight `get_preds` passes (one dihedral transform each), as bench/infer.py."
    import pandas as pd, torch
    from fastai.callback.core import Callback
    from kaggle_kit.infer import tta_preds, dihedral_tfm
    from kaggle_kit.data import get_test_dl
    class _OneTfm(Callback):
        def __init__(self, i): self.i = i
        def before_batch(self): self.learn.xb = (dihedral_tfm(self.xb[0], self.i),)
    learn = learner(data, c, c['tsize'], c['sbs'], c['sw'], device)
    dl = get_test_dl(learn.dls, pd.read_csv(data/'test_labels.csv')[['Image']], data/'test')
    with learn.no_bar():
        learn.get_preds(dl=dl)   # warm-up
        (p_one, _), t_one = _timed(lambda: tta_preds(learn, dl=dl, n=8))
        p_multi, t_multi = _timed(lambda: torch.stack([learn.get_preds(dl=dl, cbs=_OneTfm(i))[0] for i in range(8)]).mean(0))
    d = (p_one - p_multi).abs().max().item()
    log(f"tta: {len(dl.dataset)} test images at {c['tsize']} px on {device}: tta_preds(n=8) one pass {t_one:.2f} s, eight "
        f"get_preds passes {t_multi:.2f} s: {t_multi/t_one:.2f}x; max |difference| {d:.1e}")
    verdict('tta_preds one pass faster than eight passes', t_multi > t_one, f'{t_multi/t_one:.2f}x', '> 1x')

# ---------------------------------------------------------------------------------------------------- main
def verdict(*a):
    from verdict import verdict as v
    return v(*a)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default=None, help='cuda or cpu (default: cuda when there is one)')
    p.add_argument('--tiny', action='store_true', help='tiny settings (CI smoke test on a CPU)')
    p.add_argument('--parts', default=','.join(PARTS), help=f'comma-separated, of {",".join(PARTS)}')
    p.add_argument('--out', default=None, help='work folder (kept); default a temporary one, removed')
    p.add_argument('--prepare', action='store_true', help='build .gpu/ (the offline bundle for the GPU image) and check it')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker: return worker(json.loads(a.worker))
    if a.prepare: return prepare()
    sys.path.insert(0, str(HERE))
    import torch
    device = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    c = TINY if a.tiny else FULL
    parts = [s.strip() for s in a.parts.split(',') if s.strip()]
    if bad := set(parts) - set(PARTS): raise SystemExit(f'unknown parts {sorted(bad)}; known: {PARTS}')
    work = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix='kk-gpu-'))
    work.mkdir(parents=True, exist_ok=True)
    if device == 'cpu': warnings.filterwarnings('ignore', message='.*CUDA is not available.*')   # fastai's MixedPrecision, replaced
    if device == 'cuda':   # cuBLAS reads it once, at its first use: every row of the speed part runs with it (the resume part's
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')   # processes set it through seed_everything)
    dev = torch.cuda.get_device_name() if device == 'cuda' else f'{os.cpu_count()} CPU cores'
    log(f"bench/gpu.py on {dev}: torch {torch.__version__}, {'tiny' if a.tiny else 'full'} settings, parts {','.join(parts)}")
    t0 = time.time(); data = make_data(work, c); log(f'data: {data.name} in {time.time()-t0:.0f} s')
    try:
        for part in parts:
            t = time.time(); log(f'\n== {part}')
            dict(resume=part_resume, speed=part_speed, ckpt=part_ckpt, knn=part_knn)[part](c, data, work, device)
            log(f'PART {part} done in {time.time()-t:.0f} s')
    finally:
        if not a.out: shutil.rmtree(work, ignore_errors=True)

# ---------------------------------------------------------------------------------------------------- --prepare
# The GPU image's packages that the kit's dependencies reach (the device machine's list of installed packages), large or
# compiled ones: left out of the bundle, so that the image's builds stay; versions where they are known. Small pure-Python
# ones (typing-extensions, idna, anyio, click, protobuf, requests...) are bundled all the same: pip keeps the image's
# copy where it is new enough (`only-if-needed`) and takes the bundle's where the kit's dependencies ask for a newer one.
IMAGE = {'torch': '2.11.0', 'torchvision': '0.26.0', 'triton': '3.6.0', 'numpy': '2.5.2', 'safetensors': '0.8.0',
         'huggingface-hub': '1.33.0', 'timm': None, 'pandas': None, 'scikit-learn': None, 'scipy': None, 'pillow': None,
         'opencv-python-headless': None, 'matplotlib': None, 'contourpy': None, 'kiwisolver': None, 'fonttools': None,
         'pyyaml': None, 'markupsafe': None, 'sympy': None, 'mpmath': None, 'networkx': None, 'hf-xet': None,
         'pyarrow': None, 'uvloop': None, 'setuptools': None, 'scikit-image': None, 'nvidia-*': None, 'cuda-*': None}
PY, PLATFORM = '3.12', 'manylinux_2_35_x86_64'   # the image's Python 3.12.3 (Ubuntu 22.04+: glibc 2.35 or newer)

def prepare(root:Path=HERE.parent):
    """Build `.gpu/wheels.tar.xz`: `kaggle-kit bundle` for the image's Python and platform without the image's packages,
    its wheels stored uncompressed in one xz archive (the travelling tree's limit is 64 MiB: spaCy's wheel alone is 32 MB
    deflated), then resolve `kaggle-kit` from it offline with the image's packages stood in by empty wheels."""
    import zipfile
    gpu = root/'.gpu'; wheels = gpu/'wheels'
    if gpu.exists(): shutil.rmtree(gpu)
    subprocess.run([sys.executable, '-c', 'import sys; from kaggle_kit.cli import main; sys.exit(main())', 'bundle', str(wheels),
                    '--python-version', PY, '--platform', PLATFORM, '--exclude', ','.join(IMAGE)], check=True)
    stored = gpu/'stored'; stored.mkdir()
    for f in sorted(wheels.glob('*.whl')):   # the same wheels, stored: xz then compresses across all of them
        with zipfile.ZipFile(f) as zi, zipfile.ZipFile(stored/f.name, 'w', zipfile.ZIP_STORED) as zo:
            for i in zi.infolist():
                data = zi.read(i); i.compress_type = zipfile.ZIP_STORED; zo.writestr(i, data)
    shutil.copy(wheels/'install.txt', stored/'install.txt')
    subprocess.run(f"tar -C {stored} -cf - . | xz -9 -T0 > {gpu/'wheels.tar.xz'}", shell=True, check=True)
    check_offline(wheels)
    shutil.rmtree(stored)
    mb = (gpu/'wheels.tar.xz').stat().st_size/2**20
    print(f"{gpu/'wheels.tar.xz'}: {mb:.1f} MiB (the wheels: {sum(f.stat().st_size for f in wheels.glob('*.whl'))/2**20:.1f} MiB); "
          "carry .gpu/wheels.tar.xz alone (bench/README.md, GPU)")

def check_offline(wheels:Path):
    "Resolve kaggle-kit offline for the image's Python from `wheels` plus empty stand-ins of the image's packages."
    import zipfile
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name as canon
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # every requirement that installing kaggle-kit from the bundle makes of packages outside it (extras followed)
        reqs = {}
        for f in wheels.glob('*.whl'):
            with zipfile.ZipFile(f) as z:
                meta = z.read(next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))).decode()
            name = next(l.split(':', 1)[1].strip() for l in meta.splitlines() if l.startswith('Name:'))
            reqs[canon(name)] = [Requirement(l.split(':', 1)[1].strip()) for l in meta.splitlines() if l.startswith('Requires-Dist:')]
        need, todo, seen = {}, [('kaggle-kit', '')], set()
        while todo:
            n, extra = todo.pop()
            if (n, extra) in seen: continue
            seen.add((n, extra))
            for r in reqs[n]:
                if r.marker and not r.marker.evaluate({'extra': extra, 'python_version': PY, 'python_full_version': PY + '.3'}): continue
                if canon(r.name) in reqs: todo += [(canon(r.name), e) for e in ('', *r.extras)]
                else: need.setdefault(canon(r.name), set()).add(str(r.specifier) or 'any')
        # stand-ins: the known version, else the newest release that pip would pick (an assumption, printed)
        ask = {n: s for n, s in need.items() if not IMAGE.get(n)}
        res = json.loads(subprocess.run([sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-deps', '--ignore-installed', '-q',
                                         '--target', tmp/'t', '--report', '-', '--only-binary=:all:', '--python-version', PY,
                                         *[a for t in _plat_tags() for a in ('--platform', t)],
                                         *[f'{n}{",".join(s - {"any"})}' for n, s in ask.items()]],
                                        capture_output=True, text=True, check=True).stdout)
        picked = {canon(i['metadata']['name']): i['metadata']['version'] for i in res['install']}
        stubs = tmp/'stubs'; stubs.mkdir()
        for n in need:
            v = IMAGE.get(n) or picked[n]
            with zipfile.ZipFile(stubs/f"{n.replace('-', '_')}-{v}-py3-none-any.whl", 'w') as z:
                z.writestr(f"{n.replace('-', '_')}-{v}.dist-info/METADATA", f'Metadata-Version: 2.1\nName: {n}\nVersion: {v}\n')
                z.writestr(f"{n.replace('-', '_')}-{v}.dist-info/WHEEL", 'Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n')
                z.writestr(f"{n.replace('-', '_')}-{v}.dist-info/RECORD", '')
        r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index', '--find-links', str(wheels),
                            '--find-links', str(stubs), '--target', tmp/'t2', '--report', '-', '-q', '--only-binary=:all:',
                            '--python-version', PY, *[a for t in _plat_tags() for a in ('--platform', t)], 'kaggle-kit'],
                           capture_output=True, text=True)
        if r.returncode: raise SystemExit(f'offline resolution failed:\n{r.stderr[-3000:]}')
        got = json.loads(r.stdout)['install']
        from_stubs = sorted(i['metadata']['name'] for i in got if '/stubs/' in i['download_info']['url'])
        print(f"offline resolution for Python {PY}: {len(got)} packages, {len(got) - len(from_stubs)} from the bundle, "
              f"{len(from_stubs)} from the image")
        for n in sorted(need):
            print(f"  the image must have {n}{','.join(sorted(need[n] - {'any'})) or ' (any version)'}: "
                  f"{'known ' + IMAGE[n] if IMAGE.get(n) else 'assumed ' + picked[n]}")

def _plat_tags():
    from kaggle_kit.cli import _platform_tags
    return _platform_tags(PLATFORM)

if __name__ == '__main__': main()
