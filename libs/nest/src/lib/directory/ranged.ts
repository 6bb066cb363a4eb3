/**
 * Active Directory's ranged retrieval of multi-valued attributes ([MS-ADTS] 3.1.1.3.1.3.3, "Range
 * retrieval"): a DC returns at most `MaxValRange` values (1500 by default) of an attribute such as a
 * group's `member`, named `member;range=0-1499`, and the client asks for `member;range=1500-*`
 * next, until a reply's range ends in `*`. A reader that takes the plain `member` key silently sees
 * no members (AD then sends no plain `member` at all) or only the first 1500.
 *
 * Directories without ranges (OpenLDAP) answer a plain request with every value, so the plain
 * request stays the default and ranges are only followed when the server starts them.
 */
import type { Client } from 'ldapts';

/** One `attr;range=start-end` attribute description, parsed. */
export interface AttributeRange {
  /** The attribute without options, e.g. `member`. */
  attribute: string;
  /** Index of the first value in this reply. */
  start: number;
  /** Index of the last value in this reply, or `'*'` when it holds the last value. */
  end: number | '*';
}

/** More requests than this for one attribute means a server that does not advance. */
const MAX_RANGE_REQUESTS = 100_000;

/**
 * Parse an attribute description carrying a range option (`member;range=0-1499`,
 * `member;Range=1500-*`; other options such as `;binary` may come first or after).
 * @returns the range, or `undefined` when the description has no well-formed range option.
 */
export function parseAttributeRange(description: string): AttributeRange | undefined {
  const [attribute, ...options] = description.split(';');
  if (!attribute) return undefined;
  for (const option of options) {
    const m = /^range=(\d+)-(\d+|\*)$/i.exec(option);
    if (!m) continue;
    const start = Number(m[1]);
    const end = m[2] === '*' ? '*' : Number(m[2]);
    if (!Number.isSafeInteger(start) || (end !== '*' && (!Number.isSafeInteger(end) || end < start))) return undefined;
    return { attribute, start, end };
  }
  return undefined;
}

/** The values of one reply for `attribute`, and where the next request must start (if any). */
export interface RangedReply {
  values: string[];
  /** Index of the first value still to fetch; `undefined` when the attribute is complete. */
  next?: number;
}

const valuesOf = (v: unknown): string[] => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String));

/**
 * Read `attribute` from a search entry as ldapts returns it (`{ 'member;range=0-9': [...] }`).
 * ldapts also adds every requested description that the server did not return, with no values,
 * so an empty key is only believed when no other key for the same range start has values.
 * @param expectedStart - the range start the request asked for (0 for a plain request).
 */
export function rangedValues(entry: Record<string, unknown>, attribute: string, expectedStart = 0): RangedReply {
  const wanted = attribute.toLowerCase();
  const ranged: { range: AttributeRange; values: string[] }[] = [];
  let plain: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (key === 'dn') continue;
    if (key.toLowerCase() === wanted) {
      plain = valuesOf(value);
      continue;
    }
    const range = parseAttributeRange(key);
    if (range && range.attribute.toLowerCase() === wanted && range.start === expectedStart) ranged.push({ range, values: valuesOf(value) });
  }
  if (ranged.length === 0) return { values: plain };
  // The server's own reply: the one with values, else the one that says "this was the end".
  const reply = ranged.find((r) => r.values.length > 0) ?? ranged.find((r) => r.range.end === '*');
  if (!reply) return { values: [] };
  const { end } = reply.range;
  if (end === '*' || reply.values.length === 0) return { values: reply.values };
  return { values: reply.values, next: end + 1 };
}

/**
 * Every value of `attribute` of the entry `dn`, following AD's ranges from a first reply.
 * @param first - the entry of the first search, which asked for `attribute` (plain, or
 *   `attribute;range=0-N` when `step` is set).
 * @param step - ask for at most this many values per follow-up request (`;range=a-b`); the
 *   server's own limit (AD's MaxValRange) applies anyway. Default: as many as the server gives
 *   (`;range=a-*`).
 * @throws Error when the server repeats a range instead of advancing.
 */
export async function readAllValues(client: Client, dn: string, attribute: string, first: Record<string, unknown>, step?: number): Promise<string[]> {
  let { values, next } = rangedValues(first, attribute, 0);
  const all = [...values];
  for (let requests = 0; next !== undefined; requests++) {
    if (requests >= MAX_RANGE_REQUESTS) throw new Error(`${dn}: the directory kept returning ranges of ${attribute} after ${MAX_RANGE_REQUESTS} requests`);
    const start: number = next;
    const description = `${attribute};range=${start}-${step ? start + step - 1 : '*'}`;
    const { searchEntries } = await client.search(dn, { scope: 'base', attributes: [description] });
    const entry = searchEntries[0];
    if (!entry) throw new Error(`${dn} disappeared while its ${attribute} values were being read (range ${start}-): run again`);
    ({ values, next } = rangedValues(entry, attribute, start));
    if (next !== undefined && next <= start) throw new Error(`${dn}: the directory returned ${attribute} range ${start}-${next - 1} without advancing`);
    all.push(...values);
  }
  return all;
}

/** The attribute description of a first request: plain, or the first window of `step` values. */
export function firstRangeDescription(attribute: string, step?: number): string {
  return step ? `${attribute};range=0-${step - 1}` : attribute;
}
