// `node --import ./test/production-imports.mjs ...` runs a command as a production install would
// load it: resolving a dev dependency (tsx, openmoji, ...) or demo-only code (the built-in
// encoders, the ONNX writer, the sample builder) is an error, and is also appended to the file
// named by MEGAPAIRS_FORBIDDEN_LOG so a test sees it even where the error is caught.
import { register } from 'node:module';

register('./production-imports-hooks.mjs', import.meta.url);
