"""Timing helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``, which puts
this folder on the import path)."""
import torch
from torch.utils.benchmark import Timer


def median_ms(fn, min_run_time):
    """Median milliseconds per call of ``fn`` (torch's Timer, at the process's thread count)."""
    timer = Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def graphed(fn):
    """``fn`` captured into a CUDA graph after warm-up on a side stream: returns the graph and the
    output buffer its replays write. The s2c ops skip their value checks under capture, so replays
    time the kernels alone, without launch overhead or host synchronisation."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out
