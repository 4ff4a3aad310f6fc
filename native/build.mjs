// Builds native/'s addon (PIL's resampler at native speed: build/Release/preprocess.node) on
// `npm install` / `npm ci`, with the node-gyp that npm brings. A failed build (no compiler, no
// Node headers) does not fail the install: the JavaScript resampler in src/encoders/resample.ts
// gives the same pixels, slower, and preflight says which one is in use.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const r = spawnSync(cmd, args, { cwd: dir, stdio: 'inherit' });
if (r.status !== 0)
  console.warn(
    `megapairs: the native preprocessing addon did not build (${r.error?.message ?? `node-gyp exited ${r.status}`}); images are resized by the JavaScript fallback (same pixels, about 3x slower). Rebuild with: npm run build:native`,
  );
