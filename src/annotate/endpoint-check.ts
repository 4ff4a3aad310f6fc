// The openai annotator's preflight: each endpoint answers GET /models with the key it will be
// given, and lists the model the step asks for.
import type { OpenAIAnnotatorConfig } from '../config/schema.ts';
import type { PreflightProblem } from '../core/problem.ts';
import { endpointsOf, type EndpointSettings } from './endpoint-settings.ts';
import { errorText, excerpt } from './text.ts';

const TIMEOUT_MS = 10_000;

export async function checkEndpoints(cfg: OpenAIAnnotatorConfig, env: NodeJS.ProcessEnv): Promise<PreflightProblem[]> {
  const settings = Object.values(endpointsOf(cfg));
  // One GET per distinct server and key: both steps on one vLLM ask once.
  const listed = new Map<string, Promise<string[] | PreflightProblem>>();
  const problems: PreflightProblem[] = [];
  for (const s of settings) {
    const id = `${s.base_url}\u0000${s.api_key_env}`;
    if (!listed.has(id)) listed.set(id, listModels(s, env));
    const models = await listed.get(id)!;
    if (!Array.isArray(models)) {
      if (!problems.some((p) => p.key === models.key && p.found === models.found)) problems.push(models);
      continue;
    }
    if (!models.includes(s.model)) {
      problems.push({
        key: s.keys.model,
        found: `"${s.model}", which ${s.base_url} does not serve (it lists ${models.length ? models.map((m) => `"${m}"`).join(', ') : 'no models'})`,
        expected: `a model that GET ${s.base_url}/models lists`,
      });
    }
  }
  return problems;
}

async function listModels(s: EndpointSettings, env: NodeJS.ProcessEnv): Promise<string[] | PreflightProblem> {
  const url = `${s.base_url.replace(/\/+$/, '')}/models`;
  const expected = `an OpenAI-compatible server answering GET ${url}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${env[s.api_key_env] || 'EMPTY'}` }, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? errorText((err as { cause?: unknown }).cause ?? err);
    return { key: s.keys.base_url, found: `${s.base_url} unreachable (${cause})`, expected };
  }
  const text = await res.text();
  if (res.status === 401 || res.status === 403) {
    return {
      key: s.keys.api_key_env,
      found: `HTTP ${res.status} from ${url} with the key in $${s.api_key_env}${env[s.api_key_env] ? '' : ' (unset)'}: ${excerpt(text)}`,
      expected: 'a key the server accepts',
    };
  }
  if (!res.ok) return { key: s.keys.base_url, found: `HTTP ${res.status} from ${url}: ${excerpt(text)}`, expected };
  try {
    const body = JSON.parse(text) as { data?: { id?: unknown }[] };
    if (!Array.isArray(body.data)) throw new Error('no "data" list');
    return body.data.map((m) => String(m.id));
  } catch (err) {
    return { key: s.keys.base_url, found: `a reply from ${url} that is not a model list (${errorText(err)}): ${excerpt(text)}`, expected };
  }
}
