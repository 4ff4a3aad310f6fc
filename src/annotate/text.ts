// Small text helpers for the annotators' messages.

/** A one-line, bounded excerpt of a reply or message, for error messages. */
export function excerpt(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (!flat) return '(empty)';
  return JSON.stringify(flat.length > max ? `${flat.slice(0, max)}…` : flat);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
