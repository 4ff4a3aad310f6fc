// The base of the stages whose unit is one catalog part (embed, mine, annotate, emit): the units
// are the manifest's parts, named like the part files.
import { partName } from '../core/layout.ts';
import type { DoneMarker, Stage, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

export abstract class PartStage implements Stage<number> {
  abstract readonly name: string;
  abstract readonly after: readonly string[];
  abstract decidedBy(ctx: StageContext): Record<string, unknown> | Promise<Record<string, unknown>>;

  async plan(ctx: StageContext): Promise<number[]> {
    return (await shared(ctx).manifest()).parts.map((p) => p.number);
  }
  unitId(n: number): string {
    return partName(n);
  }
  abstract doneMarkers(ctx: StageContext, n: number): DoneMarker[];
  abstract run(ctx: StageContext, n: number): Promise<UnitResult>;
}
