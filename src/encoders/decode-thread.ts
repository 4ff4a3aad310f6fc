// A decode thread (see decode-pool.ts): preprocesses the images it is handed, one at a time.
import { parentPort } from 'node:worker_threads';
import { preprocessToSlots, resultBuffers, type TensorTask } from './image-tensor.ts';

const port = parentPort!;
port.on('message', async ({ id, task }: { id: number; task: TensorTask }) => {
  const result = await preprocessToSlots(task);
  port.postMessage({ id, result }, resultBuffers(result));
});
