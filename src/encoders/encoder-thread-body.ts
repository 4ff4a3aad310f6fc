// An encoder thread (see encoder-thread.ts): holds one encoder's onnxruntime session and runs its
// batches, tensor assembly (writeChw) and the vectors' pooling and normalisation included, so the
// thread that reads and feeds the decode threads never waits for inference.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { writeChw } from './image-preprocess.ts';
import { OnnxEncoder, type Vectors } from './onnx-encoder.ts';
import type { ImageEncoderSpec, TextEncoderSpec } from './resolve.ts';
import type { SessionSettings } from './sessions.ts';

export type EncoderJob = { id: number; rows: Array<Uint8Array | undefined> } | { id: number; texts: string[] };
export type EncoderReply = { id: number; vectors: Vectors } | { id: number; error: string } | { ready: true } | { failed: string };

const { spec, settings } = workerData as { spec: ImageEncoderSpec | TextEncoderSpec; settings: SessionSettings };
const port = parentPort!;

async function encode(encoder: OnnxEncoder, job: EncoderJob): Promise<Vectors> {
  if ('texts' in job) return (encoder as OnnxEncoder<TextEncoderSpec>).encodeTexts(job.texts);
  const s = encoder.spec as ImageEncoderSpec;
  const pixels = new Float32Array(job.rows.length * 3 * s.size * s.size);
  // A row that failed to decode stays zero; its vector is cleared by the stage.
  job.rows.forEach((px, i) => px && writeChw(px, s, pixels, i));
  return (encoder as OnnxEncoder<ImageEncoderSpec>).encodeImages(pixels, job.rows.length);
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
  port.postMessage({ ready: true } satisfies EncoderReply);
} catch (err) {
  port.postMessage({ failed: (err as Error).message } satisfies EncoderReply);
}
