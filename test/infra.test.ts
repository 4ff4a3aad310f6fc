// The deployment files: every Kubernetes manifest validates against the Kubernetes (and KEDA)
// schemas of kubernetes-models; the pieces agree with each other and with the code (the config in
// the ConfigMap parses with the real schema, each worker kind's ScaledObject scales on exactly the
// stages that kind serves, termination waits for --grace); the Dockerfiles follow the image rules;
// the images' health check answers from a real HTTP server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { queuesOfKind } from '../src/runner/distributed/kinds.ts';
import { CONTROL, STAGE_NAMES } from '../src/runner/distributed/queues.ts';
import { repoRoot } from './helpers.ts';

const k8sDir = path.join(repoRoot, 'infra', 'k8s');
const WORKER_KINDS = ['gpu', 'cpu', 'annotate'];

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: any };
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  file: string;
}

const kustomization = parse(readFileSync(path.join(k8sDir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
const manifests: Manifest[] = kustomization.resources.flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(k8sDir, file), 'utf8'))
    .map((doc) => doc.toJS())
    .filter(Boolean)
    .map((obj) => ({ ...obj, file })),
);
const byKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const named = (kind: string, name: string) => {
  const m = manifests.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(m, `no ${kind} named ${name}`);
  return m;
};
const workerOf = (kind: string) => named('Deployment', `megapairs-worker-${kind}`);
const runConfig = parseConfig(parse(named('ConfigMap', 'megapairs-config').data!['run.yaml']));

/** The kubernetes-models module holding an apiVersion's classes. */
const MODELS: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'batch/v1': 'kubernetes-models/batch/v1',
  'keda.sh/v1alpha1': '@kubernetes-models/keda/keda.sh/v1alpha1',
};

test('kustomization.yaml lists every manifest in infra/k8s', () => {
  const files = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual([...kustomization.resources].sort(), files.sort());
});

test('every manifest validates against its Kubernetes or KEDA schema', async () => {
  assert.ok(manifests.length >= 10);
  for (const m of manifests) {
    const where = `${m.file}: ${m.kind} ${m.metadata?.name}`;
    const module = MODELS[m.apiVersion];
    assert.ok(module, `${where}: no schema for apiVersion ${m.apiVersion}`);
    const Model = (await import(module))[m.kind];
    assert.ok(Model, `${where}: ${m.apiVersion} has no kind ${m.kind}`);
    const { file: _, ...obj } = m;
    assert.doesNotThrow(() => new Model(obj).validate(), where);
  }
});

test('the validation rejects what Kubernetes would', async () => {
  const { Deployment } = await import('kubernetes-models/apps/v1');
  const good = structuredClone(workerOf('cpu'));
  const { file: _, ...obj } = good;
  obj.spec.template.spec.terminationGracePeriodSeconds = 'forty';
  assert.throws(() => new Deployment(obj).validate(), /terminationGracePeriodSeconds must be integer/);
});

test('the ConfigMap holds a valid distributed run config that points at the Redis Service', () => {
  assert.equal(runConfig.runner.kind, 'distributed');
  const redis = named('Service', 'megapairs-redis');
  assert.equal(new URL(runConfig.redis.url!).hostname, redis.metadata.name);
  assert.equal(new URL(runConfig.redis.url!).port, String(redis.spec.ports[0].port));
  // The keys the config names come from the Secret every pod loads.
  const secret = named('Secret', 'megapairs-keys');
  for (const key of [runConfig.redis.password_env, runConfig.annotate.openai!.api_key_env]) assert.ok(key in secret.stringData!, `${key} is not in the Secret`);
});

/** The pod spec's one container, its args and the value after a flag. */
function container(m: Manifest) {
  const pod = m.spec.template.spec;
  assert.equal(pod.containers.length, 1, `${m.metadata.name}: one container`);
  const c = pod.containers[0];
  const flag = (name: string) => {
    const i = c.args.indexOf(name);
    return i < 0 ? undefined : c.args[i + 1];
  };
  return { pod, c, flag };
}

