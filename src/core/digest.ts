// Canonical JSON and short digests: the same value gives the same key whatever order its object
// properties were written in, so a key changes only when a value that decides the artifact does.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level; undefined members are left out, as JSON does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** A 12-hex-digit sha256 of the value's canonical JSON: short enough for paths, ~2^48 values apart. */
export function digest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 12);
}

/** The dotted paths where two JSON values differ, each with both values, e.g. `mine.band: [0.8,0.96] -> [0.9,0.96]`. */
export function differences(before: unknown, after: unknown, at = ''): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => differences(before[k], after[k], at ? `${at}.${k}` : k));
  }
  if (canonicalJson(before) === canonicalJson(after)) return [];
  const show = (v: unknown) => {
    const text = v === undefined ? '(unset)' : canonicalJson(v);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  };
  return [`${at || '(value)'}: ${show(before)} -> ${show(after)}`];
}
