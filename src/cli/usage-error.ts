// A command called wrongly (missing or bad options): the CLI prints the message and exits 2.
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
