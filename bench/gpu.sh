#!/usr/bin/env bash
# A prepared check for a GPU machine (Python with torch and onnxruntime-gpu; no Node, no network;
# well under 10 minutes): exports a ViT-B/16-sized random-weight image tower (fp32 and fp16) with
# tools/export_onnx.py, then measures onnxruntime's CUDA provider (images/s per batch size, and
# that the session really runs on CUDA), torch eager on the same GPU for reference, and PIL
# decode + preprocess images/s per CPU core (how many decode threads keep the GPU fed).
# Usage: bash bench/gpu.sh [out_dir]   (figures go to out_dir/gpu-bench.json and stdout)
set -euo pipefail
OUT_DIR="${1:-${OUT:-/tmp/megapairs-gpu}}"
mkdir -p "$OUT_DIR"
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not available"
PY="${PYTHON:-python3}"
timeout 240 "$PY" tools/export_onnx.py eva-clip-image --random --out "$OUT_DIR/vit-b16.onnx"
timeout 240 "$PY" tools/export_onnx.py eva-clip-image --random --fp16 --out "$OUT_DIR/vit-b16-fp16.onnx"
timeout 300 "$PY" - "$OUT_DIR" <<'PY'
import glob, json, os, sys, time
import numpy as np
import onnxruntime as ort
import torch

out = sys.argv[1]
res = {'onnxruntime': ort.__version__, 'torch': torch.__version__, 'available_providers': ort.get_available_providers(),
       'cuda': torch.cuda.is_available() and torch.cuda.get_device_name(0), 'cpu_cores': os.cpu_count(), 'runs': []}

def rate(fn, n, seconds=8.0):
    fn(); fn()
    done, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        fn(); done += n
    return done / (time.perf_counter() - t)

for name, dtype in (('vit-b16.onnx', np.float32), ('vit-b16-fp16.onnx', np.float16)):
    try:
        s = ort.InferenceSession(os.path.join(out, name), providers=['CUDAExecutionProvider'])
    except Exception as e:  # the reason is the figure
        res['runs'].append({'model': name, 'error': str(e)}); continue
    for batch in (1, 64, 256):
        x = np.random.rand(batch, 3, 224, 224).astype(dtype)
        # Pinned host input each call, as the embed stage feeds it (not IO binding).
        r = rate(lambda: s.run(['image_embeds'], {'pixel_values': x}), batch)
        res['runs'].append({'model': name, 'providers': s.get_providers(), 'batch': batch, 'images_per_s': round(r, 1)})
        print(res['runs'][-1], flush=True)

if torch.cuda.is_available():
    sys.path.insert(0, 'tools')
    from export_onnx import VisionTower
    m = VisionTower(224, 16, 768, 12, 12, 512).cuda().eval()
    for half in (False, True):
        mm = m.half() if half else m
        x = torch.randn(256, 3, 224, 224, device='cuda', dtype=torch.float16 if half else torch.float32)
        def step():
            with torch.no_grad(): mm(x)
            torch.cuda.synchronize()
        res['runs'].append({'model': 'torch eager ViT-B/16', 'fp16': half, 'batch': 256, 'images_per_s': round(rate(step, 256), 1)})
        print(res['runs'][-1], flush=True)

# PIL decode + resize + crop + normalise per core, on the parity fixtures (CLIP's transform).
sys.path.insert(0, 'tools')
from preprocess_reference import preprocess
imgs = sorted(glob.glob('test/fixtures/preprocess/*.jpg')) + sorted(glob.glob('test/fixtures/preprocess/*.png'))
case = dict(size=224, resize=224, crop='center', interpolation='bicubic', mean=[0.48, 0.46, 0.41], std=[0.27, 0.26, 0.28])
res['pil_preprocess_images_per_s_per_core'] = round(rate(lambda: [preprocess(p, case) for p in imgs], len(imgs), 5.0), 1)
print('PIL preprocess per core:', res['pil_preprocess_images_per_s_per_core'])
json.dump(res, open(os.path.join(out, 'gpu-bench.json'), 'w'), indent=1)
print(json.dumps(res))
PY
