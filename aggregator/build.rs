//! Embeds the dashboard (`web/src/`, plus uPlot from `web/node_modules/`)
//! into the aggregator binary: writes `$OUT_DIR/web_assets.rs`, a table of
//! `(path, bytes)` that `api::dashboard` serves.
//!
//! A fresh clone still builds before `npm ci --prefix web` has run: uPlot is
//! then replaced by a stub, the page says that its charts are missing, and
//! cargo prints a warning naming the command to run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// uPlot files served under `vendor/`, from `web/node_modules/uplot/dist/`.
const UPLOT_FILES: &[&str] = &["uPlot.esm.js", "uPlot.min.css"];

fn main() {
    if let Err(e) = run() {
        println!("cargo::error=cannot embed the dashboard: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(env("OUT_DIR")?);
    let web = manifest.join("..").join("web");
    let src = web.join("src");
    let uplot = web.join("node_modules").join("uplot").join("dist");
    println!("cargo::rerun-if-changed={}", src.display());
    println!(
        "cargo::rerun-if-changed={}",
        web.join("package-lock.json").display()
    );
    println!("cargo::rerun-if-changed={}", uplot.display());
    // npm keeps packages' own (old) file times, but writes this file anew on
    // every install: it is what tells cargo that `npm ci` has run.
    println!(
        "cargo::rerun-if-changed={}",
        web.join("node_modules")
            .join(".package-lock.json")
            .display()
    );

    let mut files = Vec::new();
    collect(&src, &src, &mut files)?;
    files.sort();
    let mut table = String::from(
        "/// Embedded dashboard files by path.\npub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (rel, path) in &files {
        writeln!(
            table,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .map_err(|e| e.to_string())?;
    }
    let have_uplot = UPLOT_FILES.iter().all(|f| uplot.join(f).is_file());
    if !have_uplot {
        println!(
            "cargo::warning=web/node_modules is missing: the dashboard is built without its chart library; run `npm ci --prefix web` and build again"
        );
    }
    for name in UPLOT_FILES {
        let path = if have_uplot {
            uplot.join(name)
        } else {
            let stub = out.join(name);
            let body = if name.ends_with(".js") {
                "// uPlot was not installed when this aggregator was built (npm ci --prefix web).\nexport default null;\n"
            } else {
                "/* uPlot was not installed when this aggregator was built. */\n"
            };
            std::fs::write(&stub, body).map_err(|e| format!("{}: {e}", stub.display()))?;
            stub
        };
        writeln!(
            table,
            "    (\"vendor/{name}\", include_bytes!({:?})),",
            path.display().to_string()
        )
        .map_err(|e| e.to_string())?;
    }
    table.push_str("];\n");
    let dest = out.join("web_assets.rs");
    std::fs::write(&dest, table).map_err(|e| format!("{}: {e}", dest.display()))
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// Every file under `dir`, as (path relative to `root` with `/`, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else if path.is_file() {
            let rel = path
                .strip_prefix(root)
                .map_err(|e| e.to_string())?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let abs = path
                .canonicalize()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            files.push((rel, abs));
        }
    }
    Ok(())
}
