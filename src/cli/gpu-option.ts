// `--gpu N` (megapairs run, megapairs worker) and $MEGAPAIRS_GPU: the device of this process's
// device-indexed execution provider (`cuda` becomes `cuda:N`), so one config serves every GPU worker
// of a node. Checked as the command starts: a device that is not a number, one the config names
// too (`cuda:1`), or one for providers that take none is a usage error (exit 2).
import type { Config } from '../config/schema.ts';
import { deviceOf, parseDeviceId, sessionSettings } from '../encoders/sessions.ts';
import { UsageError } from './usage-error.ts';

/** Puts `--gpu`'s device in the config; with `check`, refuses a device the providers cannot take. */
export function applyGpuOption(config: Config, value: string | undefined, check = true, env: NodeJS.ProcessEnv = process.env): void {
  try {
    if (value !== undefined) config.gpu = parseDeviceId(value, '--gpu');
    if (check && deviceOf(config, env)) sessionSettings(config, env);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
