// Module resolution hooks for production-imports.mjs (they run on the loader's own thread).
import { appendFileSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const devPackages = Object.keys(pkg.devDependencies ?? {});
const demoOnly = /\/src\/(encoders\/builtin(\.[jt]s|\/)|encoders\/onnx-writer\.[jt]s|sample\/)/;

function forbidden(url) {
  if (demoOnly.test(url)) return 'demo-only code';
  const dep = devPackages.find((name) => url.includes(`/node_modules/${name}/`));
  return dep ? `the dev dependency ${dep}` : undefined;
}

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  const what = forbidden(result.url);
  if (what) {
    const line = `${what}: ${result.url} (imported by ${context.parentURL})`;
    if (process.env.MEGAPAIRS_FORBIDDEN_LOG) appendFileSync(process.env.MEGAPAIRS_FORBIDDEN_LOG, `${line}\n`);
    throw new Error(`production path loads ${line}`);
  }
  return result;
}
