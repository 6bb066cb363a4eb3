/**
 * Test helper (not part of the package): a TCP relay between a client and the real PostgreSQL that
 * records every byte and may refuse encryption requests itself or tamper with the server's bytes.
 * Shared by the GSSAPI-encryption and TLS specs.
 */
import { AddressInfo, createServer, Server, Socket } from 'node:net';

/** GSSENCRequest and SSLRequest codes (8-byte start-up packets). */
const GSSENC_CODE = 80877104;
const SSL_CODE = 80877103;

/** A TCP relay between the client and the real server that records and may tamper with bytes. */
export interface Relay {
  port: number;
  /** Everything that crossed, in arrival order. */
  recorded: Array<{ from: 'client' | 'server'; data: Buffer }>;
  /** Answer "N" to a GSSENCRequest itself, as a pooler without GSSAPI does, and relay the rest. */
  refuseGssenc: boolean;
  /** Answer "N" to an SSLRequest itself, as a server with `ssl = off` (or a pooler) does. */
  refuseSsl: boolean;
  /** When set, the next server-to-client chunk is handed to this (and the hook cleared). */
  onServerChunk: ((chunk: Buffer, client: Socket) => Buffer | null) | null;
  close(): Promise<void>;
}

/** Start a relay on 127.0.0.1 (an ephemeral port) to the server at 127.0.0.1:`targetPort`. */
export async function startRelay(targetPort: number): Promise<Relay> {
  const sockets = new Set<Socket>();
  const relay: Relay = { port: 0, recorded: [], refuseGssenc: false, refuseSsl: false, onServerChunk: null, close: async () => undefined };
  const server: Server = createServer((client) => {
    sockets.add(client);
    let upstream: Socket | null = null;
    const open = (first: Buffer) => {
      const up = new Socket();
      upstream = up;
      sockets.add(up);
      up.connect(targetPort, '127.0.0.1');
      if (first.length) up.write(first);
      up.on('data', (d: Buffer) => {
        relay.recorded.push({ from: 'server', data: Buffer.from(d) });
        const hook = relay.onServerChunk;
        if (hook) {
          relay.onServerChunk = null;
          const out = hook(Buffer.from(d), client);
          if (out) client.write(out);
          return;
        }
        client.write(d);
      });
      up.on('end', () => client.end());
      up.on('error', () => client.destroy());
    };
    client.on('data', (d: Buffer) => {
      relay.recorded.push({ from: 'client', data: Buffer.from(d) });
      if (upstream) {
        upstream.write(d);
        return;
      }
      // Before the server is involved: refuse the encryption requests we were told to refuse.
      let rest = d;
      while (rest.length >= 8 && rest.readUInt32BE(0) === 8) {
        const code = rest.readUInt32BE(4);
        if (!((code === GSSENC_CODE && relay.refuseGssenc) || (code === SSL_CODE && relay.refuseSsl))) break;
        client.write('N');
        rest = rest.subarray(8);
      }
      if (rest.length) open(rest);
    });
    client.on('end', () => (upstream ? upstream.end() : client.end()));
    client.on('error', () => upstream?.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  relay.port = (server.address() as AddressInfo).port;
  relay.close = () =>
    new Promise<void>((r) => {
      sockets.forEach((s) => s.destroy());
      server.close(() => r());
    });
  return relay;
}
