// The `shape` built-in, standing in for visual_semantic: oriented gradient energy on a grid.
import { builtinModel, centre, hellinger, IMAGE_SIZE, l1Normalize, l2Normalize, PIXEL_VALUES } from './graph.ts';
import { attr, GraphBuilder, type ModelSpec } from '../onnx-writer.ts';

export interface ShapeOptions {
  /** Orientation channels over 180 degrees (unsigned: a dark-on-light edge = light-on-dark). */
  orientations: number;
  /** 0: half-cosine orientation tuning; up to 1: narrower tuning. */
  sharpness: number;
  /** Pooling grids (cells per side), each a pyramid level, with the weight of each level. */
  grids: number[];
  gridWeights: number[];
  /** Power applied to the histogram (0.5: Hellinger). */
  power: number;
  /** Strength of the per-vector centring. */
  centring: number;
}

export const SHAPE: ShapeOptions = { orientations: 6, sharpness: 0, grids: [4, 8], gridWeights: [0.5, 1], power: 0.5, centring: 1 };

export function shapeModel(o: ShapeOptions = SHAPE): ModelSpec {
  const g = new GraphBuilder();
  const S = IMAGE_SIZE;
  // "Ink" = 1 - luma: the white background is 0, so the convolutions' zero padding adds no edges.
  const ink = g.op('Conv', ['pixel_values', g.floats('luma_w', [1, 3, 1, 1], [-0.299, -0.587, -0.114]), g.floats('luma_b', [1], [1])]);

  // Sobel derivatives along x, y and the two diagonals.
  const sx = [-1, 0, 1, -2, 0, 2, -1, 0, 1].map((v) => v / 8);
  const sy = [-1, -2, -1, 0, 0, 0, 1, 2, 1].map((v) => v / 8);
  const diag = (sign: number) => sx.map((v, i) => (v + sign * sy[i]) / Math.SQRT2);
  const derivatives = g.op('Conv', [ink, g.floats('sobel_w', [4, 1, 3, 3], [...sx, ...sy, ...diag(1), ...diag(-1)])], {
    pads: attr.ints([1, 1, 1, 1]),
  });
  // Squared derivatives give the doubled-angle vector of the edge orientation phi:
  // gx^2 - gy^2 = m cos(2 phi), d45^2 - d135^2 = m sin(2 phi), gx^2 + gy^2 = m (energy).
  // Channel k = relu(m (cos(2 (phi - theta_k)) - sharpness)): a linear map of the squares.
  const squares = g.op('Mul', [derivatives, derivatives]);
  const w: number[] = [];
  for (let k = 0; k < o.orientations; k++) {
    const t = (2 * Math.PI * k) / o.orientations; // = 2 theta_k, theta_k spanning 180 degrees
    w.push(Math.cos(t) - o.sharpness, -Math.cos(t) - o.sharpness, Math.sin(t), -Math.sin(t));
  }
  const orientation = g.op('Relu', [g.op('Conv', [squares, g.floats('orientation_w', [o.orientations, 4, 1, 1], w)])]);

  const levels = o.grids.map((cells, i) => {
    const k = S / cells;
    const pooled = g.op('AveragePool', [orientation], { kernel_shape: attr.ints([k, k]), strides: attr.ints([k, k]) });
    const flat = g.op('Flatten', [pooled], { axis: attr.int(1) });
    // Squared, as the weight is meant for the square-rooted histogram.
    return g.op('Mul', [l1Normalize(g, flat), g.floats('level_weight', [], [o.gridWeights[i] ** 2])]);
  });
  const histogram = levels.length > 1 ? g.op('Concat', levels, { axis: attr.int(1) }) : levels[0];
  l2Normalize(g, centre(g, hellinger(g, histogram, o.power), o.centring), 'embedding');
  const dim = o.orientations * o.grids.reduce((n, c) => n + c * c, 0);
  return builtinModel(
    'shape',
    g,
    [PIXEL_VALUES],
    dim,
    'megapairs built-in shape descriptor: oriented luminance-gradient energy on a spatial grid, Hellinger, centred, L2-normalised.',
  );
}
