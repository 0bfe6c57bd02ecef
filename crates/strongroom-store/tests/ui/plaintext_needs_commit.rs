// A read's plaintext is private to the pending read: the only way to it is `commit`,
// which writes the audit event first.
async fn leak(store: strongroom_store::Store, id: strongroom_store::SecretId) {
    let read = store.get(&id).await.unwrap();
    let _plaintext = read.secret.value;
}

fn main() {
    let _ = leak;
}
