#!/usr/bin/env python3
"""Times the authors' PyTorch generators (random weights, batch 1, frontal camera) on one device: the
peer `gramhd bench model` is compared with on the same card. CHECKOUT is a copy of the authors'
repository (JeffreyXiang/GRAM-HD; its .py files suffice). Prints the median, best and first
(warm-up) time per image and, on CUDA, the peak allocated memory. torch's defaults stand: cuDNN
convolutions may use TF32 tensor cores (torch.backends.cudnn.allow_tf32), matrix products do not;
--no-tf32 turns TF32 off, so that float32 arithmetic is timed against float32 arithmetic.
Usage: time-reference.py --ref CHECKOUT --config NAME [--runs N] [--device cuda|cpu] [--no-tf32]"""
import argparse, os, sys, time
import torch

ap = argparse.ArgumentParser()
ap.add_argument('--ref', required=True)
ap.add_argument('--config', default='GRAM64_FFHQ')
ap.add_argument('--runs', type=int, default=5)
ap.add_argument('--device', default='cuda')
ap.add_argument('--no-tf32', action='store_true')
args = ap.parse_args()
if args.no_tf32:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
sys.path.insert(0, os.path.abspath(args.ref))
import configs
from generators import generators as G
dev = torch.device(args.device)
cfg = getattr(configs, args.config)
kw = {'representation_kwargs': cfg['generator']['representation']['kwargs'], 'renderer_kwargs': cfg['generator']['renderer']['kwargs']}
if 'super_resolution' in cfg['generator']:
    kw['super_resolution_kwargs'] = cfg['generator']['super_resolution']['kwargs']
torch.manual_seed(0)
g = getattr(G, cfg['generator']['class'])(**kw, **cfg['generator']['kwargs']).eval().to(dev)
z = torch.randn(1, 256, device=dev)
def sync():
    if dev.type == 'cuda': torch.cuda.synchronize()
times = []
with torch.no_grad():
    for i in range(args.runs + 1):
        sync(); t = time.perf_counter()
        g(z, **cfg['camera'], camera_origin=[0., 0., 1.])
        sync(); times.append(time.perf_counter() - t)
first = times[0]
times = sorted(times[1:])
peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else float('nan')
name = torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'
tf32 = 'TF32 convolutions' if torch.backends.cudnn.allow_tf32 and dev.type == 'cuda' else 'float32 only'
print(f'PEER {args.config} torch {torch.__version__} on {name} ({tf32}): median {times[len(times)//2]*1000:.1f} ms/image (min {times[0]*1000:.1f}, first (warm-up) {first*1000:.1f}), peak allocated {peak:.1f} MiB', flush=True)
