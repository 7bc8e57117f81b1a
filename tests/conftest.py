import torch

# Small policies run fastest on one thread, and the suite runs one process per core (pytest-xdist): torch's
# default of one intra-op thread per core makes the processes spin against each other (benchmarks/threads.py).
torch.set_num_threads(1)
