//! Embeds the dashboard (`web/src/`, plus uPlot from `web/node_modules/`)
//! into the aggregator binary: writes `$OUT_DIR/web_assets.rs`, a table of
//! `(path, bytes, gzipped bytes)` that `api::dashboard` serves, and
//! `VERSION`, a hash of every file's content. The page's own references
//! go through `/assets/VERSION/`, so that a browser may keep each file for a
//! year: any change to any file changes every URL. Text files are gzipped
//! here, once, when that makes them smaller.
//!
//! With esbuild installed (`npm ci --prefix web`), the page's modules are
//! bundled into one minified `js/main.js` and `app.css` is minified; a JS
//! syntax error then fails the build. Without it, the modules are served
//! as they are (cargo warns).
//!
//! A fresh clone still builds before `npm ci --prefix web` has run: uPlot is
//! then replaced by a stub, the page says that its charts are missing, and
//! cargo prints a warning naming the command to run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// uPlot files served under `vendor/`, from `web/node_modules/uplot/dist/`:
/// the minified build (a classic script that sets `window.uPlot`).
const UPLOT_FILES: &[&str] = &["uPlot.iife.min.js", "uPlot.min.css"];
/// Where `index.html` refers to the assets, before the version is put in.
const ASSET_PREFIX: &str = "\"/assets/";

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
    let esbuild = web.join("node_modules").join(".bin").join("esbuild");
    if esbuild.is_file() {
        let min = out.join("web-min");
        minify(&esbuild, &src, &min)?;
        // The bundle holds every module: serve it instead of them.
        files.retain(|(rel, _)| !(rel.starts_with("js/") || rel == "app.css"));
        files.push(("js/main.js".to_owned(), min.join("main.js")));
        files.push(("app.css".to_owned(), min.join("app.css")));
    } else {
        println!(
            "cargo::warning=esbuild is missing from web/node_modules: the dashboard's code is embedded unminified; run `npm ci --prefix web` and build again"
        );
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
                "// uPlot was not installed when this aggregator was built (npm ci --prefix web).\n"
            } else {
                "/* uPlot was not installed when this aggregator was built. */\n"
            };
            std::fs::write(&stub, body).map_err(|e| format!("{}: {e}", stub.display()))?;
            stub
        };
        files.push((format!("vendor/{name}"), path));
    }
    files.sort();

    let mut contents = Vec::with_capacity(files.len());
    for (rel, path) in &files {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        contents.push((rel.as_str(), bytes));
    }
    let version = version_of(&contents);
    let gz_dir = out.join("web-gz");
    std::fs::create_dir_all(&gz_dir).map_err(|e| format!("{}: {e}", gz_dir.display()))?;
    let mut table = format!(
        "/// Hash of every embedded file: the page's asset URLs start `/assets/{{VERSION}}/`.\n\
         pub const VERSION: &str = {version:?};\n\
         /// Embedded dashboard files by path: (path, bytes, gzipped bytes if smaller).\n\
         pub static ASSETS: &[super::Asset] = &[\n"
    );
    for (i, (rel, bytes)) in contents.iter().enumerate() {
        let body = if *rel == "index.html" {
            let text = String::from_utf8_lossy(bytes)
                .replace(ASSET_PREFIX, &format!("{ASSET_PREFIX}{version}/"));
            let path = out.join("index.html");
            std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
            (path, text.into_bytes())
        } else {
            (files[i].1.clone(), bytes.clone())
        };
        let gz = gzip(&body.1)?;
        let gz_path = gz_dir.join(format!("{i}.gz"));
        let gz_expr = if is_text(rel) && gz.len() < body.1.len() {
            std::fs::write(&gz_path, &gz).map_err(|e| format!("{}: {e}", gz_path.display()))?;
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_owned()
        };
        writeln!(
            table,
            "    ({rel:?}, include_bytes!({:?}), {gz_expr}),",
            body.0.display().to_string()
        )
        .map_err(|e| e.to_string())?;
    }
    table.push_str("];\n");
    let dest = out.join("web_assets.rs");
    std::fs::write(&dest, table).map_err(|e| format!("{}: {e}", dest.display()))
}

/// Bundles and minifies the page's modules into `dir/main.js`, and its
/// style sheet into `dir/app.css`.
fn minify(esbuild: &Path, src: &Path, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let runs: [(&str, &[&str]); 2] = [
        (
            "js/main.js",
            &["--bundle", "--format=esm", "--target=es2020", "--minify"],
        ),
        ("app.css", &["--minify"]),
    ];
    for (input, flags) in runs {
        let name = input.rsplit('/').next().unwrap_or(input);
        let output = std::process::Command::new(esbuild)
            .arg(src.join(input))
            .args(flags)
            .arg(format!("--outfile={}", dir.join(name).display()))
            .arg("--log-level=error")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", esbuild.display()))?;
        if !output.status.success() {
            return Err(format!(
                "esbuild {input}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// FNV-1a over every path and content: 16 hex digits that change with any file.
fn version_of(files: &[(&str, Vec<u8>)]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (rel, bytes) in files {
        for b in rel
            .bytes()
            .chain([0])
            .chain(bytes.iter().copied())
            .chain([0])
        {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn is_text(path: &str) -> bool {
    [".html", ".js", ".css", ".svg", ".json"]
        .iter()
        .any(|ext| path.ends_with(ext))
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).map_err(|e| e.to_string())?;
    encoder.finish().map_err(|e| e.to_string())
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
