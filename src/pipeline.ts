// The pipeline's registry: its stages in data-flow order, and the one place they are listed.
// corpus -> catalog -> embeddings -> shard routers (partition, when index.probe_shards > 0) ->
// each shard's rows (assign: members; route: queries) -> indexes -> partial neighbour lists
// (search; recall beside it) -> candidates (mine) -> pairs (select) -> annotations -> triples.
// Each stage says what it reads, its folder and its completion markers (src/core/stage.ts); the
// local order, the distributed phases and worker kinds, the layout's folders, retry-failed and
// the docs' tables (test/architecture.test.ts) are all derived from this list. A new stage is one
// file and one line here.
import type { Stage } from './core/stage.ts';
import { AnnotateStage } from './stages/annotate.ts';
import { AssignStage } from './stages/assign.ts';
import { CatalogStage } from './stages/catalog.ts';
import { EmbedStage } from './stages/embed.ts';
import { EmitStage } from './stages/emit.ts';
import { IndexStage } from './stages/index-build.ts';
import { JsonlStage } from './stages/jsonl.ts';
import { ManifestStage } from './stages/manifest.ts';
import { MineStage } from './stages/mine.ts';
import { PartitionStage } from './stages/partition.ts';
import { RecallStage } from './stages/recall.ts';
import { RouteStage } from './stages/route.ts';
import { SearchStage } from './stages/search.ts';
import { SelectStage } from './stages/select.ts';

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
export function stagesByName(stages: readonly Stage<any>[] = pipelineStages()): Map<string, Stage<any>> {
  return new Map(stages.map((s) => [s.name, s]));
}

/** Each stage's work folder (core/layout.ts keeps its artifacts under `<folder>/<key>/`). */
export function stageFolders(stages: readonly Stage<any>[] = pipelineStages()): Record<string, string> {
  return Object.fromEntries(stages.filter((s) => s.folder).map((s) => [s.name, s.folder!]));
}
