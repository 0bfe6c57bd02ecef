//! Every file the CLI writes goes through here: a new file beside the target (created
//! exclusively, mode 0600, so never through a symlink planted at the temporary name),
//! written, flushed to disk, then renamed over the target. A symlink at the target is
//! refused; an existing target's looser mode is not kept (the new file is 0600); a crash
//! leaves either the old file or the new one, never a partial one.

use std::io::Write as _;
use std::path::Path;

use crate::exit::Failure;

/// Writes `bytes` to `path` (mode 0600), replacing any regular file there.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    write(path, bytes, true)
}

/// Like [`write_private`], but fails if `path` exists.
pub fn create_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    write(path, bytes, false)
}

fn write(path: &Path, bytes: &[u8], replace: bool) -> Result<(), Failure> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Failure::io(format!(
                "{shown} is a symbolic link; refusing to write through it"
            )));
        }
        Ok(meta) if !meta.is_file() => {
            return Err(Failure::io(format!("{shown} exists and is not a file")));
        }
        Ok(_) if !replace => return Err(Failure::io(format!("{shown} already exists"))),
        _ => {}
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // `tempfile` creates with O_CREAT|O_EXCL (no symlink followed) and mode 0600.
    let mut file = tempfile::Builder::new()
        .prefix(".strongroom-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Failure::io(format!("cannot create a file beside {shown}: {e}")))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| Failure::io(format!("cannot write {shown}: {e}")))?;
    let persisted = if replace {
        file.persist(path).map(drop)
    } else {
        file.persist_noclobber(path).map(drop)
    };
    persisted.map_err(|e| Failure::io(format!("cannot write {shown}: {}", e.error)))?;
    // The rename itself is durable once the directory is flushed.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Refuses a file that a group or others may read, or that another user owns (a symlink
/// is judged by its target).
pub fn check_private(path: &Path) -> Result<(), Failure> {
    let meta =
        std::fs::metadata(path).map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    judge_private(path, &meta).map_err(Failure::input)
}

/// Reads a file holding a secret (a key, a PIN, a URL with a password) that only this user
/// may read. The file is opened first and the opened file is judged (no time-of-check gap
/// between the check and the read): a regular file, owned by the effective user (or by
/// root, who can read everything anyway), with no permission for its group or others. A
/// symlink is judged by its target. The error names the file, never its content.
pub fn read_private(path: &Path) -> Result<zeroize::Zeroizing<String>, String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    judge_private(path, &meta)?;
    let mut text = zeroize::Zeroizing::new(String::new());
    file.read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

/// The rules of [`read_private`] on a file's metadata.
fn judge_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} has mode {mode:o}, which lets its group or others read it; expected 0600 \
                 or stricter (chmod 600; a symlink is judged by its target)",
                path.display()
            ));
        }
        let (owner, me) = (meta.uid(), nix::unistd::geteuid().as_raw());
        if owner != me && owner != 0 {
            return Err(format!(
                "{} is owned by user {owner}, not by this user ({me}) or root: whoever owns it \
                 controls what is read from it (chown it, or run as its owner)",
                path.display()
            ));
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn an_existing_0644_file_becomes_0600_and_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.env");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(write_private(&link, b"x").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert!(create_private(&target, b"x").is_err(), "no clobber");
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0, "no temporary files left behind");
    }
}

#[cfg(all(test, unix))]
mod private_reads {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt as _;

    use super::read_private;

    /// Attack (third round): a 0600 key file of another user was accepted when running as
    /// root, and the mode was read from the path before the file was opened. The opened
    /// file is judged: its owner must be this user or root, its mode 0600 or stricter.
    #[test]
    fn a_key_file_of_another_user_or_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "k3y-material\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&path).unwrap().as_str(), "k3y-material\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let why = read_private(&path).unwrap_err();
        assert!(why.contains("640") && !why.contains("k3y"), "{why}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_private(dir.path())
            .unwrap_err()
            .contains("not a regular file"));
        if nix::unistd::geteuid().is_root() {
            // Root can make a file another user's; `nobody` then controls the key.
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
            let why = read_private(&path).unwrap_err();
            assert!(
                why.contains("owned by user 65534") && !why.contains("k3y"),
                "{why}"
            );
        }
    }
}
