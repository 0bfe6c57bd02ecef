//! HTTPS without a proxy: a throw-away CA, a client that verifies the chain, and a
//! certificate reloaded while the server runs.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use strongroom_crypto::secrecy::SecretString;
use strongroom_server::{AppState, Limits, Tls};
use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::tokens::Tokens;

/// `(ca_pem, cert_pem, key_pem)`: a CA named `name` and a leaf for localhost/127.0.0.1.
fn certificates(name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_verified_chain_and_a_certificate_reloaded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, cert1, key1) = certificates("first CA");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, &cert1).unwrap();
    std::fs::write(&key_file, &key1).unwrap();
    let tls = Tls::load(&cert_file, &key_file).await.unwrap();

    let backend = Arc::new(SqliteBackend::open(dir.path().join("tls.db")).unwrap());
    let tokens = Tokens::admin_only(
        backend,
        Some(&SecretString::from("admin-token-for-tls-tests-0123")),
    )
    .unwrap();
    let router = strongroom_server::router(
        AppState {
            tokens,
            store: None,
            gateway: None,
            metrics: None,
        },
        Limits::default(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = {
        let tls = tls.clone();
        tokio::spawn(async move {
            strongroom_server::serve_tls(listener, router, &tls, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let url = format!("https://localhost:{port}/api/health");

    // A client that trusts the first CA: the chain verifies.
    let first = client(&ca1);
    let response = first.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // A client that does not know the CA refuses the server, and plain HTTP gets nothing.
    let (ca_other, _, _) = certificates("some other CA");
    assert!(client(&ca_other).get(&url).send().await.is_err());
    assert!(
        reqwest::get(format!("http://localhost:{port}/api/health"))
            .await
            .is_err(),
        "plain HTTP is not served on the TLS port"
    );

    // New files, reloaded in place: new connections get the new chain.
    let (ca2, cert2, key2) = certificates("second CA");
    std::fs::write(&cert_file, &cert2).unwrap();
    std::fs::write(&key_file, &key2).unwrap();
    tls.reload().await.unwrap();
    let second = client(&ca2);
    assert_eq!(second.get(&url).send().await.unwrap().status(), 200);
    assert!(
        client(&ca1).get(&url).send().await.is_err(),
        "a new connection gets the new chain"
    );
    // The first client's open (kept-alive) connection was not dropped by the reload.
    assert_eq!(first.get(&url).send().await.unwrap().status(), 200);
    // A broken file keeps the working certificate.
    std::fs::write(&key_file, "not a key").unwrap();
    assert!(tls.reload().await.is_err());
    assert_eq!(client(&ca2).get(&url).send().await.unwrap().status(), 200);

    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}
