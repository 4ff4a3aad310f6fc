// The base of the stages whose unit is one catalog part (embed, mine, annotate, emit): the units
// are the manifest's parts, named like the part files.
import { partName } from '../artifacts/layout.ts';
import type { Stage, StageContext, UnitResult } from './stage.ts';

export abstract class PartStage implements Stage<number> {
  abstract readonly name: string;
  abstract readonly after: readonly string[];
  abstract decidedBy(ctx: StageContext): Record<string, unknown> | Promise<Record<string, unknown>>;

  async plan(ctx: StageContext): Promise<number[]> {
    return (await ctx.shared.manifest()).parts.map((p) => p.number);
  }
  unitId(n: number): string {
    return partName(n);
  }
  abstract isDone(ctx: StageContext, n: number): Promise<boolean>;
  abstract run(ctx: StageContext, n: number): Promise<UnitResult>;
}
