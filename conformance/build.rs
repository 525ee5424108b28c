//! The vectors are embedded in the binary (`include_dir!` in `src/vectors.rs`): rebuild when
//! any of them changes.

fn main() {
    println!("cargo:rerun-if-changed=../vectors");
}
