/**
 * Helpers for the hardening suite: a raw HTTP/1.1 client (so a test can send what `fetch`
 * refuses to: repeated headers, control characters, huge headers), a seeded PRNG (a failing
 * fuzz case can be replayed from its seed), a real garbage collection for memory checks, and
 * the secret scan every hardening spec ends with.
 */
import { connect } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** One HTTP answer as the server sent it. */
export interface RawResponse {
  status: number;
  headers: Record<string, string[]>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
}

/**
 * Send `head` (request line and headers, without the blank line) and `body` over a fresh TCP
 * connection to 127.0.0.1:`port`, with `Connection: close`, and parse the answer.
 * Nothing is normalised: the bytes go out as given.
 */
export function rawRequest(port: number, head: string, body: Buffer | string = '', timeoutMs = 30_000): Promise<RawResponse> {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const lines = head.replace(/\r?\n$/, '');
  const withLength = /\r\ncontent-length:/i.test(lines) || payload.length === 0 ? lines : `${lines}\r\nContent-Length: ${payload.length}`;
  const request = Buffer.concat([Buffer.from(`${withLength}\r\nConnection: close\r\n\r\n`, 'latin1'), payload]);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => socket.destroy(new Error(`no answer in ${timeoutMs} ms to ${lines.split('\r\n')[0]}`)), timeoutMs);
    socket.on('data', (d) => chunks.push(d));
    // The server may answer and close before reading everything (413, 431): that is an answer.
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if ((e.code === 'EPIPE' || e.code === 'ECONNRESET') && chunks.length) return;
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!chunks.length) return reject(new Error(`connection closed without an answer to ${lines.split('\r\n')[0]}`));
      resolve(parseRaw(Buffer.concat(chunks)));
    });
    socket.write(request);
  });
}

function parseRaw(raw: Buffer): RawResponse {
  const text = raw.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text;
  let rest = end >= 0 ? text.slice(end + 4) : '';
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string[]> = {};
  for (const l of lines) {
    const c = l.indexOf(':');
    if (c > 0) (headers[l.slice(0, c).toLowerCase()] ??= []).push(l.slice(c + 1).trim());
  }
  if (headers['transfer-encoding']?.[0] === 'chunked') rest = unchunk(rest);
  let json: Record<string, unknown> | undefined;
  try {
    json = rest ? JSON.parse(rest) : undefined;
  } catch {
    json = undefined;
  }
  return { status: Number(statusLine.split(' ')[1]), headers, text: rest, json };
}

function unchunk(s: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const nl = s.indexOf('\r\n', i);
    if (nl < 0) return out;
    const n = parseInt(s.slice(i, nl), 16);
    if (!n) return out;
    out += s.slice(nl + 2, nl + 2 + n);
    i = nl + 2 + n + 2;
  }
}

/** Mulberry32: small, fast, seeded; good enough to pick fuzz cases reproducibly. */
export function prng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; bytes(n: number): Buffer } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    pick: <T>(xs: readonly T[]) => xs[int(xs.length)],
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}

/** A real, full garbage collection (jest does not expose `gc`; V8 can be asked for it). */
export function collectGarbage(): void {
  setFlagsFromString('--expose_gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
}

/**
 * Every line logged must be free of the given secrets (passwords, session ids, tokens) and of
 * anything shaped like a Kerberos token, a Negotiate header or a key. Returns the offending
 * lines (empty when clean) so a failure shows what leaked, without printing the secret itself.
 */
export function secretLeaks(lines: string[], secrets: string[]): string[] {
  const shapes = [
    /YII[A-Za-z0-9+/]{20}/, // base64 of a DER GSS/SPNEGO token (0x60 0x82 ...)
    /oYI[A-Za-z0-9+/]{20}/, // base64 of a SPNEGO NegTokenResp (0xa1 0x82 ...)
    /Negotiate [A-Za-z0-9+/]{20}/,
    /TlRMTVNTUA/, // base64 of "NTLMSSP"
    /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
    /password["']?\s*[:=]\s*["']?[^\s"',}]{4,}/i,
  ];
  const real = secrets.filter((s) => s.length >= 8);
  return lines
    .map((line, i) => ({ line, i }))
    .filter(({ line }) => real.some((s) => line.includes(s)) || shapes.some((r) => r.test(line)))
    .map(({ line, i }) => `line ${i}: ${line.slice(0, 80).replace(/[A-Za-z0-9+/=_-]{12,}/g, '<redacted>')}`);
}

/** Wait until `f` returns true, checking every `everyMs`; false when `ms` passed first. */
export async function eventually(f: () => boolean | Promise<boolean>, ms = 10_000, everyMs = 100): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
