// An encoder thread (see encoder-thread.ts): holds one encoder's onnxruntime session and runs its
// batches, from the images' tensor slots the decode threads made (image-tensor.ts) to the vectors'
// pooling and normalisation, so the thread that reads and feeds the decode threads never waits for
// inference.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { ImageSlot } from './image-tensor.ts';
import { OnnxEncoder, type Vectors } from './onnx-encoder.ts';
import type { ImageEncoderSpec, TextEncoderSpec } from './resolve.ts';
import type { SessionSettings } from './sessions.ts';

export type EncoderJob = { id: number; rows: Array<ImageSlot | undefined> } | { id: number; texts: string[] };
export type EncoderReply = { id: number; vectors: Vectors } | { id: number; error: string } | { ready: true; inputType: string } | { failed: string };

const { spec, settings } = workerData as { spec: ImageEncoderSpec | TextEncoderSpec; settings: SessionSettings };
const port = parentPort!;

async function encode(encoder: OnnxEncoder, job: EncoderJob): Promise<Vectors> {
  if ('texts' in job) return (encoder as OnnxEncoder<TextEncoderSpec>).encodeTexts(job.texts);
  const s = encoder.spec as ImageEncoderSpec;
  const slot = 3 * s.size * s.size;
  const n = job.rows.length;
  const data = encoder.io.input.type === 'float16' ? new Uint16Array(n * slot) : new Float32Array(n * slot);
  // A row that failed to decode stays zero, as writeChw leaves it; its vector is cleared by the stage.
  job.rows.forEach((px, i) => px && data.set(px, i * slot));
  return (encoder as OnnxEncoder<ImageEncoderSpec>).encodeImageTensor(data, n);
}

try {
  const encoder = await OnnxEncoder.open(spec, settings);
  // One batch at a time, in the order they came, from whichever thread: the session is this thread's alone.
  let chain = Promise.resolve();
  const serve = (from: MessagePort) => (job: EncoderJob) => {
    chain = chain.then(() =>
      encode(encoder, job).then(
        (vectors) => from.postMessage({ id: job.id, vectors } satisfies EncoderReply, [vectors.data.buffer as ArrayBuffer]),
        (err: Error) => from.postMessage({ id: job.id, error: err.message } satisfies EncoderReply),
      ),
    );
  };
  const fromParent = serve(port);
  // A unit thread's port (encoder-broker.ts) arrives as { connect }: its jobs are answered on it.
  port.on('message', (m: EncoderJob | { connect: MessagePort }) => ('connect' in m ? m.connect.on('message', serve(m.connect)) : fromParent(m)));
  port.postMessage({ ready: true, inputType: encoder.io.input.type } satisfies EncoderReply);
} catch (err) {
  port.postMessage({ failed: (err as Error).message } satisfies EncoderReply);
}
