//! Seal and open one value with a fresh key: `cargo run -p strongroom-crypto --example seal`.

use secrecy::ExposeSecret as _;
use strongroom_crypto::{inspect, Context, Key, KeyRing};

fn main() -> Result<(), strongroom_crypto::Error> {
    let key = Key::generate()?;
    let ring = KeyRing::single(&key);
    let context = Context::secret("default", "prod", "DATABASE_URL");

    let sealed = ring.seal(&context, b"postgres://app@db/app")?;
    let info = inspect(&sealed)?;
    println!("key fingerprint  {}", key.fingerprint());
    println!(
        "sealed           {} bytes, format {:?}, KEK version {}",
        sealed.len(),
        info.format,
        info.kek_version
    );

    let opened = ring.open(&context, &sealed)?;
    println!(
        "opened           {} bytes, matches: {}",
        opened.expose_secret().len(),
        opened.expose_secret() == b"postgres://app@db/app"
    );

    let moved = Context::secret("default", "prod", "OTHER_KEY");
    match ring.open(&moved, &sealed) {
        Ok(_) => println!("under another key name: opened (this must never happen)"),
        Err(e) => println!("under another key name: {e}"),
    }
    Ok(())
}
