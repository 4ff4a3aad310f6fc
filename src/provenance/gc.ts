// `megapairs gc`: removes work artifacts that no given config refers to, i.e. every stage folder
// and ledger folder under a key other than the configs' keys. Run records, storage markers and the
// request cache of annotation (content-addressed, reusable by any config) are kept.
import { LEDGER_FOLDER, ledgerFolder } from '../core/layout.ts';
import { stageFolders } from '../pipeline.ts';
import type { Storage } from '../storage/storage.ts';
import { splitKeyName, type StageKeys } from '../core/keys.ts';

export interface GcResult {
  /** "<folder>/<key>/" of every removed (or, dry, removable) key, with its file count. */
  removed: Array<{ folder: string; files: number }>;
  kept: string[];
}

/** Keys the configs use, per stage; the work storage's other stage keys go. */
export async function collectGarbage(work: Storage, keep: StageKeys[], opts: { dryRun?: boolean } = {}): Promise<GcResult> {
  const folders = stageFolders();
  const wanted = new Set<string>();
  for (const keys of keep) {
    for (const [name, key] of Object.entries(keys)) {
      const { stage } = splitKeyName(name); // a part key's folder is its stage's
      wanted.add(`${folders[stage]}/${key}/`);
      wanted.add(ledgerFolder(stage, key));
    }
    // Ledgers of steps outside the pipeline sit under the key of the stage they follow.
    wanted.add(ledgerFolder('export_images', keys.jsonl));
  }
  const byFolder = new Map<string, string[]>();
  const add = (folder: string, key: string) => byFolder.set(folder, [...(byFolder.get(folder) ?? []), key]);
  for (const top of Object.values(folders)) {
    for await (const key of work.list(`${top}/`)) {
      const [, k] = key.split('/');
      if (k) add(`${top}/${k}/`, key);
    }
  }
  for await (const key of work.list(`${LEDGER_FOLDER}/`)) {
    const [, stage, k] = key.split('/');
    if (stage && k) add(ledgerFolder(stage, k), key);
  }
  const result: GcResult = { removed: [], kept: [] };
  for (const [folder, keys] of [...byFolder].sort(([a], [b]) => a.localeCompare(b))) {
    if (wanted.has(folder)) {
      result.kept.push(folder);
      continue;
    }
    if (!opts.dryRun) for (const key of keys) await work.delete(key);
    result.removed.push({ folder, files: keys.length });
  }
  return result;
}
