// One thing preflight found wrong, before any unit runs: the config key, what was found, what was expected.
export interface PreflightProblem {
  /** The config key path, e.g. `encoders.visual_semantic.model`. */
  key: string;
  found: string;
  expected: string;
}
