// The `colour` built-in, standing in for visual_pattern: soft colour histograms and colour layout.
import { builtinModel, centre, hellinger, IMAGE_SIZE, l1Normalize, l2Normalize, PIXEL_VALUES } from './graph.ts';
import { attr, GraphBuilder, type ModelSpec } from '../onnx-writer.ts';

export interface ColourOptions {
  /** Palette levels per RGB channel: the prototypes are the levels^3 grid points (2: the cube's corners). */
  levels: number;
  /** Softmax temperature of the squared RGB distance to the prototypes. */
  temperature: number;
  /** Exponent of the chroma weight of a pixel in the chromatic histograms (0: unweighted). */
  chromaPower: number;
  /** Chromatic histograms pooled on these grids (cells per side; 1 = whole image), with weights. */
  grids: number[];
  gridWeights: number[];
  /** Weight of the histogram of all pixels (white and black included) over the whole image. */
  allWeight: number;
  /** Weight of the per-channel mean and standard deviation. */
  momentWeight: number;
  /** Power applied to the histograms (0.5: Hellinger). */
  power: number;
  centring: number;
}

export const COLOUR: ColourOptions = {
  levels: 2,
  temperature: 0.02,
  chromaPower: 1,
  grids: [2, 8],
  gridWeights: [0.15, 1],
  allWeight: 0,
  momentWeight: 0.1,
  power: 0.5,
  centring: 1,
};

export function colourModel(o: ColourOptions = COLOUR): ModelSpec {
  const g = new GraphBuilder();
  // 32 x 32 is plenty for colour statistics.
  const x = g.op('AveragePool', ['pixel_values'], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
  const side = IMAGE_SIZE / 2;

  // Soft assignment to the palette: softmax_k(-|x - c_k|^2 / T) = softmax_k((2 c_k.x - |c_k|^2) / T),
  // the |x|^2 term being the same for every k; so a 1x1 convolution and a softmax.
  const palette: number[][] = [];
  const step = 1 / (o.levels - 1);
  for (let r = 0; r < o.levels; r++) for (let gg = 0; gg < o.levels; gg++) for (let b = 0; b < o.levels; b++) palette.push([r * step, gg * step, b * step]);
  const P = palette.length;
  const assignW = palette.flatMap((c) => c.map((v) => (2 * v) / o.temperature));
  const assignB = palette.map((c) => -c.reduce((s, v) => s + v * v, 0) / o.temperature);
  const assignment = g.op('Softmax', [g.op('Conv', [x, g.floats('palette_w', [P, 3, 1, 1], assignW), g.floats('palette_b', [P], assignB)])], {
    axis: attr.int(1),
  });

  // Chroma (max - min channel) weights the chromatic histograms, so white, grey and black (the
  // background and outlines every emoji shares) do not swamp the colours that tell images apart.
  const chroma = g.op('Sub', [
    g.op('ReduceMax', [x], { axes: attr.ints([1]), keepdims: attr.int(1) }),
    g.op('ReduceMin', [x], { axes: attr.ints([1]), keepdims: attr.int(1) }),
  ]);
  const weight = g.op('Pow', [g.op('Add', [chroma, g.floats('eps', [], [1e-3])]), g.floats('chroma_power', [], [o.chromaPower])]);
  const weighted = g.op('Mul', [assignment, weight]);

  const flat = (t: string) => g.op('Flatten', [t], { axis: attr.int(1) });
  const scaled = (t: string, wgt: number) => g.op('Mul', [t, g.floats('block_weight', [], [wgt])]);
  const histogram = (t: string) => hellinger(g, l1Normalize(g, flat(t)), o.power);
  const blocks: string[] = [];
  let dim = 0;
  o.grids.forEach((cells, i) => {
    if (!o.gridWeights[i]) return;
    const k = side / cells;
    blocks.push(scaled(histogram(g.op('AveragePool', [weighted], { kernel_shape: attr.ints([k, k]), strides: attr.ints([k, k]) })), o.gridWeights[i]));
    dim += P * cells * cells;
  });
  if (o.allWeight) {
    blocks.push(scaled(histogram(g.op('GlobalAveragePool', [assignment])), o.allWeight));
    dim += P;
  }
  if (o.momentWeight) {
    // Colour moments: per-channel mean and standard deviation.
    const mean = flat(g.op('GlobalAveragePool', [x]));
    const meanSq = flat(g.op('GlobalAveragePool', [g.op('Mul', [x, x])]));
    const std = g.op('Sqrt', [g.op('Relu', [g.op('Sub', [meanSq, g.op('Mul', [mean, mean])])])]);
    blocks.push(scaled(g.op('Concat', [mean, std], { axis: attr.int(1) }), o.momentWeight));
    dim += 6;
  }
  const descriptor = blocks.length > 1 ? g.op('Concat', blocks, { axis: attr.int(1) }) : blocks[0];
  l2Normalize(g, centre(g, descriptor, o.centring), 'embedding');
  return builtinModel(
    'colour',
    g,
    [PIXEL_VALUES],
    dim,
    'megapairs built-in colour descriptor: chroma-weighted soft colour histograms on spatial grids and colour moments, centred, L2-normalised.',
  );
}
