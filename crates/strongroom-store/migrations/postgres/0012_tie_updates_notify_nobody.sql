-- A group commit writes each version row at once with a provisional audit tie and gives
-- it its final tie (audit_seq, audit_tag) just before the commit, in one statement, so the
-- audit chain's lock is held from there to the commit only. Read caches hold nothing of a
-- tie, so a change to the tie alone notifies nobody (it used to flush every cache on
-- every commit); any other change to a version row still does.
-- Append a new file for a change; never edit this one.
DROP TRIGGER strongroom_secret_versions_notify ON strongroom_secret_versions;
CREATE TRIGGER strongroom_secret_versions_notify
    AFTER UPDATE OF sid, version, value, value_hash, kek_version, created, actor, deleted_at, destroyed
    ON strongroom_secret_versions
    FOR EACH STATEMENT EXECUTE FUNCTION strongroom_notify_change();
