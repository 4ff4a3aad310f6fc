#!/usr/bin/python3
"""Reference image preprocessing, as CLIP / open_clip / DINOv2 / HF pipelines do it with PIL.

Writes test/fixtures/preprocess/: fixture images (generated here, deterministic), cases.json and one
reference tensor per case (float32 [3, size, size], .npy). test/parity.test.ts runs the project's
preprocessing on the same images and compares. Needs only PIL and numpy (Debian: python3-pil,
python3-numpy):

    /usr/bin/python3 tools/preprocess_reference.py [out_dir]

The pipeline is torchvision's for a PIL image, written out so torch is not needed:
Image.open -> convert("RGB") -> Resize(shortest side, interpolation) -> CenterCrop -> ToTensor ->
Normalize. Geometry follows torchvision's _compute_resized_output_size and center_crop exactly
(int() truncation of the long side, round() half to even for the crop offset).
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageCms, ImageDraw, ImageOps

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'preprocess')
RESAMPLE = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR, 'lanczos3': Image.LANCZOS}
CLIP = dict(mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711])
IMAGENET = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
HALF = dict(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])


# ---- fixture images -------------------------------------------------------------------------------

def scene(w, h, seed):
    """A photo-like RGB image: gradients, hard edges and noise, so every kernel difference shows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 127 + 120 * np.sin(x / (w / 7.0) + seed)
    g = 127 + 120 * np.cos(y / (h / 5.0))
    b = 255 * (x + y) / (w + h)
    a = np.stack([r, g, b], -1) + rng.normal(0, 18, (h, w, 3))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), 'RGB')
    d = ImageDraw.Draw(img)
    d.rectangle([w // 5, h // 4, w // 2, h // 2], fill=(250, 20, 30))
    d.ellipse([w // 2, h // 3, w - 5, h - 5], fill=(10, 40, 220), outline=(0, 0, 0), width=3)
    for i in range(0, w, 9):
        d.line([i, 0, i + h // 3, h // 3], fill=(255, 255, 255), width=1)
    return img


def png16(path, arr):
    """PIL cannot write 48-bit RGB PNGs: a minimal PNG writer for uint16 RGB."""
    h, w, _ = arr.shape
    raw = b''.join(b'\x00' + arr[i].astype('>u2').tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


def make_images():
    files = {}

    def save(name, img, **kw):
        img.save(os.path.join(OUT, name), **kw)
        files[name] = True

    save('landscape.jpg', scene(320, 240, 1), quality=90)
    save('portrait.jpg', scene(151, 227, 2), quality=85)
    # Transparent pixels keep colour under them: convert("RGB") shows it, a flatten would not.
    rgba = np.array(scene(140, 100, 3).convert('RGBA'))
    rgba[:, :, 3] = np.where(np.arange(140)[None, :] < 60, 0, 255).astype(np.uint8)
    rgba[30:60, 80:120, 3] = 128
    save('alpha.png', Image.fromarray(rgba, 'RGBA'))
    save('gray.jpg', scene(180, 120, 4).convert('L'), quality=90)
    save('cmyk.jpg', scene(160, 120, 5).convert('CMYK'), quality=90)
    # A Lab profile on RGB data: a loader that applies it changes every pixel; PIL ignores it.
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile('LAB')).tobytes()
    save('icc.jpg', scene(160, 120, 6), quality=90, icc_profile=lab)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": PIL's Image.open does not apply it
    save('exif-rotated.jpg', scene(160, 100, 7), quality=90, exif=exif.tobytes())
    save('palette.png', scene(120, 90, 8).quantize(32), transparency=0)
    save('small.png', scene(30, 20, 9))
    g16 = (np.linspace(0, 65535, 150 * 100).reshape(100, 150) * 0.01).astype(np.uint16)  # 0..655: PIL clips at 255
    Image.fromarray(g16, 'I;16').save(os.path.join(OUT, 'gray16.png'))
    files['gray16.png'] = True
    rgb16 = (np.asarray(scene(100, 70, 10), np.uint16) * 257 + np.arange(100, dtype=np.uint16)[None, :, None]).astype(np.uint16)
    png16(os.path.join(OUT, 'rgb16.png'), rgb16)
    files['rgb16.png'] = True
    return sorted(files)


# ---- the reference pipeline -----------------------------------------------------------------------

def resized_size(w, h, size):
    """torchvision.transforms.functional._compute_resized_output_size for an int size."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def center_crop(img, size):
    """torchvision.transforms.functional.center_crop on a PIL image (pads with 0 when smaller)."""
    w, h = img.size
    if size > w or size > h:
        pad = Image.new(img.mode, (max(w, size), max(h, size)), 0)
        pad.paste(img, ((max(w, size) - w) // 2, (max(h, size) - h) // 2))
        img, (w, h) = pad, pad.size
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def preprocess(path, case):
    img = Image.open(path)
    if case.get('exif_orientation') == 'apply':
        img = ImageOps.exif_transpose(img)
    img = img.convert('RGB')
    resample = RESAMPLE[case['interpolation']]
    if case['crop'] == 'squash':
        img = img.resize((case['size'], case['size']), resample)
    else:
        img = img.resize(resized_size(*img.size, case['resize']), resample)
        img = center_crop(img, case['size'])
    x = np.asarray(img, dtype=np.float32) / np.float32(255)
    x = (x - np.asarray(case['mean'], np.float32)) / np.asarray(case['std'], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    images = make_images()
    S = 40  # small tensors keep the fixtures small; geometry and kernels are the same at 224
    cases = []
    for image in images:
        cases.append(dict(image=image, size=S, resize=S, crop='center', interpolation='bicubic', **CLIP))
    cases += [
        dict(image='landscape.jpg', size=S, resize=46, crop='center', interpolation='bicubic', **IMAGENET),  # dinov2: 256 -> 224
        dict(image='landscape.jpg', size=S, resize=S, crop='center', interpolation='bilinear', **CLIP),
        dict(image='landscape.jpg', size=S, resize=S, crop='center', interpolation='lanczos3', **CLIP),
        dict(image='landscape.jpg', size=S, resize=S, crop='squash', interpolation='bicubic', **HALF),  # siglip
        dict(image='portrait.jpg', size=S, resize=33, crop='center', interpolation='bicubic', **CLIP),  # resize < size: zero padding
        dict(image='portrait.jpg', size=64, resize=64, crop='center', interpolation='bicubic', **CLIP),
        dict(image='exif-rotated.jpg', size=S, resize=S, crop='center', interpolation='bicubic', exif_orientation='apply', **CLIP),
    ]
    for i, c in enumerate(cases):
        c['reference'] = f'case-{i:02d}.npy'
        np.save(os.path.join(OUT, c['reference']), preprocess(os.path.join(OUT, c['image']), c))
    with open(os.path.join(OUT, 'cases.json'), 'w') as f:
        json.dump({'generator': 'tools/preprocess_reference.py', 'pillow': Image.__version__, 'numpy': np.__version__, 'cases': cases}, f, indent=1)
    print(f'{len(images)} images, {len(cases)} cases in {OUT}')


if __name__ == '__main__':
    main()
