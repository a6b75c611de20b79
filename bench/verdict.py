"""The one line a benchmark prints per goal, computed from the numbers it measured in the same run:

    VERDICT <goal>: met|NOT met (<measured> vs <target>)

Imported by the scripts beside it (`.venv/bin/python bench/<name>.py` puts `bench/` on the path)."""

def verdict(goal:str, # the goal as the bench's docstring states it, e.g. 'find_threshold >= 50x the per-row reference'
            met:bool, # whether the measured number meets the target
            measured:str, # the measured number, formatted, with what it is the worst/mean of
            target:str, # the target, formatted, e.g. '>= 50x'
           ) -> bool:
    "Print the verdict line for one goal; returns `met`."
    print(f"VERDICT {goal}: {'met' if met else 'NOT met'} ({measured} vs {target})", flush=True)
    return met
