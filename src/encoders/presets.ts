// Each image model family's published preprocessing, for `preset:` (explicit config keys win):
// - clip: OpenAI CLIP (and open_clip's OpenAI models): shortest side to 224, centre crop, bicubic,
//   OPENAI_DATASET_MEAN/STD.
// - eva-clip: EVA-CLIP (open_clip's EVA02 configs) uses the same transform and OpenAI statistics.
// - dinov2: DINOv2's evaluation transform: shortest side to 256, centre crop 224, bicubic, ImageNet
//   statistics (the resize keeps the 256/224 ratio at other sizes).
// - siglip: SigLIP (open_clip and Hugging Face's SiglipImageProcessor): squash to size x size,
//   bicubic, mean = std = 0.5.
import type { ImagePreprocess } from './image-preprocess.ts';

type Geometry = Pick<ImagePreprocess, 'crop' | 'interpolation' | 'mean' | 'std'> & { size: number; resize: (size: number) => number };

const OPENAI = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] } as Pick<ImagePreprocess, 'mean' | 'std'>;
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as Pick<ImagePreprocess, 'mean' | 'std'>;
const same = (size: number) => size;

export const PRESETS: Record<'clip' | 'eva-clip' | 'dinov2' | 'siglip', Geometry> = {
  clip: { size: 224, resize: same, crop: 'center', interpolation: 'bicubic', ...OPENAI },
  'eva-clip': { size: 224, resize: same, crop: 'center', interpolation: 'bicubic', ...OPENAI },
  dinov2: { size: 224, resize: (size) => Math.round((size * 256) / 224), crop: 'center', interpolation: 'bicubic', ...IMAGENET },
  siglip: { size: 224, resize: same, crop: 'squash', interpolation: 'bicubic', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
};

/** With no preset: CLIP's values, the most common export. */
export const DEFAULT_PRESET = PRESETS.clip;
