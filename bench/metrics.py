"""MAP@5 and a 50-point new_whale threshold search on a 100,000 x 5,000 float32 score matrix.

Measured side by side in one run:
- `kaggle_kit.ranking.find_threshold(scores, targs, thrs=50)`: one top-5 over the matrix, all 50 thresholds evaluated at
  once (its result also holds MAP@5 without thresholding); `map_at_k(scores, targs)` on its own; `thrs='all'` (exact).
- a plain Python reference, per-row loops: `heapq.nlargest` for the top 5, then for MAP@5 and for each of the 50
  thresholds, new_whale inserted by hand and Kaggle's `apk` (benhamner/Metrics) per row. Timed on a subsample of rows
  and scaled to all rows; its per-threshold MAP@5 on the subsample is checked against `find_threshold`'s.
- a per-row numpy reference (`np.argsort` of each row, then the same Python loops), as many public kernels wrote it.
- every timing is the best of `--reps` runs (default 3), the fast and the reference ones alike: on a shared machine
  the best run is the one least disturbed by other processes.
- memory: growth of the process's peak RSS during `find_threshold`, as a multiple of the input matrix's bytes
  (RSS, not tracemalloc, because torch's allocations are invisible to tracemalloc).

Scores are uniform random float32 with the true class pushed near the top for half of the known rows; 30% of the rows
are new_whale (target -100).

Goals, one `VERDICT` line each at the end: speed, `find_threshold` with 50 thresholds >= 50x the plain Python
per-row reference (scaled); memory, the input plus the peak RSS growth during `find_threshold` <= 2x the input (the
process's own peak, which also holds the imported libraries, ~0.9 GiB, is printed beside it).

Reproduce: .venv/bin/python bench/metrics.py            (about a minute, needs ~3 GB of RAM)
           .venv/bin/python bench/metrics.py --rows 20000 --classes 1000 --sub 200   (quick)
           .venv/bin/python bench/metrics.py --threads 1                            (one core)
"""
import argparse, heapq
import numpy as np, torch
from kaggle_kit.data import IGNORE_IDX
from kaggle_kit.ranking import find_threshold, map_at_k
from verdict import verdict, rss, peak_rss, timed

def apk(actual, predicted, k=10):
    "Kaggle's reference average precision at k (benhamner/Metrics, ml_metrics/average_precision.py)"
    if len(predicted) > k: predicted = predicted[:k]
    score, num_hits = 0.0, 0.0
    for i, p in enumerate(predicted):
        if p in actual and p not in predicted[:i]:
            num_hits += 1.0
            score += num_hits / (i+1.0)
    if not actual: return 0.0
    return score / min(len(actual), k)

def _rows_ref(top_fn, S, T, thrs, k=5):
    "Per-row loops: top k by `top_fn`, MAP@k, then MAP@k with new_whale inserted at each threshold"
    new, base, tot = S.shape[1], 0.0, [0.0]*len(thrs)
    for row, t in zip(S, T):
        top, vals = top_fn(row, k)
        actual = [new if t == IGNORE_IDX else int(t)]
        base += apk(actual, top, k)
        for m, thr in enumerate(thrs):
            p = next((j for j, v in enumerate(vals) if v < thr), k)
            tot[m] += apk(actual, top[:p] + [new] + top[p:k-1] if p < k else top, k)
    return base/len(S), [o/len(S) for o in tot]

def top_plain(row, k):
    row = row.tolist()
    top = heapq.nlargest(k, range(len(row)), key=row.__getitem__)   # equal scores: lower index first
    return top, [row[j] for j in top]

def top_numpy(row, k):
    top = np.argsort(-row, kind='stable')[:k]
    return top.tolist(), row[top].tolist()


