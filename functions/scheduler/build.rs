//! Validates the store and embeds it: a broken store.toml fails the build with its errors.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    shared::config::Store::embed_for_build(&dir);
    shared::build::link_bootstrap();
}
