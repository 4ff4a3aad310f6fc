// Entry of a unit thread. Worker threads do not inherit tsx's loader from the main thread on
// Node 20 (`--import tsx` in execArgv gives "Unknown file extension .ts"), and `bin/megapairs.js`
// registers tsx by API anyway, so the thread registers it itself before loading the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./unit-thread.ts');
