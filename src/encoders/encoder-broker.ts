// The main thread's side of sharing encoder threads with unit threads: each unit thread gets a
// port (thread-pool.ts passes it in workerData) on which it asks for an encoder by its settings;
// the main thread starts that encoder's thread once per process and answers with a new port to
// it. Its own module, loading encoder-thread.ts (and onnxruntime) only on a first request, so
// processes that never embed never load them.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { ImageEncoderSpec, TextEncoderSpec } from './resolve.ts';
import type { SessionSettings } from './sessions.ts';

/** A new broker channel: `serve` stays on this thread, `port` goes to the unit thread. */
export function encoderBroker(): { port: MessagePort } {
  const { port1, port2 } = new MessageChannel();
  port1.on('message', async ({ id, spec, settings }: { id: number; spec: ImageEncoderSpec | TextEncoderSpec; settings: SessionSettings }) => {
    try {
      const { ownEncoderThread } = await import('./encoder-thread.ts');
      const encoder = await ownEncoderThread(spec, settings);
      const port = encoder.connect();
      port1.postMessage({ id, port, inputType: encoder.inputType }, [port]);
    } catch (err) {
      port1.postMessage({ id, error: (err as Error).message });
    }
  });
  port1.unref();
  return { port: port2 };
}
