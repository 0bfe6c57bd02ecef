//! Point reads that may share a statement (PostgreSQL batches the reads of secrets and the
//! lookups of tokens that arrive together): every answer goes to the one who asked.

use super::*;

/// Attack on point reads that share a statement (PostgreSQL batches the reads that arrive
/// together): many readers at once, of different secrets, of one secret, of names that do
/// not exist and of names written as an array literal's syntax would break them (quotes,
/// commas, braces, backslashes, `NULL`), some of them dropped while they wait. Every
/// answer is the asker's own secret, or none; nobody is stranded by a dropped neighbour.
pub async fn concurrent_point_reads_each_get_their_own_answer(h: &dyn Harness) {
    let store = open(h).await;
    let stored: Vec<String> = (0..12).map(|i| format!("POINT_{i}")).collect();
    for key in &stored {
        set(&store, "prod", key, &format!("value-of-{key}")).await;
    }
    let backend = h.backend().await;
    let mut asked: Vec<String> = stored.clone();
    asked.extend(
        [
            "MISSING",
            "Q'UOTE",
            "A,B",
            "{POINT_1}",
            "\"POINT_2\"",
            "BACK\\SLASH",
            "NULL",
            "",
        ]
        .map(String::from),
    );
    let mut readers = Vec::new();
    for round in 0..400usize {
        let key = asked[(round * 7) % asked.len()].clone();
        let backend = Arc::clone(&backend);
        readers.push(tokio::spawn(async move {
            let wanted = SecretId::new("default", "prod", &key);
            let read = backend.fetch(&wanted);
            if round % 5 == 4 {
                // Dropped after its first poll: queued, then gone.
                let _ = tokio::time::timeout(std::time::Duration::ZERO, read).await;
                return None;
            }
            Some((key, read.await))
        }));
    }
    let mut answered = 0;
    for reader in readers {
        let Some((key, answer)) = reader.await.unwrap() else {
            continue;
        };
        let answer = answer.unwrap_or_else(|e| panic!("reading {key:?}: {e}"));
        match answer {
            Some(found) => {
                assert_eq!(found.info.id.key, key, "an answer for another name");
                assert!(stored.contains(&key), "{key:?} was never stored");
                assert_eq!(found.info.version, 1, "each was written once");
            }
            None => assert!(
                !stored.contains(&key),
                "{key:?} is stored but read as absent"
            ),
        }
        answered += 1;
    }
    assert_eq!(answered, 320);
}

/// Attack on token lookups that share a statement: a lookup answered with another's row
/// would be one request authenticated as another token. Many lookups at once, of tokens
/// that exist, of ids that do not and of ids written as an array literal's syntax would
/// break them, some dropped while they wait: every row is the asker's, or none; and every
/// token authenticates as itself.
pub async fn concurrent_token_lookups_each_get_their_own_row(h: &dyn Harness) {
    let store = open(h).await;
    let tokens = crate::tokens::Tokens::new(&store, None).unwrap();
    let mut made = Vec::new();
    for i in 0..12 {
        let (info, secret) = tokens
            .create(
                &format!("t{i}"),
                false,
                &[crate::tokens::Scope::parse("default/dev:read").unwrap()],
            )
            .await
            .unwrap();
        made.push((info.name, secret.expose_secret().to_owned()));
    }
    let backend = h.backend().await;
    let stored: Vec<String> = backend
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    let mut asked = stored.clone();
    asked.extend(
        [
            "000000000000",
            "'",
            "a,b",
            "{x}",
            "\"q\"",
            "back\\slash",
            "NULL",
            "",
        ]
        .map(String::from),
    );
    let mut lookups = Vec::new();
    for round in 0..400usize {
        let id = asked[(round * 7) % asked.len()].clone();
        let backend = Arc::clone(&backend);
        lookups.push(tokio::spawn(async move {
            let lookup = backend.token_by_id(&id);
            if round % 5 == 4 {
                // Dropped after its first poll: queued, then gone.
                let _ = tokio::time::timeout(Duration::ZERO, lookup).await;
                return None;
            }
            let answer = lookup.await;
            Some((id, answer))
        }));
    }
    let mut answered = 0;
    for lookup in lookups {
        let Some((id, answer)) = lookup.await.unwrap() else {
            continue;
        };
        match answer.unwrap_or_else(|e| panic!("looking up {id:?}: {e}")) {
            Some(row) => assert_eq!(row.id, id, "a row for another token"),
            None => assert!(!stored.contains(&id), "{id:?} exists but was not found"),
        }
        answered += 1;
    }
    assert_eq!(answered, 320);
    // Through authentication, all at once: each token is itself.
    let mut checks = Vec::new();
    for round in 0..240usize {
        let (name, secret) = made[round % made.len()].clone();
        let tokens = tokens.clone();
        checks.push(tokio::spawn(async move {
            (name, tokens.authenticate(&secret).await)
        }));
    }
    for check in checks {
        let (name, principal) = check.await.unwrap();
        assert_eq!(principal.unwrap().map(|p| p.name), Some(name));
    }
}