function checkPodBasics(m: Manifest) {
  const { pod, c, flag } = container(m);
  const where = m.metadata.name;
  assert.equal(flag('--config'), '/etc/megapairs/run.yaml', where);
  const configVolume = pod.volumes.find((v: any) => v.configMap)?.configMap.name;
  assert.equal(configVolume, 'megapairs-config', where);
  assert.ok(
    c.volumeMounts.some((v: any) => v.mountPath === '/etc/megapairs'),
    where,
  );
  assert.ok(
    c.envFrom.some((e: any) => e.secretRef?.name === 'megapairs-keys'),
    `${where}: keys from the Secret`,
  );
  // The metrics port: one variable for the flag, the container port and the scrape annotation.
  const port = c.env.find((e: any) => e.name === 'MEGAPAIRS_METRICS_PORT')?.value;
  assert.equal(flag('--metrics-port'), '$(MEGAPAIRS_METRICS_PORT)', where);
  // Metrics listen on 127.0.0.1 unless told: a pod must say 0.0.0.0 for Prometheus to reach it.
  assert.equal(flag('--metrics-host'), '0.0.0.0', where);
  if (c.livenessProbe)
    assert.equal(c.livenessProbe.httpGet.path, '/healthz', `${where}: the probe reads /healthz, which answers while the worker waits for a run`);
  assert.equal(String(c.ports.find((p: any) => p.name === 'metrics').containerPort), port, where);
  assert.equal(m.spec.template.metadata.annotations['prometheus.io/port'], port, where);
  assert.equal(pod.securityContext.runAsNonRoot, true, where);
  assert.ok(pod.securityContext.runAsUser > 0, where);
}

test('a Deployment per worker kind, each waiting out --grace before SIGKILL', () => {
  const kinds = byKind('Deployment').map((d) => container(d).c.args.slice(0, 2));
  assert.deepEqual(
    kinds.map(([cmd]) => cmd),
    kinds.map(() => 'worker'),
  );
  assert.deepEqual(kinds.map(([, kind]) => kind).sort(), [...WORKER_KINDS].sort());
  for (const kind of WORKER_KINDS) {
    const d = workerOf(kind);
    checkPodBasics(d);
    const { pod, flag } = container(d);
    const grace = Number(flag('--grace'));
    assert.ok(grace > 0, `${kind}: --grace is set`);
    assert.ok(
      pod.terminationGracePeriodSeconds >= grace + 10,
      `${kind}: terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} leaves no margin after --grace ${grace}`,
    );
  }
});

test('the gpu worker asks for a GPU on a GPU node and runs the CUDA image', () => {
  const { pod, c } = container(workerOf('gpu'));
  assert.equal(c.resources.limits['nvidia.com/gpu'], '1');
  assert.ok(Object.keys(pod.nodeSelector).some((k) => k.startsWith('nvidia.com/')));
  assert.equal(c.image, 'megapairs-cuda');
  // webgpu needs the driver's Vulkan ICD, which the NVIDIA runtime mounts only for `graphics`.
  assert.match(c.env.find((e: { name: string }) => e.name === 'NVIDIA_DRIVER_CAPABILITIES')?.value ?? '', /(^|,)graphics(,|$)/);
  for (const kind of ['cpu', 'annotate']) assert.equal(container(workerOf(kind)).c.image, 'megapairs');
});

/** The stages a ScaledObject's Prometheus query selects, and its run label. */
function queried(query: string): { run: string; stages: string[] } {
  const m = /megapairs_queue_backlog\{run="([^"]+)",stage(=~?)"([^"]+)"\}/.exec(query);
  assert.ok(m, `query does not select megapairs_queue_backlog{run,stage}: ${query}`);
  return { run: m[1], stages: m[2] === '=' ? [m[3]] : m[3].split('|') };
}

