-- Inherited folder grants: recursive CTE at read time vs a closure table kept by triggers, on
-- 10,000 folders. Run by bench/rls-inheritance.sh in a scratch database; prints one table.
-- Both variants answer the question the RLS helper <D>_rls_shared_ids() asks on every query:
-- "which folders does this user reach through their grants, directly or below a granted folder".
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
CREATE TABLE d (id int PRIMARY KEY, parent_id int REFERENCES d(id) ON DELETE CASCADE);
CREATE INDEX ON d (parent_id);
CREATE TABLE g (directory_id int NOT NULL REFERENCES d(id) ON DELETE CASCADE, grantee text NOT NULL, PRIMARY KEY (directory_id, grantee));
CREATE INDEX ON g (grantee, directory_id);
CREATE TABLE t (ancestor int NOT NULL REFERENCES d(id) ON DELETE CASCADE, descendant int NOT NULL REFERENCES d(id) ON DELETE CASCADE, PRIMARY KEY (ancestor, descendant));
CREATE INDEX ON t (descendant);

-- 10,000 folders: 10 roots, fan-out 10, four levels (10 + 100 + 1,000 + 8,890 leaves spread over
-- the third level), the shape of a team share with nested project folders.
INSERT INTO d SELECT i, NULL FROM generate_series(1, 10) i;
INSERT INTO d SELECT 10 + i, 1 + (i - 1) / 10 FROM generate_series(1, 100) i;
INSERT INTO d SELECT 110 + i, 11 + (i - 1) / 10 FROM generate_series(1, 1000) i;
INSERT INTO d SELECT 1110 + i, 111 + (i - 1) % 1000 FROM generate_series(1, 8890) i;
INSERT INTO t WITH RECURSIVE c(a, x) AS (SELECT id, id FROM d UNION ALL SELECT c.a, d.id FROM c JOIN d ON d.parent_id = c.x) SELECT a, x FROM c;
-- 2,000 users with grants elsewhere (what an index must skip), then the three measured users:
-- one top-level share (about 1,000 folders below it), ten shares one level lower (about 100
-- each), fifty leaf-level shares.
INSERT INTO g SELECT 1 + (i * 7919) % 10000, 'other' || i FROM generate_series(1, 2000) i;
INSERT INTO g VALUES (1, 'u_top');
INSERT INTO g SELECT 10 + i * 9, 'u_mid' FROM generate_series(1, 10) i;
INSERT INTO g SELECT 1110 + i * 170, 'u_leaf' FROM generate_series(1, 50) i;
ANALYZE d; ANALYZE g; ANALYZE t;

CREATE FUNCTION via_cte(who text) RETURNS SETOF int LANGUAGE sql STABLE AS $$
  WITH RECURSIVE s(id) AS (SELECT directory_id FROM g WHERE grantee = who UNION SELECT d.id FROM d JOIN s ON d.parent_id = s.id) SELECT id FROM s $$;
CREATE FUNCTION via_closure(who text) RETURNS SETOF int LANGUAGE sql STABLE AS $$
  SELECT t.descendant FROM t WHERE t.ancestor IN (SELECT directory_id FROM g WHERE grantee = who) $$;

-- Closure maintenance, as the generated triggers do it (insert below a parent; move a sub-tree).
CREATE FUNCTION t_ins() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO t SELECT NEW.id, NEW.id UNION ALL SELECT a.ancestor, NEW.id FROM t a WHERE a.descendant = NEW.parent_id; RETURN NULL; END $$;
CREATE FUNCTION t_move() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  DELETE FROM t x WHERE x.descendant IN (SELECT s.descendant FROM t s WHERE s.ancestor = OLD.id)
    AND x.ancestor NOT IN (SELECT s.descendant FROM t s WHERE s.ancestor = OLD.id);
  INSERT INTO t SELECT a.ancestor, s.descendant FROM t a, t s WHERE a.descendant = NEW.parent_id AND s.ancestor = OLD.id;
  RETURN NEW; END $$;

SELECT (SELECT count(*) FROM d) AS folders, (SELECT count(*) FROM t) AS closure_rows, (SELECT count(*) FROM g) AS grants;

CREATE TEMP TABLE result (what text, cte_ms numeric, closure_ms numeric, rows_cte int, rows_closure int);

DO $$
DECLARE
  who text; n int; t0 timestamptz; a numeric; b numeric; ra int; rb int; reps constant int := 200;
BEGIN
  FOREACH who IN ARRAY ARRAY['u_top', 'u_mid', 'u_leaf'] LOOP
    -- warm both plans and caches first
    PERFORM count(*) FROM via_cte(who); PERFORM count(*) FROM via_closure(who);
    t0 := clock_timestamp();
    FOR i IN 1..reps LOOP SELECT count(*) INTO ra FROM via_cte(who); END LOOP;
    a := extract(epoch FROM clock_timestamp() - t0) * 1000 / reps;
    t0 := clock_timestamp();
    FOR i IN 1..reps LOOP SELECT count(*) INTO rb FROM via_closure(who); END LOOP;
    b := extract(epoch FROM clock_timestamp() - t0) * 1000 / reps;
    IF ra <> rb THEN RAISE EXCEPTION 'the two variants disagree for %: % vs % folders', who, ra, rb; END IF;
    INSERT INTO result VALUES ('read: shared folders of ' || who || ' (per query)', a, b, ra, rb);
  END LOOP;

  -- write cost: 1,000 new folders below existing ones, with and without closure maintenance
  t0 := clock_timestamp();
  INSERT INTO d SELECT 20000 + i, 111 + i % 1000 FROM generate_series(1, 1000) i;
  a := extract(epoch FROM clock_timestamp() - t0) * 1000 / 1000;
  DELETE FROM d WHERE id > 20000;
  CREATE TRIGGER t_ins AFTER INSERT ON d FOR EACH ROW EXECUTE FUNCTION t_ins();
  t0 := clock_timestamp();
  INSERT INTO d SELECT 20000 + i, 111 + i % 1000 FROM generate_series(1, 1000) i;
  b := extract(epoch FROM clock_timestamp() - t0) * 1000 / 1000;
  INSERT INTO result VALUES ('write: insert one folder (per row)', a, b, NULL, NULL);

  -- a move of a sub-tree of about 110 folders to another root, and back
  t0 := clock_timestamp();
  UPDATE d SET parent_id = 2 WHERE id = 11; UPDATE d SET parent_id = 1 WHERE id = 11;
  a := extract(epoch FROM clock_timestamp() - t0) * 1000 / 2;
  CREATE TRIGGER t_move BEFORE UPDATE OF parent_id ON d FOR EACH ROW WHEN (OLD.parent_id IS DISTINCT FROM NEW.parent_id) EXECUTE FUNCTION t_move();
  t0 := clock_timestamp();
  UPDATE d SET parent_id = 2 WHERE id = 11; UPDATE d SET parent_id = 1 WHERE id = 11;
  b := extract(epoch FROM clock_timestamp() - t0) * 1000 / 2;
  INSERT INTO result VALUES ('write: move a sub-tree of ~110 folders', a, b, NULL, NULL);
  SELECT count(*) INTO ra FROM via_cte('u_top'); SELECT count(*) INTO rb FROM via_closure('u_top');
  IF ra <> rb THEN RAISE EXCEPTION 'closure out of step after the writes: % vs %', ra, rb; END IF;
END $$;

\pset footer off
SELECT what, round(cte_ms, 3) AS "recursive CTE ms", round(closure_ms, 3) AS "closure ms",
       round(cte_ms / nullif(closure_ms, 0), 3) AS "CTE / closure", rows_cte AS folders
  FROM result;
