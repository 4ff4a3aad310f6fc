// Chat requests for the batch tests, shaped as the annotator's instruct step sends them (model,
// messages, temperature, max_tokens, seed), the same for every process that asks for them.
import { batchRequest, type BatchRequest } from '../src/annotate/batch/request.ts';

/** `count` distinct requests from `first` on; `pad` adds words to some, so lines differ in size. */
export function chatRequests(count: number, opts: { first?: number; models?: string[]; pad?: (i: number) => number } = {}): BatchRequest[] {
  const { first = 0, models = ['l'], pad = () => 0 } = opts;
  return Array.from({ length: count }, (_, k) => {
    const i = first + k;
    const words = Array.from({ length: pad(i) }, (_, w) => `word${w}`).join(' ');
    return batchRequest({
      model: models[i % models.length],
      messages: [{ role: 'user', content: `Rewrite description ${i} as instructions.${words ? ` ${words}` : ''}` }],
      temperature: 0.7,
      max_tokens: 256,
      seed: i,
    });
  });
}
