#!/usr/bin/env bash
# Issue 10's end-to-end check with real exports: architecture-faithful random-weight towers from
# tools/export_onnx.py (an fp16 EVA-CLIP-style ViT-B/16 image tower, a hidden-state-only DINOv2
# ViT-S/14 with `pooling: cls`, `resize: 256`, `size: 224`, a CLIP text transformer with `pooling:
# eot`) run through the whole pipeline on a 60-image sample; prints the run's summary and exit code.
# Needs python3 with torch and onnx (Debian: python3-torch python3-onnx). Usage: bench/exports-e2e.sh [dir]
set -euo pipefail
dir=${1:-$(mktemp -d /tmp/megapairs-exports-XXXXXX)}
cd "$(dirname "$0")/.."
mkdir -p "$dir"
# $PYTHON, else the first of python3 and Debian's /usr/bin/python3 that has torch.
py=${PYTHON:-python3}
$py -c "import torch, onnx" 2>/dev/null || py=/usr/bin/python3
[ -f "$dir/visual-fp16.onnx" ] || $py tools/export_onnx.py eva-clip-image --random --fp16 --out "$dir/visual-fp16.onnx"
[ -f "$dir/dinov2.onnx" ] || $py tools/export_onnx.py dinov2 --random --out "$dir/dinov2.onnx"
[ -f "$dir/text.onnx" ] || $py tools/export_onnx.py clip-text --random --hidden-states --out "$dir/text.onnx"
npx tsx src/cli/main.ts sample --out "$dir/sample" --limit 60 --shard-size 30
npx tsx src/cli/main.ts models --out "$dir/builtin" # the CLIP-format BPE tokenizer.json
cat > "$dir/config.yaml" <<YAML
run: { name: exports-e2e }
input: { path: $dir/sample }
work: $dir/work
output: $dir/output
encoders:
  visual_semantic: { model: $dir/visual-fp16.onnx, preset: eva-clip, batch_size: 16 }
  visual_pattern: { model: $dir/dinov2.onnx, preset: dinov2, resize: 256, size: 224, pooling: cls, output_name: last_hidden_state, batch_size: 16 }
  caption: { model: $dir/text.onnx, tokenizer: $dir/builtin/builtin-v2-caption-tokenizer.json, max_length: 77, attention_mask_name: null, output_name: last_hidden_state, pooling: eot, batch_size: 32 }
# Random weights give no meaningful similarities: a wide band so that pairs are mined at all.
mine: { band: [0.3, 0.999] }
YAML
npx tsx src/cli/main.ts run --config "$dir/config.yaml"
