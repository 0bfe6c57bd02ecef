-- A version row refers to its secret without a foreign key; deleting a secret still
-- deletes its versions, by a trigger instead of ON DELETE CASCADE. With the key,
-- PostgreSQL re-checked the reference on every update of a version row inserted by the
-- same transaction, which is every final audit tie of a group commit (`retie_versions`):
-- one lookup and row lock of the secret per version, under the audit chain's lock. A
-- version row is only ever inserted for the secret its transaction has just upserted and
-- holds locked, and every read joins the secret, so an orphan can not be created by the
-- store nor read by it.
-- Append a new file for a change; never edit this one.
ALTER TABLE strongroom_secret_versions DROP CONSTRAINT strongroom_secret_versions_sid_fkey;
CREATE FUNCTION strongroom_delete_versions_of_secret() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM strongroom_secret_versions WHERE sid = OLD.sid;
    RETURN OLD;
END
$$;
CREATE TRIGGER strongroom_secrets_delete_versions
    AFTER DELETE ON strongroom_secrets
    FOR EACH ROW EXECUTE FUNCTION strongroom_delete_versions_of_secret();
