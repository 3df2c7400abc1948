"""Validation PSNR (held-out T91 blocks) of a warm start before any fine-tuning.

ISTA-Net at ratio r initialised from a trained model at another ratio, with Qinit solved
anew for r (Eq. 12), is evaluated as is: what a fine-tune has left to gain. T91 only.

    python scripts/probe_warmstart.py --source ista-net_r0.25_np9_nf32 --ratios 0.1,0.4
"""

import argparse

import torch

from cs_bench.learned import trainset as ts_mod
from cs_bench.learned.nets import BlockOperator, build
from cs_bench.learned.qinit import qinit
from cs_bench.learned.train import val_psnr, warm_start
from cs_bench.learned.trainset import Recipe
from cs_bench.sensing import make_phi


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="ista-net_r0.25_np9_nf32")
    ap.add_argument("--arch", default="ista-net")
    ap.add_argument("--ratios", default="0.1,0.2,0.3,0.4,0.5,0.6")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = ts_mod.load(Recipe())
    for r in (float(s) for s in a.ratios.split(",")):
        Phi = make_phi(r, 0)
        Q = qinit(data.moment, Phi)
        op = BlockOperator(torch.tensor(Phi, dtype=torch.float32), torch.tensor(Q, dtype=torch.float32))
        net = build(a.arch, Phi.shape[0], 9, 32, "linear", 0.0)
        warm_start(net, a.arch, a.source)
        print(f"ratio {r:g}: warm start from {a.source}, step 0: val {val_psnr(net, op, data.val, 'cpu'):.2f} dB",
              flush=True)


if __name__ == "__main__":
    main()
