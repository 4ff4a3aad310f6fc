// A decode thread (see decode-pool.ts): preprocesses the images it is handed, one at a time.
import { parentPort } from 'node:worker_threads';
import { preprocessImages, type PreprocessTask } from './preprocess-images.ts';

const port = parentPort!;
port.on('message', async ({ id, task }: { id: number; task: PreprocessTask }) => {
  const result = await preprocessImages(task);
  port.postMessage({ id, result }, 'pixels' in result ? [...new Set(result.pixels.map((p) => p.buffer as ArrayBuffer))] : []);
});
