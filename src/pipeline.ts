// The stages in data-flow order (docs/architecture.md): corpus -> catalog -> embeddings -> indexes -> pairs
// -> annotations -> triples. Each stage runs only after every unit of the one before is complete.
import { AnnotateStage } from './stages/annotate.ts';
import { CatalogStage } from './stages/catalog.ts';
import { EmbedStage } from './stages/embed.ts';
import { EmitStage } from './stages/emit.ts';
import { ExportJsonlStage } from './stages/export-jsonl.ts';
import { IndexStage } from './stages/index.ts';
import { ManifestStage } from './stages/manifest.ts';
import { MineStage } from './stages/mine.ts';
import type { Stage } from './stages/stage.ts';

export function pipelineStages(): Stage<any>[] {
  return [
    new CatalogStage(),
    new ManifestStage(),
    new EmbedStage(),
    new IndexStage(),
    new MineStage(),
    new AnnotateStage(),
    new EmitStage(),
    new ExportJsonlStage(),
  ];
}

/** The pipeline's stages by name, for runners that receive a stage name (queue jobs). */
export function stagesByName(): Map<string, Stage<any>> {
  return new Map(pipelineStages().map((s) => [s.name, s]));
}
