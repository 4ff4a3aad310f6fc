// onnxruntime sessions: one per model file and settings per process (sessions are costly to create
// and safe to share between concurrent runs), created with the configured execution providers and
// thread counts. A provider that does not exist or does not load fails session creation with
// onnxruntime's own reason: a GPU run never falls back to CPU silently.
import os from 'node:os';
import ort from 'onnxruntime-node';
import type { Config } from '../config/schema.ts';

export type ExecutionProvider = string | { name: string; deviceId: number };

export interface SessionSettings {
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
  interOpThreads: number;
}

/** Where the providers came from, for messages: the config key, or the environment variable. */
export function providersSource(config: Config): string {
  return config.encoders.execution_providers ? 'encoders.execution_providers' : 'MEGAPAIRS_EXECUTION_PROVIDERS';
}

/**
 * `cuda`, `cuda:1` (device 1), `cpu`, `webgpu`, ... checked against the providers this
 * onnxruntime-node build knows; `where` names the config key in the error.
 */
export function parseExecutionProviders(names: readonly string[], where: string): ExecutionProvider[] {
  const known = ort.listSupportedBackends().map((b) => b.name);
  return names.map((raw) => {
    const m = /^([a-z0-9_-]+)(?::(\d+))?$/i.exec(raw.trim());
    const name = m?.[1].toLowerCase();
    if (!m || !known.includes(name!))
      throw new Error(
        `${where}: unknown execution provider "${raw}" (onnxruntime-node ${ort.env.versions.common} knows: ${known.join(', ')}; a device as cuda:1)`,
      );
    return m[2] !== undefined ? { name: name!, deviceId: Number(m[2]) } : name!;
  });
}

/** The session settings a config asks for. Thread count 0 splits the cores between the units that run at once. */
export function sessionSettings(config: Config, env: NodeJS.ProcessEnv = process.env): SessionSettings {
  const names = config.encoders.execution_providers ?? (env.MEGAPAIRS_EXECUTION_PROVIDERS ?? 'cpu').split(',').filter((s) => s.trim());
  const share = Math.max(1, Math.floor(os.availableParallelism() / config.runner.concurrency));
  return {
    executionProviders: parseExecutionProviders(names, providersSource(config)),
    intraOpThreads: config.encoders.intra_op_threads || share,
    interOpThreads: config.encoders.inter_op_threads,
  };
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/** The process's session for `model` with `settings`; a failed load is not cached. */
export function loadSession(model: string, settings: SessionSettings): Promise<ort.InferenceSession> {
  const key = `${model}\0${JSON.stringify(settings)}`;
  let s = sessions.get(key);
  if (!s) {
    const providers = settings.executionProviders.map((p) => (typeof p === 'string' ? p : { name: p.name, deviceId: p.deviceId }));
    s = ort.InferenceSession.create(model, {
      executionProviders: providers as ort.InferenceSession.ExecutionProviderConfig[],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: settings.intraOpThreads,
      interOpNumThreads: settings.interOpThreads,
    }).catch((err: Error) => {
      sessions.delete(key);
      const list = settings.executionProviders.map((p) => (typeof p === 'string' ? p : `${p.name}:${p.deviceId}`)).join(', ');
      throw new Error(`cannot load ONNX model ${model} with execution providers [${list}]: ${err.message}`);
    });
    sessions.set(key, s);
  }
  return s;
}
