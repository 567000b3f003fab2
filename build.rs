//! Says, where `cargo build` and `cargo test` show it, when `../shared/data` is not beside the
//! project: the integration tests that read it then skip their checks (and CI, which sets
//! `TWINFAULT_REQUIRE_SHARED_DATA`, fails them instead). Nothing is generated.

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-env-changed=TWINFAULT_REQUIRE_SHARED_DATA");
    if !dir.is_dir() {
        println!(
            "cargo:warning={} is missing: the tests that need the shared recordings will skip their checks \
             (set TWINFAULT_REQUIRE_SHARED_DATA=1 to make that a failure)",
            dir.display()
        );
    }
}
