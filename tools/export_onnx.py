#!/usr/bin/env python3
"""Export the three encoders megapairs runs to ONNX, with the input/output names and pooling the
config expects (README, "Real models"):

  eva-clip-image  open_clip model.encode_image     pixel_values [N,3,S,S] -> image_embeds [N,D]
  clip-text       open_clip model.encode_text      input_ids [N,77] -> text_embeds [N,D]
                  (--hidden-states: last_hidden_state [N,77,W] for `pooling: eot`)
  dinov2          transformers AutoModel           pixel_values -> last_hidden_state [N,1+T,D]
                  (`pooling: cls`)

  python3 tools/export_onnx.py eva-clip-image --open-clip EVA02-B-16 --pretrained /weights/eva02_b16.bin --out visual.onnx
  python3 tools/export_onnx.py clip-text --open-clip EVA02-B-16 --pretrained /weights/eva02_b16.bin --out text.onnx
  python3 tools/export_onnx.py dinov2 --hf /weights/dinov2-base --out dinov2.onnx
  add --fp16 for float16 weights and I/O (the usual GPU export).

--random builds architecture-faithful towers in plain torch with random weights (no open_clip,
transformers or downloads), for tests and benches: a CLIP ViT-B/16 image tower (eva-clip-image),
a CLIP text transformer (clip-text) and a DINOv2 ViT-S/14 (dinov2). Sizes: --width/--layers/--heads.

fp16 is made by converting the fp32 export's float tensors and types to float16 (torch on CPU
cannot run half precision, so tracing in fp16 needs a GPU; the converted graph is the same graph).
Needs torch and onnx (Debian: python3-torch, python3-onnx).
"""
import argparse
import inspect
import os
import sys

import torch
from torch import nn


# ---- random-weight towers (plain torch) ----------------------------------------------------------