test("each kind's ScaledObject scales its Deployment on exactly the stages that kind serves", () => {
  const scaled = byKind('ScaledObject');
  assert.equal(scaled.length, WORKER_KINDS.length);
  for (const kind of WORKER_KINDS) {
    const so = named('ScaledObject', `megapairs-worker-${kind}`);
    assert.equal(so.spec.scaleTargetRef.name, workerOf(kind).metadata.name);
    const [trigger] = so.spec.triggers;
    assert.equal(trigger.type, 'prometheus');
    const { run, stages } = queried(trigger.metadata.query);
    assert.equal(run, runConfig.run.name, `${kind}: the query's run label is the config's run.name`);
    for (const s of stages) assert.ok(STAGE_NAMES.includes(s), `${kind}: "${s}" is not a stage of src/pipeline.ts`);
    assert.deepEqual(
      [...stages].sort(),
      queuesOfKind(kind)
        .filter((q) => q !== CONTROL)
        .sort(),
    );
    // A kind that serves the control queue advances the run: it never scales to zero.
    if (queuesOfKind(kind).includes(CONTROL)) assert.ok(so.spec.minReplicaCount >= 1, `${kind} serves ${CONTROL}`);
  }
});

test('the run Job runs the distributed runner and fails for good on a config error', () => {
  const job = named('Job', 'megapairs-run');
  checkPodBasics(job);
  const { pod, c, flag } = container(job);
  assert.equal(c.args[0], 'run');
  assert.equal(flag('--runner'), 'distributed');
  assert.equal(pod.restartPolicy, 'Never');
  assert.deepEqual(job.spec.podFailurePolicy.rules[0].onExitCodes.values, [2]);
});

test('no manifest serves the dashboard or opens a Service to a megapairs pod (reach the dashboard with a port-forward)', () => {
  for (const m of manifests) {
    const pods = [m.spec?.template?.spec, m.spec?.jobTemplate?.spec?.template?.spec].filter(Boolean);
    for (const pod of pods)
      for (const c of pod.containers) assert.ok(!(c.args ?? []).includes('dashboard'), `${m.file}: ${m.metadata.name} runs the dashboard`);
  }
  for (const svc of byKind('Service')) assert.equal(svc.spec.selector['app.kubernetes.io/name'], 'megapairs-redis', `${svc.file}: ${svc.metadata.name}`);
});

test('Redis is a StatefulSet with AOF, noeviction and the password from the Secret', () => {
  const redis = named('StatefulSet', 'megapairs-redis');
  const args: string[] = redis.spec.template.spec.containers[0].args;
  const arg = (name: string) => args[args.indexOf(name) + 1];
  assert.equal(arg('--appendonly'), 'yes');
  assert.equal(arg('--appendfsync'), 'everysec');
  assert.equal(arg('--maxmemory-policy'), 'noeviction');
  assert.equal(arg('--requirepass'), '$(REDIS_PASSWORD)');
  assert.equal(redis.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name, 'megapairs-keys');
  assert.ok(redis.spec.volumeClaimTemplates.length, 'the AOF lives on a persistent volume');
});

// ---- Dockerfiles ----------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Dockerfile instructions by stage: continuation lines joined, comments dropped. */
function dockerStages(file: string): Stage[] {
  const text = readFileSync(path.join(repoRoot, 'infra', file), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Stage[] = [];
  for (const line of text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    if (op.toUpperCase() === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args)!;
      stages.push({ from, name, instructions: [] });
    } else if (stages.length) stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}
const ops = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op).map((i) => i.args);
const dockerignore = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#'));

