// Dropping a read unused is a warning (denied here): it was neither committed nor
// handed out, so it is almost always a forgotten `commit`.
#![deny(unused_must_use)]

async fn forget(store: strongroom_store::Store, id: strongroom_store::SecretId) {
    store.get(&id).await.unwrap();
}

fn main() {
    let _ = forget;
}
