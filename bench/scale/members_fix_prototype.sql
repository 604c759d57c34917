-- Prototype of the members-page fix proposed in bench/SCALE.md, run inside a transaction that is
-- rolled back (nothing stays in the database):
--   psql -h 127.0.0.1 -U postgres portail_scale -v big="'<structure id>'" -f bench/scale/members_fix_prototype.sql
-- A sort key denormalised onto memberships (lower family name, given name, e-mail; \x01 sorts first
-- under the C collation) and an index (structure_id, sort_key, id): a page reads its 25 index entries
-- (page 1,000: 25,000 of them) and joins 25 users by primary key, whatever the size of `users`.
\timing on
BEGIN;
ALTER TABLE memberships ADD COLUMN sort_key varchar(460);
UPDATE memberships m SET sort_key = lower(u.family_name) || E'\x01' || lower(u.given_name) || E'\x01' || u.email
  FROM users u WHERE u.id = m.user_id AND m.structure_id = :big;
CREATE INDEX ix_memberships_structure_sort ON memberships (structure_id, sort_key, id);
ANALYZE memberships;
\echo '--- count (no search): index-only on the existing (structure_id, status, role) index'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT count(*) FROM memberships WHERE structure_id = :big;
\echo '--- page 1 by name'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH page AS (SELECT id, user_id, sort_key FROM memberships WHERE structure_id = :big ORDER BY sort_key, id LIMIT 25 OFFSET 0)
SELECT m.*, u.* FROM page JOIN memberships m ON m.id = page.id JOIN users u ON u.id = page.user_id ORDER BY page.sort_key, page.id;
\echo '--- page 1,000 by name'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH page AS (SELECT id, user_id, sort_key FROM memberships WHERE structure_id = :big ORDER BY sort_key, id LIMIT 25 OFFSET 24975)
SELECT m.*, u.* FROM page JOIN memberships m ON m.id = page.id JOIN users u ON u.id = page.user_id ORDER BY page.sort_key, page.id;
\echo '--- search "dupont": count and page 1 (the filter runs on the structure''s index entries only)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT count(*) FROM memberships WHERE structure_id = :big AND sort_key LIKE '%dupont%';
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH page AS (SELECT id, user_id, sort_key FROM memberships WHERE structure_id = :big AND sort_key LIKE '%dupont%' ORDER BY sort_key, id LIMIT 25)
SELECT m.*, u.* FROM page JOIN memberships m ON m.id = page.id JOIN users u ON u.id = page.user_id ORDER BY page.sort_key, page.id;
ROLLBACK;
