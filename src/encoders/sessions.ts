// onnxruntime sessions: one per model file and settings per process (sessions are costly to create
// and safe to share between concurrent runs), created with the configured execution providers and
// thread counts. A provider that does not exist or does not load fails session creation with
// onnxruntime's own reason: a GPU run never falls back to CPU silently. The device of a
// device-indexed provider comes from the config (`cuda:1`) or, so that one config serves every GPU
// worker of a node, from the process: `--gpu N` or $MEGAPAIRS_GPU turn a plain `cuda` into `cuda:N`.
import os from 'node:os';
import ort from 'onnxruntime-node';
import type { Config } from '../config/schema.ts';
import { explainWebgpuFailure, isWebgpuAdapterFailure } from './webgpu-needs.ts';

export type ExecutionProvider = string | { name: string; deviceId: number };

/** The environment variable that gives a process its device, as `--gpu N` does (for containers). */
export const GPU_ENV = 'MEGAPAIRS_GPU';
/** The providers that take a device id (onnxruntime-node's `deviceId` option). */
const DEVICE_INDEXED = ['cuda', 'tensorrt', 'dml'];

/** The process's device and where it was given, for messages: `--gpu 3` or `MEGAPAIRS_GPU=3`. */
export interface Device {
  id: number;
  from: string;
}

export interface SessionSettings {
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
  interOpThreads: number;
  /** Whether onnxruntime's threads spin-wait for work (encoders.spin_wait). */
  spinWait: boolean;
  /** Set when the device came from the process (--gpu, $MEGAPAIRS_GPU), to name it in errors. */
  device?: Device;
}

/** `cuda`, or `cuda:1` for a device. */
export const providerName = (p: ExecutionProvider) => (typeof p === 'string' ? p : `${p.name}:${p.deviceId}`);

/** A device number as `--gpu` or $MEGAPAIRS_GPU give it; `where` names which in the error. */
export function parseDeviceId(raw: string, where: string): number {
  if (!/^\d{1,4}$/.test(raw.trim())) throw new Error(`${where} must be a device number (0, 1, ...), not "${raw}"`);
  return Number(raw.trim());
}

/** This process's device: `--gpu N` (which the CLI puts in `config.gpu`), else $MEGAPAIRS_GPU, else none. */
export function deviceOf(config: Config, env: NodeJS.ProcessEnv = process.env): Device | undefined {
  if (config.gpu !== undefined) return { id: config.gpu, from: `--gpu ${config.gpu}` };
  const raw = env[GPU_ENV];
  if (raw === undefined || raw.trim() === '') return undefined;
  return { id: parseDeviceId(raw, GPU_ENV), from: `${GPU_ENV}=${raw.trim()}` };
}

/**
 * The providers with the process's device given to each device-indexed one. A device named both in
 * the providers (`cuda:1`) and by the process is refused, as is a device for providers that take
 * none: either would run somewhere other than where the operator said.
 */
export function withDevice(providers: ExecutionProvider[], device: Device | undefined, where: string): ExecutionProvider[] {
  if (!device) return providers;
  const explicit = providers.find((p) => typeof p !== 'string');
  if (explicit)
    throw new Error(
      `${where} names the device "${providerName(explicit)}" and ${device.from} names device ${device.id}: give the device in one place (a plain "${explicit.name}" with ${device.from}, or no ${device.from.split(/[ =]/)[0]})`,
    );
  if (!providers.some((p) => DEVICE_INDEXED.includes(providerName(p))) && providers.includes('webgpu')) throw new Error(webgpuTakesNoDevice(device.from));
  if (!providers.some((p) => DEVICE_INDEXED.includes(providerName(p))))
    throw new Error(
      `${device.from} names a device, but none of the execution providers [${providers.map(providerName).join(', ')}] from ${where} takes one (${DEVICE_INDEXED.join(', ')})`,
    );
  return providers.map((p) => (typeof p === 'string' && DEVICE_INDEXED.includes(p) ? { name: p, deviceId: device.id } : p));
}

/**
 * onnxruntime-node's WebGPU provider cannot be pointed at an adapter: its options are layout,
 * validation and CPU nodes only (a deviceId is refused as an unrecognized option, and the native
 * provider's deviceId names a WebGPU context, not an adapter); Dawn takes the first adapter Vulkan
 * lists. So a process picks its GPU by seeing only that one.
 */
export const webgpuTakesNoDevice = (from: string, drop = from.split(/[ =]/)[0]) =>
  `${from} names a device, but the webgpu provider cannot be given one (onnxruntime-node ${ort.env.versions.common} has no adapter option for it; it runs on the first GPU Vulkan lists): let the process see only its GPU instead (NVIDIA_VISIBLE_DEVICES=N for the container, or one nvidia.com/gpu per pod), and drop ${drop}`;

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
    if (m[2] !== undefined && name === 'webgpu') throw new Error(`${where}: ${webgpuTakesNoDevice(`"${raw}"`, 'the device (a plain "webgpu")')}`);
    return m[2] !== undefined ? { name: name!, deviceId: Number(m[2]) } : name!;
  });
}

/** The session settings a config asks for, on this process's device. Thread count 0 splits the cores between the units that run at once. */
export function sessionSettings(config: Config, env: NodeJS.ProcessEnv = process.env): SessionSettings {
  const names = config.encoders.execution_providers ?? (env.MEGAPAIRS_EXECUTION_PROVIDERS ?? 'cpu').split(',').filter((s) => s.trim());
  const share = Math.max(1, Math.floor(os.availableParallelism() / config.runner.concurrency));
  const where = providersSource(config);
  const device = deviceOf(config, env);
  return {
    executionProviders: withDevice(parseExecutionProviders(names, where), device, where),
    intraOpThreads: config.encoders.intra_op_threads || share,
    interOpThreads: config.encoders.inter_op_threads,
    spinWait: config.encoders.spin_wait,
    ...(device && { device }),
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
      // Spinning threads keep a core busy between operators and batches: faster for a session
      // alone, but they take the cores the decode threads need (README, "Real models": 1.33x on the built-ins).
      extra: { session: { intra_op: { allow_spinning: settings.spinWait ? '1' : '0' }, inter_op: { allow_spinning: settings.spinWait ? '1' : '0' } } },
    }).catch((err: Error) => {
      sessions.delete(key);
      const list = settings.executionProviders.map(providerName).join(', ');
      const device = settings.device ? ` (device ${settings.device.id} from ${settings.device.from})` : '';
      const why =
        settings.executionProviders.includes('webgpu') && isWebgpuAdapterFailure(err.message)
          ? `webgpu found no GPU: ${explainWebgpuFailure()}. onnxruntime said: `
          : '';
      throw new Error(`cannot load ONNX model ${model} with execution providers [${list}]${device}: ${why}${err.message}`);
    });
    sessions.set(key, s);
  }
  return s;
}

/**
 * Releases every session this thread holds. For a worker's main thread, which loads the models
 * once at start to check them and then leaves inference to its unit threads (each has its own).
 */
export async function releaseSessions(): Promise<void> {
  const held = [...sessions.values()];
  sessions.clear();
  await Promise.all(held.map((s) => s.then((session) => session.release()).catch(() => {})));
}
