//! What every function's build script does besides embedding the store.

/// Links a function's release bootstrap as a position-dependent executable (`-no-pie`). A
/// position-independent one carries a dynamic relocation for every pointer in its read-only
/// data, about 30,000 of them (some 750 KB of each bootstrap), which the loader applies at
/// every cold start. Lambda runs one bootstrap per sandbox, so the fixed load address costs
/// nothing there; the libraries, heap and stack are still placed at random. Builds other than
/// release (tests, the dev stack) are left as they are.
pub fn link_bootstrap() {
    if std::env::var("PROFILE").as_deref() == Ok("release")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
