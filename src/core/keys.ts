// The names artifacts are keyed under (provenance/stage-keys.ts computes the keys): every stage's
// key by its name, and each part key of a stage keyed by part as `<stage>@<unit>`.

/** Stage keys by stage name, then part keys by `<stage>@<unit>`. */
export type StageKeys = Record<string, string>;

/** The name a part key travels under among the stage keys. */
export const partKeyName = (stage: string, unit: string) => `${stage}@${unit}`;

/** The stage and, for a part key, the unit of a name in StageKeys. */
export function splitKeyName(name: string): { stage: string; unit?: string } {
  const at = name.indexOf('@');
  return at < 0 ? { stage: name } : { stage: name.slice(0, at), unit: name.slice(at + 1) };
}

/** The names of the stages among StageKeys (part keys left out). */
export const stagesOf = (keys: StageKeys): string[] => Object.keys(keys).filter((name) => !splitKeyName(name).unit);

/** The run's own key: the last stage's, which chains every other. */
export const runKey = (keys: StageKeys, stageOrder: readonly string[]): string => keys[stageOrder[stageOrder.length - 1]];
