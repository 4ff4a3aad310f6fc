#!/usr/bin/env bash
# The GPU check: runs the Node pipeline's embed stage on a GPU machine that has Python and torch but
# no Node and no network, within 5 minutes, and prints the issue's two tables side by side: the
# stage against its raw onnxruntime-node sessions and against PyTorch eager on the same GPU, and
# preprocessing per core.
#   Here (Node, the npm registry, apt):  bash bench/gpu/bundle.sh        -> .gpu-bundle (~55 MB)
#   There, from the repository root:      bash bench/gpu-check.sh [.gpu-bundle] [images, 4000]
# It exports architecture-faithful random-weight towers with tools/export_onnx.py --random (ViT-B/16,
# DINOv2 ViT-S/14, CLIP text; fp16), writes a corpus of 512x384 JPEGs (bench/gpu/gen-corpus.mjs),
# measures each raw session on $PROVIDER (default webgpu) at the stage's batch size
# (bench/gpu/raw.mjs), the same towers in PyTorch eager (bench/gpu/torch-anchor.py), preprocessing
# per core (bench/gpu/percore.mjs) and the embed stage itself (bench/gpu/stage.mjs) with the
# built-in encoders and with the three towers. Every figure also goes to $WORK/results.jsonl.
# CPU=1 stops before anything that needs the GPU (a rehearsal on any machine).
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=$(readlink -f "${1:-.gpu-bundle}")
images=${2:-4000}
batch=${BATCH:-128}
provider=${PROVIDER:-webgpu}
W=${WORK:-/tmp/megapairs-gpu-check}
PY=${PYTHON:-python3}
started=$SECONDS
step() { echo "[$((SECONDS - started))s] $*" >&2; }
mkdir -p "$W"
res=$W/results.jsonl
: >"$res"
. bench/gpu/setup.sh "$bundle"
# As bin/megapairs.js does: sharp's decodes share libuv's pool, which must not cap the decode threads.
cores=$(nproc)
export UV_THREADPOOL_SIZE=${UV_THREADPOOL_SIZE:-$((cores > 4 ? cores : 4))}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available" >&2

step "exporting the towers (torch) and writing $images JPEGs, at once"
export_tower() { [ -s "$W/$2.onnx" ] || timeout 240 "$PY" tools/export_onnx.py "$1" --random --fp16 ${3:-} --out "$W/$2.onnx" 2>>"$W/export.log"; }
[ -n "${CPU:-}" ] || {
  export_tower eva-clip-image vitb16-fp16 &
  export_tower dinov2 dinov2s-fp16 &
  export_tower clip-text text-fp16 &
}
[ -s "$W/corpus/00000.parquet" ] || timeout 240 node bench/gpu/gen-corpus.mjs "$APP" "$W/corpus" "$images" 500 >"$W/corpus.json" &
wait
step "preprocessing per core"
timeout 120 node bench/gpu/percore.mjs "$APP" "$W/corpus" 300 >>"$res"

builtin='{"decode_threads":0,"execution_providers":["cpu"]}'
towers=$(printf '{"decode_threads":0,"execution_providers":["%s"],"visual_semantic":{"model":"%s","preset":"clip","batch_size":%s},"visual_pattern":{"model":"%s","preset":"dinov2","pooling":"cls","batch_size":%s},"caption":{"model":"%s","tokenizer":"builtin:caption","attention_mask_name":null,"batch_size":%s}}' \
  "$provider" "$W/vitb16-fp16.onnx" "$batch" "$W/dinov2s-fp16.onnx" "$batch" "$W/text-fp16.onnx" "$batch")
step "embed stage, built-in encoders (cpu)"
timeout 120 node bench/gpu/stage.mjs "$APP" "$W/corpus" "$W/runs" builtin "$builtin" >>"$res"
if [ -z "${CPU:-}" ]; then
  for m in vitb16-fp16 dinov2s-fp16 text-fp16; do
    step "raw $m on $provider, batch $batch"
    timeout 60 node bench/gpu/raw.mjs "$APP" "$W/$m.onnx" "$provider" "$batch" 4 >>"$res"
  done
  step "embed stage, the three towers on $provider"
  timeout 150 node bench/gpu/stage.mjs "$APP" "$W/corpus" "$W/runs" towers "$towers" >>"$res"
  step "PyTorch eager anchor"
  timeout 90 "$PY" bench/gpu/torch-anchor.py "$PWD" 3 >>"$res"
fi
step "done"
"$PY" - "$res" "$provider" "$batch" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith('{')]
provider, batch = sys.argv[2], sys.argv[3]
get = lambda **k: next((r for r in rows if all(r.get(a) == b for a, b in k.items())), {})
f = lambda v: f'{v:,.1f}' if isinstance(v, (int, float)) else '-'
raw = {m: get(model=f'{m}.onnx', batch=int(batch)).get('per_s') for m in ('vitb16-fp16', 'dinov2s-fp16', 'text-fp16')}
together = 1 / sum(1 / v for v in raw.values()) if all(raw.values()) else None
towers, builtin = get(stage='towers'), get(stage='builtin')
torch = {n: get(torch_eager=n, fp16=True).get('per_s') for n in ('vitb16', 'dinov2s', 'text')}
def bound(s, r):
    b = min(x for x in (r, s.get('preprocess_per_s')) if x) if s else None
    return f'{s["per_s"] / b:.2f}' if s and b else '-'
left = [
    ('embed stage, three towers on ' + provider + f' (batch {batch})', f(towers.get('per_s'))),
    ('  preprocessing on all cores, same run', f(towers.get('preprocess_per_s'))),
    ('  stage / min(raw together, preprocessing)', bound(towers, together)),
    (f'raw {provider}: ViT-B/16 / DINOv2-S / text fp16', ' / '.join(f(v) for v in raw.values())),
    ('raw sessions together: 1 / sum(1/raw)', f(together)),
    ('embed stage, built-in encoders (cpu)', f(builtin.get('per_s'))),
    ('  preprocessing on all cores / stage ratio', f"{f(builtin.get('preprocess_per_s'))} / {bound(builtin, None)}"),
    ('PyTorch eager fp16: ViT-B/16 / DINOv2-S / text', ' / '.join(f(v) for v in torch.values())),
    ('raw ViT-B/16 / PyTorch eager', f'{raw["vitb16-fp16"] / torch["vitb16"]:.3f}' if raw['vitb16-fp16'] and torch['vitb16'] else '-'),
]
right = [(r['per_core'], f(r['per_s'])) for r in rows if 'per_core' in r]
settings = towers or builtin
print(f"\nGPU check: {settings.get('cores', '?')} cores, decode threads {settings.get('decode_threads', '?')}, load {settings.get('load', '?')}")
w1, w2 = max(len(a) for a, _ in left), max([len(a) for a, _ in right] + [10])
print(f"{'same machine, same run':<{w1}} | {'images/s':>22}    {'per core, one thread':<{w2}} | images/s")
print(f"{'-' * w1}-|-{'-' * 22}    {'-' * w2}-|---------")
for i in range(max(len(left), len(right))):
    a, b = left[i] if i < len(left) else ('', ''), right[i] if i < len(right) else ('', '')
    print(f'{a[0]:<{w1}} | {a[1]:>22}    {b[0]:<{w2}} | {b[1]}')
errors = [r for r in rows if 'error' in r]
for r in errors: print('error:', json.dumps(r)[:400])
PY
