/**
 * README example: an HTTP server that signs users in with Kerberos (HTTP Negotiate), answers
 * with the mutual-authentication token, and says whether it received a delegated credential.
 *
 *   eval "$(npm run -s realm -- env --dir tmp/realms/test-db2)"      # KRB5_CONFIG, keytab path
 *   TS_NODE_PROJECT=libs/gssapi/tsconfig.lib.json \
 *     npx ts-node --transpile-only -r tsconfig-paths/register libs/gssapi/examples/negotiate-server.ts
 *   kinit alice && curl --negotiate -u : --delegation always http://localhost:17603/
 */
import { createServer } from 'node:http';
// What an application writes (the example sits inside the library, hence the lint exception).
// eslint-disable-next-line @nx/enforce-module-boundaries
import { AcceptorContext, acquireServiceCredential, decodeNegotiateToken, GssError } from '@forwardable/gssapi';

async function main(): Promise<void> {
  const keytab = process.env['FORWARDABLE_HTTP_KEYTAB'];
  if (!keytab) throw new Error('set FORWARDABLE_HTTP_KEYTAB to the HTTP/<host> keytab (eval "$(npm run -s realm -- env)")');
  // Accept-only: delegated TGTs arrive; use 'both' (and an LDAP/AD KDC) for S4U2proxy.
  const service = await acquireServiceCredential({ keytab, principal: 'HTTP@localhost', usage: 'accept' });

  const server = createServer((req, res) => {
    void (async () => {
      const header = req.headers.authorization;
      if (!header?.startsWith('Negotiate ')) {
        res.writeHead(401, { 'WWW-Authenticate': 'Negotiate' }).end('sign in with Kerberos\n');
        return;
      }
      const context = new AcceptorContext(service); // krb5Only by default: NTLM is refused
      try {
        const result = await context.step(decodeNegotiateToken(header));
        const reply = result.token ? { 'WWW-Authenticate': `Negotiate ${result.token.toString('base64')}` } : {};
        if (!result.complete) {
          res.writeHead(401, reply).end();
          return;
        }
        // A real application would keep result.delegated (e.g. store() it for the session) to
        // reach PostgreSQL as the user; this example only reports it and lets it go.
        const delegation = result.delegation;
        result.delegated?.dispose();
        res.writeHead(200, reply).end(`hello ${result.principal} (delegation: ${delegation})\n`);
      } catch (e) {
        // Client input was bad (GssError): 401, never 500.
        const code = e instanceof GssError ? e.code : 'ERR_INTERNAL';
        res.writeHead(e instanceof GssError ? 401 : 500, { 'WWW-Authenticate': 'Negotiate' }).end(`${code}\n`);
      } finally {
        context.dispose();
      }
    })();
  });

  const port = Number(process.env['PORT'] ?? process.env['FORWARDABLE_PORT'] ?? 0);
  server.listen(port, '127.0.0.1', () => {
    const address = server.address();
    console.log(`listening on http://localhost:${typeof address === 'object' && address ? address.port : port}/`);
  });
  const stop = () => server.close(() => service.dispose());
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
