// Links libvosk; `include!`d by the build scripts of every crate whose binaries or tests link it
// (assist-asr, agent-client, assist-server). The library comes from the `vosk` wheel on PyPI
// (scripts/fetch-libvosk.sh puts it in .tools/vosk/); `VOSK_LIB_DIR` points elsewhere. Binaries
// get an rpath to that folder and to their own folder, so they run without LD_LIBRARY_PATH.

fn link_vosk() {
    use std::path::PathBuf;
    use std::process::Command;

    println!("cargo:rerun-if-env-changed=VOSK_LIB_DIR");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    let dir = match std::env::var("VOSK_LIB_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            let dir = root.join(".tools/vosk");
            if !dir.join("libvosk.so").exists() {
                // A fresh clone: fetch it (from PyPI) so `cargo build` needs no manual step.
                let status = Command::new("bash")
                    .arg(root.join("scripts/fetch-libvosk.sh"))
                    .status();
                match status {
                    Ok(s) if s.success() => {}
                    _ => panic!(
                        "libvosk.so is missing and scripts/fetch-libvosk.sh failed; run it by hand or set VOSK_LIB_DIR"
                    ),
                }
            }
            dir
        }
    };
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("libvosk.so").display()
    );
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
}
