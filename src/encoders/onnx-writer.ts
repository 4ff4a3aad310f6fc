// A minimal ONNX ModelProto serialiser, so the project can ship models it generates by code without
// a protobuf dependency. It writes the protobuf wire format by hand (varints and length-delimited
// fields) using the field numbers of onnx/onnx.proto, and covers only what the built-in models need:
// nodes with attributes, float32 / int64 initializers, typed inputs and outputs with symbolic dims.

/** Element types of graph inputs and outputs (TensorProto.DataType numbers); fp16 and int32 for test exports. */
const DATA_TYPE = { float32: 1, int32: 6, int64: 7, float16: 10 } as const;
export type ElementType = keyof typeof DATA_TYPE;

/** AttributeProto.AttributeType numbers. */
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

export interface TensorValue {
  name: string;
  /** Initializers are float32 or int64 only. */
  type: 'float32' | 'int64';
  dims: number[];
  data: Float32Array | BigInt64Array;
}

export type AttributeValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorValue };

/** Attribute constructors: `{ axis: attr.int(1), pads: attr.ints([1, 1, 1, 1]) }`. */
export const attr = {
  int: (value: number): AttributeValue => ({ kind: 'int', value }),
  float: (value: number): AttributeValue => ({ kind: 'float', value }),
  ints: (value: number[]): AttributeValue => ({ kind: 'ints', value }),
  floats: (value: number[]): AttributeValue => ({ kind: 'floats', value }),
  string: (value: string): AttributeValue => ({ kind: 'string', value }),
  tensor: (value: TensorValue): AttributeValue => ({ kind: 'tensor', value }),
};

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  /** Written in insertion order, so the bytes are deterministic. */
  attributes?: Record<string, AttributeValue>;
}

/** A graph input or output: a tensor of `type` whose dims are sizes or symbolic names ('batch'). */
export interface ValueSpec {
  name: string;
  type: ElementType;
  shape: Array<number | string>;
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  initializers: TensorValue[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  doc?: string;
}

export interface ModelSpec {
  graph: GraphSpec;
  /** Defaults: ir_version 8, opset 17 of the default ("ai.onnx") domain. */
  irVersion?: number;
  opset?: number;
  producerName?: string;
  producerVersion?: string;
  doc?: string;
  /** Written as metadata_props, in insertion order. */
  metadata?: Record<string, string>;
}

// ---- protobuf wire format -------------------------------------------------------------------

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LENGTH_DELIMITED = 2;

/** Accumulates one protobuf message; nested messages are encoded separately and embedded as bytes. */
class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private pending: number[] = [];

  private flushPending(): void {
    if (this.pending.length) {
      this.chunks.push(Uint8Array.from(this.pending));
      this.pending = [];
    }
  }

  private rawVarint(value: number | bigint): void {
    // int64 fields are two's complement on 64 bits: negatives take ten bytes.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.pending.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.pending.push(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.rawVarint((field << 3) | wire);
  }

  varint(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.rawVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.pending.push(...b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LENGTH_DELIMITED);
    this.rawVarint(value.length);
    this.flushPending();
    this.chunks.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: ProtoWriter): this {
    return this.bytes(field, value.finish());
  }

  /** Repeated scalars in packed form (one length-delimited field). */
  packedVarints(field: number, values: Array<number | bigint>): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.rawVarint(v);
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: number[]): this {
    const b = new Uint8Array(values.length * 4);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    this.flushPending();
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

// ---- ONNX messages (field numbers from onnx.proto) ------------------------------------------

/** Little-endian raw bytes, whatever the host's byte order. */
function rawData(t: TensorValue): Uint8Array {
  const width = t.type === 'float32' ? 4 : 8;
  const out = new Uint8Array(t.data.length * width);
  const view = new DataView(out.buffer);
  if (t.data instanceof Float32Array) t.data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  else t.data.forEach((v, i) => view.setBigInt64(i * 8, v, true));
  return out;
}

function tensorProto(t: TensorValue): ProtoWriter {
  const expected = t.dims.reduce((a, b) => a * b, 1);
  if (expected !== t.data.length) throw new Error(`tensor ${t.name}: dims [${t.dims}] need ${expected} values, got ${t.data.length}`);
  if ((t.type === 'float32') !== t.data instanceof Float32Array) throw new Error(`tensor ${t.name}: data does not match type ${t.type}`);
  const w = new ProtoWriter();
  if (t.dims.length) w.packedVarints(1, t.dims); // dims
  w.varint(2, DATA_TYPE[t.type]); // data_type
  w.string(8, t.name); // name
  w.bytes(9, rawData(t)); // raw_data
  return w;
}

function attributeProto(name: string, a: AttributeValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name); // name
  w.varint(20, ATTRIBUTE_TYPE[a.kind]); // type
  switch (a.kind) {
    case 'float':
      return w.float(2, a.value); // f
    case 'int':
      return w.varint(3, a.value); // i
    case 'string':
      return w.string(4, a.value); // s
    case 'tensor':
      return w.message(5, tensorProto(a.value)); // t
    case 'floats':
      return w.packedFloats(7, a.value); // floats
    case 'ints':
      return w.packedVarints(8, a.value); // ints
  }
}

