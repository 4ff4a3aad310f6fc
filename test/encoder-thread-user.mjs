// A stand-in unit thread for test/shared-resources.test.ts: asks for an encoder through the broker
// port in its workerData, as a unit thread of thread-pool.ts does, and embeds the texts it is given.
import { register } from 'tsx/esm/api';

register();
const { parentPort, workerData } = await import('node:worker_threads');
const { encoderThread, EncoderThread } = await import('../src/encoders/encoder-thread.ts');
const encoder = await encoderThread(workerData.spec, workerData.settings);
const { data, dim } = await encoder.encodeTexts(workerData.texts);
parentPort.postMessage({ data, dim, startedHere: EncoderThread.started });
