"""The one line a benchmark prints per goal, computed from the numbers it measured in the same run:

    VERDICT <goal>: met|NOT met (<measured> vs <target>)

Imported by the scripts beside it (`.venv/bin/python bench/<name>.py` puts `bench/` on the path), with the
measuring helpers they share: `rss`, `peak_rss`, `timed`."""
import resource, time

def verdict(goal:str, # the goal as the bench's docstring states it, e.g. 'find_threshold >= 50x the per-row reference'
            met:bool, # whether the measured number meets the target
            measured:str, # the measured number, formatted, with what it is the worst/mean of
            target:str, # the target, formatted, e.g. '>= 50x'
           ) -> bool:
    "Print the verdict line for one goal; returns `met`."
    print(f"VERDICT {goal}: {'met' if met else 'NOT met'} ({measured} vs {target})", flush=True)
    return met

def rss(): return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()   # resident bytes now
def peak_rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024                # peak resident bytes so far

def timed(f, *args, reps=1, **kw):
    "Result of `f(*args, **kw)` and its best time over `reps` runs (the machine may be shared)"
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); r = f(*args, **kw); best = min(best, time.perf_counter() - t)
    return r, best
