// The stages in data-flow order (docs/architecture.md): corpus -> catalog -> embeddings -> shard
// routers (partition, when index.probe_shards > 0) -> each shard's rows (assign: members; route:
// queries) -> indexes -> partial neighbour lists (search; recall beside it) -> candidates (mine) ->
// pairs (select) -> annotations -> triples. Each stage runs only after every unit of the one before is complete.
import { AnnotateStage } from './stages/annotate.ts';
import { AssignStage } from './stages/assign.ts';
import { CatalogStage } from './stages/catalog.ts';
import { EmbedStage } from './stages/embed.ts';
import { EmitStage } from './stages/emit.ts';
import { IndexStage } from './stages/index-build.ts';
import { JsonlStage } from './stages/jsonl.ts';
import { ManifestStage } from './stages/manifest.ts';
import { PartitionStage } from './stages/partition.ts';
import { MineStage } from './stages/mine.ts';
import { RecallStage } from './stages/recall.ts';
import { RouteStage } from './stages/route.ts';
import { SearchStage } from './stages/search.ts';
import { SelectStage } from './stages/select.ts';
import type { Stage } from './stages/stage.ts';

export function pipelineStages(): Stage<any>[] {
  return [
    new CatalogStage(),
    new ManifestStage(),
    new EmbedStage(),
    new PartitionStage(),
    new AssignStage(),
    new RouteStage(),
    new IndexStage(),
    new SearchStage(),
    new RecallStage(),
    new MineStage(),
    new SelectStage(),
    new AnnotateStage(),
    new EmitStage(),
    new JsonlStage(),
  ];
}

/** The pipeline's stages by name, for runners that receive a stage name (queue jobs). */
export function stagesByName(): Map<string, Stage<any>> {
  return new Map(pipelineStages().map((s) => [s.name, s]));
}
