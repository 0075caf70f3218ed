"""Another tenant on the GPU for step 5: a PyTorch process that allocates FRACTION of the card's
free memory (CUDA device 0, as steno's cuda:0), prints one JSON line, and holds the memory until
its stdin closes.

  python3 tenant.py 0.9
"""
import json
import os
import sys

fraction = float(sys.argv[1])
import torch  # noqa: E402  (the GPU image has PyTorch; its absence is this step's failure)

torch.cuda.init()
free, total = torch.cuda.mem_get_info(0)
held = int(free * fraction)
block = torch.empty(held, dtype=torch.uint8, device="cuda:0")
block.fill_(1)  # touch it: the driver backs the allocation now
torch.cuda.synchronize()
free_after, _ = torch.cuda.mem_get_info(0)
print(json.dumps({"pid": os.getpid(), "held_bytes": held, "free_before_bytes": free,
                  "free_after_bytes": free_after, "total_bytes": total,
                  "torch": torch.__version__}), flush=True)
sys.stdin.read()