function nodeProto(n: NodeSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i); // input
  for (const o of n.outputs) w.string(2, o); // output
  if (n.name) w.string(3, n.name); // name
  w.string(4, n.op); // op_type
  for (const [k, a] of Object.entries(n.attributes ?? {})) w.message(5, attributeProto(k, a)); // attribute
  return w;
}

function valueInfoProto(v: ValueSpec): ProtoWriter {
  const shape = new ProtoWriter(); // TensorShapeProto
  for (const d of v.shape) {
    const dim = new ProtoWriter(); // TensorShapeProto.Dimension: dim_value = 1, dim_param = 2
    if (typeof d === 'number') dim.varint(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().varint(1, DATA_TYPE[v.type]).message(2, shape); // elem_type, shape
  const type = new ProtoWriter().message(1, tensorType); // TypeProto.tensor_type
  return new ProtoWriter().string(1, v.name).message(2, type); // name, type
}

function graphProto(g: GraphSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, nodeProto(n)); // node
  w.string(2, g.name); // name
  for (const t of g.initializers) w.message(5, tensorProto(t)); // initializer
  if (g.doc) w.string(10, g.doc); // doc_string
  for (const v of g.inputs) w.message(11, valueInfoProto(v)); // input
  for (const v of g.outputs) w.message(12, valueInfoProto(v)); // output
  return w;
}

/** Serialises a model to the bytes of an .onnx file. */
export function encodeModel(m: ModelSpec): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, m.irVersion ?? 8); // ir_version
  w.string(2, m.producerName ?? 'megapairs'); // producer_name
  if (m.producerVersion) w.string(3, m.producerVersion); // producer_version
  if (m.doc) w.string(6, m.doc); // doc_string
  w.message(7, graphProto(m.graph)); // graph
  const opset = new ProtoWriter().string(1, '').varint(2, m.opset ?? 17); // OperatorSetIdProto: domain, version
  w.message(8, opset); // opset_import
  for (const [key, value] of Object.entries(m.metadata ?? {})) {
    w.message(14, new ProtoWriter().string(1, key).string(2, value)); // metadata_props
  }
  return w.finish();
}

// ---- a small builder, so graphs read as a sequence of ops -----------------------------------

/**
 * Collects nodes and initializers with generated, unique value names:
 * `const y = g.op('Relu', [x])` adds a node and returns the name of its output.
 */
export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorValue[] = [];
  private counter = 0;

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** A float32 constant (initializer); returns its name. */
  floats(prefix: string, dims: number[], data: ArrayLike<number>): string {
    const name = this.fresh(prefix);
    this.initializers.push({ name, type: 'float32', dims, data: Float32Array.from(data) });
    return name;
  }

  /** An int64 constant (initializer); returns its name. */
  int64s(prefix: string, dims: number[], data: ArrayLike<number>): string {
    const name = this.fresh(prefix);
    this.initializers.push({ name, type: 'int64', dims, data: BigInt64Array.from(Array.from(data), (v) => BigInt(v)) });
    return name;
  }

  /** Adds a one-output node; `output` names it (e.g. a graph output), otherwise a fresh name. */
  op(op: string, inputs: string[], attributes?: Record<string, AttributeValue>, output?: string): string {
    const out = output ?? this.fresh(op.toLowerCase());
    this.nodes.push({ op, inputs, outputs: [out], attributes });
    return out;
  }
}