for (const file of ['Dockerfile', 'Dockerfile.cuda']) {
  test(`infra/${file}: multi-stage build of dist/, production dependencies, non-root, tini, a health check`, () => {
    const stages = dockerStages(file);
    const final = stages.at(-1)!;
    const stage = (name: string) => stages.find((s) => s.name === name)!;
    const runs = (s: Stage) => ops(s, 'RUN').join('\n');
    const stageChain = (s: Stage): Stage[] => (stage(s.from) ? [s, ...stageChain(stage(s.from))] : [s]);
    const copiesFrom = (from: string) => ops(final, 'COPY').filter((a) => a.startsWith(`--from=${from} `));

    // dist/ comes from a stage that compiles src/ and workers/.
    const [distCopy] = ops(final, 'COPY').filter((a) => /\/app\/dist\s/.test(a));
    const build = stage(/--from=(\S+)/.exec(distCopy)![1]);
    const buildCopies = stageChain(build).flatMap((s) => ops(s, 'COPY'));
    for (const dir of ['src', 'workers', 'tsconfig.build.json'])
      assert.ok(
        buildCopies.some((a) => a.split(/\s+/).includes(dir)),
        `the build stage copies ${dir}`,
      );
    assert.match(runs(build), /npm run build/);
    // node_modules comes from a stage with production dependencies only.
    const [modulesCopy] = ops(final, 'COPY').filter((a) => /\/app\/node_modules\s/.test(a));
    assert.match(runs(stage(/--from=(\S+)/.exec(modulesCopy)![1])), /npm ci --omit=dev/);
    assert.ok(!ops(final, 'COPY').some((a) => /(^|\s)src(\s|$)/.test(a)), 'no TypeScript sources in the image');
    // package.json beside dist/ says the compiled files are ES modules.
    assert.ok(ops(final, 'COPY').some((a) => a.startsWith('package.json ')));

    const user = ops(final, 'USER').at(-1);
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user} is not root`);
    assert.match(user, /^\d+(:\d+)?$/, 'a numeric user, so that runAsNonRoot can check it');
    const entrypoint = JSON.parse(ops(final, 'ENTRYPOINT').at(-1)!) as string[];
    assert.deepEqual(entrypoint.slice(0, 2), ['/usr/bin/tini', '--']);
    assert.deepEqual(entrypoint.slice(2), ['node', 'bin/megapairs.js']);
    assert.match(runs(final), /apt-get install[^\n]*\btini\b/);
    const healthcheck = ops(final, 'HEALTHCHECK').at(-1)!;
    const [, script] = /CMD \["node", "([^"]+)"\]/.exec(healthcheck)!;
    assert.ok(existsSync(path.join(repoRoot, script)), `${script} exists`);

    // Every file copied from the build context exists and is not excluded by .dockerignore.
    for (const s of stages) {
      for (const args of ops(s, 'COPY').filter((a) => !a.startsWith('--from='))) {
        for (const src of args
          .split(/\s+/)
          .filter((a) => !a.startsWith('--'))
          .slice(0, -1)) {
          assert.ok(existsSync(path.join(repoRoot, src)), `${file}: COPY ${src}: no such file`);
          assert.ok(!dockerignore.includes(src), `${file}: COPY ${src} is excluded by .dockerignore`);
        }
      }
    }
    if (file === 'Dockerfile.cuda') {
      assert.match(ops(final, 'ENV').join(' '), /MEGAPAIRS_EXECUTION_PROVIDERS=cuda,cpu/);
      assert.match(stages.map(runs).join('\n'), /ONNXRUNTIME_NODE_INSTALL=cuda12/);
      // webgpu (Dawn over Vulkan): the loader in the image, the driver's ICD mounted by the runtime.
      assert.match(runs(final), /apt-get install .*\blibvulkan1\b/);
      assert.match(ops(final, 'ENV').join(' '), /NVIDIA_DRIVER_CAPABILITIES=\S*graphics/);
      assert.equal(copiesFrom('deps').length, 1, 'node_modules with the CUDA provider');
    }
  });
}

test('bin/healthcheck.js: healthy while /healthz answers, unhealthy on an error or no server', async () => {
  const exec = promisify(execFile);
  let status = 200;
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/healthz' ? status : 404;
    res.end('megapairs_queue_backlog{run="r",stage="embed"} 0\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = String((server.address() as AddressInfo).port);
  const check = () =>
    exec(process.execPath, [path.join(repoRoot, 'bin', 'healthcheck.js')], { env: { ...process.env, MEGAPAIRS_METRICS_PORT: port } }).then(
      () => 0,
      (err: { code: number }) => err.code,
    );
  try {
    assert.equal(await check(), 0);
    status = 500;
    assert.equal(await check(), 1);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  assert.equal(await check(), 1);
});
