import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, configJsonSchema, loadConfig, parseConfig } from '../src/config/load.ts';

const minimal = { input: { path: 'corpus' }, work: 'w', output: 'o' };

test('paper values are the defaults', () => {
  const c = parseConfig(minimal, { baseDir: '/base' });
  assert.deepEqual(c.mine.band, [0.8, 0.96]);
  assert.equal(c.mine.hard_negatives, 5);
  assert.equal(c.input.path, '/base/corpus');
  assert.equal(c.encoders.caption.model, 'builtin:caption');
  assert.equal(c.annotate.annotator, 'template');
});

test('unknown and wrong keys fail with the key path and what was expected', () => {
  const bad = {
    ...minimal,
    input: { path: 'x', captoin: {} },
    mine: { k: 'twenty', band: [0.96, 0.8] },
    encoders: { caption: { model: 'm', tokenizer: 't', max_lenght: 3 } },
  };
  assert.throws(
    () => parseConfig(bad, { file: 'my.yaml' }),
    (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /my\.yaml/);
      assert.match(e.message, /input\.captoin: unknown key/);
      assert.match(e.message, /encoders\.caption\.max_lenght: unknown key/);
      assert.match(e.message, /mine\.k: .*expected number/);
      assert.match(e.message, /mine\.band: band must be \[low, high\]/);
      return true;
    },
  );
});

test('${VAR} expands from the environment; an unset one is named', () => {
  const c = parseConfig({ ...minimal, output: '${OUT_DIR}/x', work: '${WORK:-/tmp/w}' }, { env: { OUT_DIR: '/data' } });
  assert.equal(c.output, '/data/x');
  assert.equal(c.work, '/tmp/w');
  assert.throws(() => parseConfig({ ...minimal, work: '${MISSING_VAR}' }, { env: {} }), /work: environment variable MISSING_VAR is not set/);
});

test('openai annotator needs its section', () => {
  assert.throws(() => parseConfig({ ...minimal, annotate: { annotator: 'openai' } }), /annotate\.openai: annotator "openai" needs/);
  const c = parseConfig({ ...minimal, annotate: { annotator: 'openai', openai: { base_url: 'http://x/v1', mllm: 'm' } } });
  assert.deepEqual(c.annotate.openai!.word_num, [60, 100]);
});

test('YAML files: relative paths resolve against the file, bad YAML is named', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
  const file = path.join(dir, 'run.yaml');
  writeFileSync(file, 'input:\n  path: ./corpus\nwork: w\noutput: s3://bucket/out\n');
  const c = loadConfig(file);
  assert.equal(c.input.path, path.join(dir, 'corpus'));
  assert.equal(c.output, 's3://bucket/out');
  writeFileSync(file, 'input: [unclosed\n');
  assert.throws(() => loadConfig(file), /not valid YAML/);
});

test('the JSON Schema describes the config for editors', () => {
  const schema = configJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown> }>; required: string[] };
  assert.ok(schema.properties.mine.properties!.band);
  assert.deepEqual(schema.required.sort(), ['input', 'output', 'work']);
});

test('the committed demo config is valid', () => {
  const c = loadConfig(path.join(import.meta.dirname, '..', 'configs', 'demo.yaml'));
  assert.equal(c.runner.kind, 'local');
});

test('the committed JSON Schema is the one the code generates (npm run schema)', () => {
  const committed = JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'configs', 'megapairs.schema.json'), 'utf8'));
  assert.deepEqual(committed, configJsonSchema());
});
