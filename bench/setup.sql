-- npm run bench: set-up of the bench realm's database (run as the cluster superuser, idempotent).
-- Nothing here exists outside tmp/realms/bench.

-- 1. The data set: every bench user bu001..bu500 owns one top-level folder and 10 top-level
--    files; each user shares 2 of their files and their folder with the next user. All three back
--    ends read the same rows: (a) and (b) these tables, (c) an identical copy (section 3).
DELETE FROM public.files WHERE owner LIKE 'bu%';
DELETE FROM public.directories WHERE owner LIKE 'bu%';
INSERT INTO public.directories (name, owner) SELECT 'folder', r.rolname FROM pg_roles r WHERE r.rolname ~ '^bu[0-9]+$';
INSERT INTO public.files (name, owner, content)
  SELECT format('doc-%s.txt', lpad(i::text, 2, '0')), r.rolname, repeat('lorem ipsum ', 20)
  FROM pg_roles r, generate_series(1, 10) i WHERE r.rolname ~ '^bu[0-9]+$';
INSERT INTO public.file_permissions (file_id, grantee)
  SELECT f.id, format('bu%s', lpad((substr(f.owner, 3)::int % 500 + 1)::text, 3, '0'))
  FROM public.files f WHERE f.owner ~ '^bu[0-9]+$' AND f.name IN ('doc-01.txt', 'doc-02.txt');
INSERT INTO public.directory_permissions (directory_id, grantee)
  SELECT d.id, format('bu%s', lpad((substr(d.owner, 3)::int % 500 + 1)::text, 3, '0'))
  FROM public.directories d WHERE d.owner ~ '^bu[0-9]+$';

-- 2. The application role of the baselines (b) and (c): a password (SCRAM) login, in this realm
--    only. (b) reads the tables directly and filters by owner itself, so it bypasses RLS; it is
--    NOINHERIT so that it holds none of the users' privileges unless it SETs ROLE (c).
SELECT 'CREATE ROLE bench_app LOGIN NOINHERIT' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_app') \gexec
ALTER ROLE bench_app LOGIN NOINHERIT BYPASSRLS PASSWORD :'app_password';
GRANT CONNECT ON DATABASE forwardable TO bench_app;
GRANT USAGE ON SCHEMA public TO bench_app;
GRANT SELECT, INSERT ON public.files, public.directories, public.file_permissions, public.directory_permissions TO bench_app;
SELECT format('GRANT %I TO bench_app', rolname) FROM pg_roles WHERE rolname ~ '^bu[0-9]+$' \gexec

-- 3. (c), the PostgREST pattern: `SET LOCAL ROLE <user>` on a shared connection, then RLS.
--    Forwardable's policies compare with session_user (the connection's login role, which a
--    shared pool cannot change), so under SET ROLE they would see bench_app. (c) therefore runs
--    on an identical copy of the tables in schema bench_rls whose policies are the same
--    predicates written with current_user (which SET ROLE does change).
DROP SCHEMA IF EXISTS bench_rls CASCADE;
CREATE SCHEMA bench_rls;
CREATE TABLE bench_rls.directories (LIKE public.directories INCLUDING ALL);
CREATE TABLE bench_rls.files (LIKE public.files INCLUDING ALL);
CREATE TABLE bench_rls.directory_permissions (LIKE public.directory_permissions INCLUDING ALL);
CREATE TABLE bench_rls.file_permissions (LIKE public.file_permissions INCLUDING ALL);
ALTER TABLE bench_rls.directories ALTER COLUMN owner SET DEFAULT current_user;
ALTER TABLE bench_rls.files ALTER COLUMN owner SET DEFAULT current_user;
CREATE INDEX ON bench_rls.files (owner);
CREATE INDEX ON bench_rls.directories (owner);
CREATE INDEX ON bench_rls.file_permissions (grantee, file_id);
CREATE INDEX ON bench_rls.directory_permissions (grantee, directory_id);
INSERT INTO bench_rls.directories SELECT * FROM public.directories;
INSERT INTO bench_rls.files SELECT * FROM public.files;
INSERT INTO bench_rls.directory_permissions SELECT * FROM public.directory_permissions;
INSERT INTO bench_rls.file_permissions SELECT * FROM public.file_permissions;
ALTER TABLE bench_rls.directories ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench_rls.files ENABLE ROW LEVEL SECURITY;
CREATE POLICY sel ON bench_rls.directories FOR SELECT USING (owner = (SELECT current_user::text) OR id IN (SELECT directory_id FROM bench_rls.directory_permissions WHERE grantee = (SELECT current_user::text)));
CREATE POLICY ins ON bench_rls.directories FOR INSERT WITH CHECK (owner = (SELECT current_user::text));
CREATE POLICY sel ON bench_rls.files FOR SELECT USING (owner = (SELECT current_user::text) OR id IN (SELECT file_id FROM bench_rls.file_permissions WHERE grantee = (SELECT current_user::text)));
CREATE POLICY ins ON bench_rls.files FOR INSERT WITH CHECK (owner = (SELECT current_user::text));
GRANT USAGE ON SCHEMA bench_rls TO forwardable_users;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA bench_rls TO forwardable_users;
GRANT SELECT ON bench_rls.file_permissions, bench_rls.directory_permissions TO forwardable_users;
VACUUM ANALYZE;
SELECT pg_reload_conf();