def main(rows=100_000, classes=5_000, sub=300, threads=0, reps=3, seed=0):
    if threads: torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(seed)
    S = torch.rand(rows, classes, generator=g)                       # float32, written in place: no temporaries
    T = torch.randint(0, classes, (rows,), generator=g)
    boost = (torch.rand(rows, generator=g) < 0.5)
    S[boost.nonzero()[:, 0], T[boost]] = 0.999 + 0.001*torch.rand(int(boost.sum()), generator=g)
    T[torch.rand(rows, generator=g) < 0.3] = IGNORE_IDX
    S, T = S.numpy(), T.numpy()                                      # numpy views, shared memory
    nbytes = S.nbytes
    print(f'scores {rows:,} x {classes:,} float32 = {nbytes/2**30:.2f} GiB, {int((T == IGNORE_IDX).sum()):,} new_whale rows, '
          f'torch threads {torch.get_num_threads()}, load average {open("/proc/loadavg").read().split()[0]}')

    before, peak_before = rss(), peak_rss()
    res, t_fast = timed(find_threshold, S, T, thrs=50)
    growth = max(peak_rss() - max(before, peak_before), 0)
    print(f'peak RSS before the call {peak_before/2**30:.2f} GiB, RSS {before/2**30:.2f} GiB (input included)')
    t_fast = min(t_fast, timed(find_threshold, S, T, thrs=50, reps=reps)[1])
    m5, t_map = timed(map_at_k, S, T, reps=reps)
    res_all, t_all = timed(find_threshold, S, T, thrs='all', reps=reps)
    assert m5 == res.score_no_thr and res_all.score >= res.score

    idx = np.random.default_rng(seed).choice(rows, sub, replace=False)
    Ss, Ts = np.ascontiguousarray(S[idx]), T[idx]
    thrs = res.thrs.tolist()
    (b_plain, c_plain), t_plain = timed(_rows_ref, top_plain, Ss, Ts, thrs, reps=reps)
    (b_np, c_np), t_np = timed(_rows_ref, top_numpy, Ss, Ts, thrs, reps=reps)
    check = find_threshold(Ss, Ts, thrs=res.thrs)
    assert np.allclose(check.scores, c_plain, rtol=0, atol=1e-12) and np.allclose(check.scores, c_np, rtol=0, atol=1e-12)
    assert abs(check.score_no_thr - b_plain) < 1e-12
    scale = rows / sub

    print(f'\nMAP@5 no threshold {res.score_no_thr:.4f}; best of 50 thresholds {res.score:.4f} at thr={res.thr:.4f}; '
          f"exact ('all', {len(res_all.thrs):,} thresholds) {res_all.score:.4f}")
    print(f'reference == find_threshold on the {sub}-row subsample, all 50 thresholds: yes')
    print(f'\n{"":44s}{"seconds":>10s}{"x faster":>10s}')
    print(f'{"plain Python per-row (scaled from " + str(sub) + " rows)":44s}{t_plain*scale:10.1f}{"":>10s}')
    print(f'{"numpy argsort per-row (scaled)":44s}{t_np*scale:10.1f}{"":>10s}')
    print(f'{"find_threshold, 50 thresholds (+ MAP@5)":44s}{t_fast:10.2f}{t_plain*scale/t_fast:10.0f}  '
          f'(vs numpy per-row: {t_np*scale/t_fast:.0f}x)')
    print(f'{"map_at_k alone":44s}{t_map:10.2f}')
    print(f'{"find_threshold, thrs=all":44s}{t_all:10.2f}')
    print(f'\npeak memory growth during find_threshold: {growth/2**20:.0f} MiB = {growth/nbytes:.3f} x input; '
          f'process peak incl. input: {peak_rss()/nbytes:.2f} x input')
    print()
    speed = t_plain*scale/t_fast
    verdict('find_threshold (50 thresholds) >= 50x the plain Python per-row reference', speed >= 50,
            f'{speed:.0f}x, torch threads {torch.get_num_threads()}, load average {open("/proc/loadavg").read().split()[0]}', '>= 50x')
    verdict('memory <= 2x the input', nbytes + growth <= 2*nbytes,
            f'input + growth during find_threshold {1+growth/nbytes:.3f}x; process peak {peak_rss()/nbytes:.2f}x', '<= 2x')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rows', type=int, default=100_000)
    p.add_argument('--classes', type=int, default=5_000)
    p.add_argument('--sub', type=int, default=300, help='rows timed with the per-row references')
    p.add_argument('--threads', type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument('--reps', type=int, default=3, help='runs per timing, best kept')
    main(**vars(p.parse_args()))
