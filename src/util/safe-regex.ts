/**
 * Regular expressions from untrusted input (alert rules, `pattern` keywords in output schemas), run
 * in linear time. JavaScript's RegExp backtracks: `(a+)+b` against 30 a's takes seconds and blocks
 * the event loop (ReDoS). These go through re2js, a pure-JS port of RE2, whose automaton matches in
 * time linear in the text whatever the pattern; constructs RE2 cannot run in linear time
 * (backreferences, lookaround) are refused at compile time with RE2's message. Patterns are also
 * bounded in length, so compiling stays cheap.
 *
 * Promises: `compileSafeRegex` never throws (a discriminated result), and `find` never backtracks.
 */
import { RE2JS } from 're2js';

/** Longest pattern accepted (characters). */
export const MAX_REGEX_LENGTH = 256;

export interface SafeRegex {
  readonly source: string;
  /** The first match in `text`, or undefined. Linear in `text`. */
  find(text: string): { index: number; match: string } | undefined;
  /** RegExp-like test, for validators that take one (ajv's `code.regExp`). */
  test(text: string): boolean;
}

export type SafeRegexResult = { ok: true; regex: SafeRegex } | { ok: false; message: string };

export function compileSafeRegex(pattern: string, opts: { ignoreCase?: boolean; unicode?: boolean } = {}): SafeRegexResult {
  if (pattern.length === 0) return { ok: false, message: 'must not be empty' };
  if (pattern.length > MAX_REGEX_LENGTH) return { ok: false, message: `must be at most ${MAX_REGEX_LENGTH} characters (got ${pattern.length})` };
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern, opts.ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, message: `is not a supported regular expression (RE2 syntax: no backreferences or lookaround): ${why}` };
  }
  return {
    ok: true,
    regex: {
      source: pattern,
      find(text) {
        const m = re.matcher(text);
        if (!m.find()) return undefined;
        return { index: m.start(), match: m.group() ?? '' };
      },
      test(text) {
        return re.matcher(text).find();
      },
    },
  };
}
