// Demo data, created through the API as the users themselves (password sign-in), so the
// database's own defaults and policies set every owner. Idempotent: skips what exists.
const [base, alicePw, bobPw] = process.argv.slice(2);
const CSRF = { 'x-requested-with': 'forwardable' };

async function session(username, password) {
  const r = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { ...CSRF, 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (r.status !== 200) throw new Error(`seed: sign-in as ${username} failed (${r.status}): ${await r.text()}`);
  const cookie = r.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return async (method, path, body) => {
    const res = await fetch(`${base}/api${path}`, { method, headers: { ...CSRF, cookie, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`seed: ${method} ${path} as ${username}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

const alice = await session('alice', alicePw);
const bob = await session('bob', bobPw);
const aliceTree = await alice('GET', '/files/tree');
if (!aliceTree.directories.some((d) => d.name === 'Team plans' && d.owner === 'alice')) {
  const dir = await alice('POST', '/directories', { name: 'Team plans' });
  const plan = await alice('POST', '/files', { name: 'roadmap.md', directoryId: dir.id, content: '# Roadmap\n\n- Kerberos sign-on everywhere\n- No database passwords\n' });
  await alice('POST', `/files/${plan.id}/permissions`, { grantee: 'bob' });
  await alice('POST', '/files', { name: 'salaries.txt', directoryId: dir.id, content: 'Only alice can see this file.\n' });
}
const bobTree = await bob('GET', '/files/tree');
if (!bobTree.files.some((f) => f.name === 'notes.txt' && f.owner === 'bob')) {
  await bob('POST', '/files', { name: 'notes.txt', content: "Bob's own notes. Alice cannot see them.\n" });
}
await alice('POST', '/auth/logout');
await bob('POST', '/auth/logout');
console.error('seed: demo files for alice and bob are in place');
