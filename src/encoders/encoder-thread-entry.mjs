// Entry of an encoder thread: worker threads do not inherit tsx's loader on Node 20 (see
// src/runner/threads/unit-thread-entry.mjs), so the thread registers it before the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./encoder-thread-body.ts');
