import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The file browser's tables. Run by an operator with their own ticket (`dbadmin`), never with a
 * stored password: `npx nx run api-db:migrate`. Row-level security on these tables is added by
 * the policies libs/rls generates; this migration only creates the tables and the grants to
 * `forwardable_users`, the group of application users.
 *
 * `owner` defaults to `session_user`, which is the Kerberos principal's name (pg_hba
 * `include_realm=0`): the API never supplies it.
 */
export class FilesSchema1763800000000 implements MigrationInterface {
  name = 'FilesSchema1763800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE directories (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        parent_id uuid REFERENCES directories(id) ON DELETE CASCADE,
        name text NOT NULL CHECK (name <> '' AND length(name) <= 255 AND strpos(name, '/') = 0),
        owner text NOT NULL DEFAULT session_user,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE files (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        directory_id uuid REFERENCES directories(id) ON DELETE CASCADE,
        name text NOT NULL CHECK (name <> '' AND length(name) <= 255 AND strpos(name, '/') = 0),
        owner text NOT NULL DEFAULT session_user,
        content text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE directory_permissions (
        directory_id uuid NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
        grantee text NOT NULL,
        granted_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (directory_id, grantee)
      )`);
    await q.query(`
      CREATE TABLE file_permissions (
        file_id uuid NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        grantee text NOT NULL,
        granted_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (file_id, grantee)
      )`);
    // Names are unique per owner and folder: a uniqueness across owners would let a conflict
    // reveal rows that row-level security hides.
    await q.query(`CREATE UNIQUE INDEX directories_owner_parent_name ON directories (owner, coalesce(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), name)`);
    await q.query(`CREATE UNIQUE INDEX files_owner_dir_name ON files (owner, coalesce(directory_id, '00000000-0000-0000-0000-000000000000'::uuid), name)`);
    await q.query(`CREATE INDEX files_directory ON files (directory_id)`);
    await q.query(`CREATE INDEX directories_parent ON directories (parent_id)`);
    await q.query(`CREATE INDEX file_permissions_grantee ON file_permissions (grantee)`);
    await q.query(`CREATE INDEX directory_permissions_grantee ON directory_permissions (grantee)`);
    await q.query(`GRANT USAGE ON SCHEMA public TO forwardable_users`);
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON directories, files, directory_permissions, file_permissions TO forwardable_users`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE file_permissions, directory_permissions, files, directories`);
  }
}