class Attention(nn.Module):
    """Multi-head self-attention in plain ops (torch 1.13's fused MHA does not export)."""

    def __init__(self, width, heads, causal):
        super().__init__()
        self.qkv = nn.Linear(width, width * 3)
        self.out = nn.Linear(width, width)
        self.heads = heads
        self.causal = causal

    def forward(self, x):
        n, t, w = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-1, -2)) * (w // self.heads) ** -0.5
        if self.causal:
            a = a + torch.full((t, t), float('-inf')).triu(1)
        return self.out((a.softmax(-1) @ v).transpose(1, 2).reshape(n, t, w))


class Block(nn.Module):
    def __init__(self, width, heads, causal=False):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads, causal)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, width * 4), nn.GELU(), nn.Linear(width * 4, width))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class VisionTower(nn.Module):
    """CLIP / DINOv2 ViT: patch embedding, class token, positions, pre-norm blocks."""

    def __init__(self, size, patch, width, layers, heads, embed_dim=None):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * width ** -0.5)
        self.positional_embedding = nn.Parameter(torch.randn((size // patch) ** 2 + 1, width) * 0.02)
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.Sequential(*[Block(width, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, embed_dim) * width ** -0.5) if embed_dim else None

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = self.blocks(self.ln_pre(torch.cat([cls, x], 1) + self.positional_embedding))
        x = self.ln_post(x)
        return x[:, 0] @ self.proj if self.proj is not None else x  # pooled embedding, or hidden states


class TextTower(nn.Module):
    """CLIP's text transformer: causal blocks; pooled at the end-of-text token (highest id)."""

    def __init__(self, vocab, context, width, layers, heads, embed_dim, hidden_states):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.randn(context, width) * 0.01)
        self.blocks = nn.Sequential(*[Block(width, heads, causal=True) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, embed_dim) * width ** -0.5)
        self.hidden_states = hidden_states

    def forward(self, ids):
        x = self.ln_final(self.blocks(self.token_embedding(ids) + self.positional_embedding))
        if self.hidden_states:
            return x
        return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ self.text_projection


# ---- real weights --------------------------------------------------------------------------------

def open_clip_model(name, pretrained):
    import open_clip  # noqa: only needed for real EVA-CLIP / CLIP weights

    model, _, _ = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    return model.eval()


class EncodeImage(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.encode_image(pixel_values)


class EncodeText(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model.encode_text(input_ids)


class HfHiddenStates(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).last_hidden_state


# ---- fp16 ----------------------------------------------------------------------------------------

def to_fp16(path):
    """Every float32 initializer, constant, cast and graph type in the model becomes float16."""
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper

    m = onnx.load(path)
    g = m.graph

    def half(t):
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))

    for t in g.initializer:
        half(t)
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                half(a.t)
            if n.op_type == 'Cast' and a.name == 'to' and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.FLOAT16
    del g.value_info[:]
    onnx.save(m, path)


# ---- main ----------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('tower', choices=['eva-clip-image', 'clip-text', 'dinov2'])
    p.add_argument('--out', required=True)
    p.add_argument('--random', action='store_true', help='random weights in plain torch, no downloads')
    p.add_argument('--open-clip', help='open_clip model name, e.g. EVA02-B-16, ViT-B-16')
    p.add_argument('--pretrained', help='open_clip pretrained tag or local checkpoint file')
    p.add_argument('--hf', help='transformers model folder (DINOv2)')
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--context', type=int, default=77)
    p.add_argument('--width', type=int)
    p.add_argument('--layers', type=int)
    p.add_argument('--heads', type=int)
    p.add_argument('--embed-dim', type=int, default=512)
    p.add_argument('--hidden-states', action='store_true', help='clip-text: give last_hidden_state [N,T,W] (pooling: eot)')
    p.add_argument('--fp16', action='store_true')
    p.add_argument('--opset', type=int, default=17)
    a = p.parse_args(argv)
    torch.manual_seed(0)

    if a.tower == 'eva-clip-image':
        model = VisionTower(a.size, 16, a.width or 768, a.layers or 12, a.heads or 12, a.embed_dim) if a.random else EncodeImage(open_clip_model(a.open_clip, a.pretrained))
        example, inp, out = torch.randn(2, 3, a.size, a.size), 'pixel_values', 'image_embeds'
    elif a.tower == 'dinov2':
        if a.random:
            model = VisionTower(a.size, 14, a.width or 384, a.layers or 12, a.heads or 6)
        else:
            from transformers import AutoModel

            model = HfHiddenStates(AutoModel.from_pretrained(a.hf).eval())
        example, inp, out = torch.randn(2, 3, a.size, a.size), 'pixel_values', 'last_hidden_state'
    else:
        if a.random:
            model = TextTower(49408, a.context, a.width or 512, a.layers or 12, a.heads or 8, a.embed_dim, a.hidden_states)
        else:
            clip = open_clip_model(a.open_clip, a.pretrained)
            model = EncodeText(clip)
        example, inp = torch.randint(0, 49407, (2, a.context)), 'input_ids'
        example[:, -1] = 49407  # the end-of-text token, the highest id
        out = 'last_hidden_state' if a.hidden_states else 'text_embeds'

    model.eval()
    extra = {}
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        extra['dynamo'] = False  # torch >= 2.9 defaults to the dynamo exporter, which needs onnxscript
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, (example,), a.out, input_names=[inp], output_names=[out], opset_version=a.opset, dynamic_axes={inp: {0: 'batch'}, out: {0: 'batch'}}, do_constant_folding=True, **extra)
    if a.fp16:
        to_fp16(a.out)
    params = sum(t.numel() for t in model.parameters())
    print(f'{a.out}: {a.tower} {"random" if a.random else "pretrained"} {"fp16" if a.fp16 else "fp32"}, {params / 1e6:.1f}M parameters, {inp} -> {out}', file=sys.stderr)


if __name__ == '__main__':
    main()
