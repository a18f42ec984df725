//! Project tasks beyond cargo's own. `cargo run -p xtask -- web` builds the web page (the
//! `mnist-bn-web` crate for `wasm32-unknown-unknown`, its JavaScript bindings, the page, the
//! shipped weights and the training data) into one directory and serves it on localhost.

use std::fs;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "mnist-bn's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build the web page and serve it on http://127.0.0.1:PORT/.
    Web {
        /// The port to serve on (0: any free port, printed).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Where the page is assembled (default: <target dir>/web).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Build the page, then exit.
        #[arg(long, conflicts_with = "serve_only")]
        build_only: bool,
        /// Serve what an earlier build assembled, without building.
        #[arg(long)]
        serve_only: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Web {
            port,
            out,
            build_only,
            serve_only,
        } => {
            let root = workspace_root();
            let target = target_dir(&root);
            let out = out.unwrap_or_else(|| target.join("web"));
            if !serve_only {
                build_web(&root, &target, &out)?;
            }
            if !build_only {
                serve(&out, port)?;
            }
            Ok(())
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the workspace root")
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                root.join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| root.join("target"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(command: &mut Command) -> Result<()> {
    eprintln!("+ {command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

/// The `wasm-bindgen` version in Cargo.lock: the CLI must be exactly this one.
fn locked_wasm_bindgen(root: &Path) -> Result<String> {
    let lock = root.join("Cargo.lock");
    let text = fs::read_to_string(&lock).with_context(|| format!("reading {}", lock.display()))?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(version) = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|l| l.strip_suffix('"'))
        {
            return Ok(version.to_string());
        }
    }
    bail!("{}: no wasm-bindgen package", lock.display())
}

/// `wasm-bindgen` at the locked version: the one on PATH or in cargo's bin directory, or one
/// installed now with `cargo install` (prebuilt binaries cannot be downloaded here).
fn wasm_bindgen_cli(root: &Path) -> Result<PathBuf> {
    let version = locked_wasm_bindgen(root)?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut candidates = vec![PathBuf::from("wasm-bindgen")];
    if let Some(home) = &cargo_home {
        candidates.push(home.join("bin/wasm-bindgen"));
    }
    let matches = |cli: &Path| {
        Command::new(cli)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .is_some_and(|o| {
                String::from_utf8_lossy(&o.stdout).trim() == format!("wasm-bindgen {version}")
            })
    };
    if let Some(found) = candidates.iter().find(|c| matches(c)) {
        return Ok(found.clone());
    }
    eprintln!("installing wasm-bindgen-cli {version} (the version in Cargo.lock)");
    let install = |locked: bool| {
        let mut command = cargo();
        command.args(["install", "wasm-bindgen-cli", "--version", &version]);
        if locked {
            command.arg("--locked");
        }
        run(&mut command)
    };
    // With its own lockfile first; a registry mirror may lack a version that lockfile names
    // (seen here: webpki-roots 1.0.11), and then cargo resolves the newest compatible ones.
    if install(true).is_err() {
        eprintln!(
            "installing wasm-bindgen-cli {version} with its locked dependencies failed; resolving them anew"
        );
        install(false)?;
    }
    candidates
        .into_iter()
        .find(|c| matches(c))
        .with_context(|| format!("wasm-bindgen {version} was installed but cannot be run"))
}

fn build_web(root: &Path, target: &Path, out: &Path) -> Result<()> {
    // Assemble beside the output and swap it in, so a failed build leaves the old page whole.
    let name = out
        .file_name()
        .with_context(|| format!("--out {}: name a directory for the page", out.display()))?;
    let staging = out.with_file_name(format!(".{}.staging", name.to_string_lossy()));
    if out.exists() && !is_built_page(out) && fs::read_dir(out)?.next().is_some() {
        bail!(
            "{} exists and does not hold a page built by xtask: choose another --out",
            out.display()
        );
    }
    let bindgen = wasm_bindgen_cli(root)?;
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    // The CPU build (`pkg/`), then the one with Burn's wgpu backend for WebGPU
    // (`pkg-webgpu/`), which the page loads only when asked to train on the GPU.
    let wasm = target.join("wasm32-unknown-unknown/release/mnist_bn_web.wasm");
    for (features, pkg) in [(None, "pkg"), (Some("webgpu"), "pkg-webgpu")] {
        let mut build = cargo();
        build.current_dir(root).args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "mnist-bn-web",
        ]);
        if let Some(features) = features {
            build.args(["--features", features]);
        }
        run(&mut build)?;
        run(Command::new(&bindgen)
            .args(["--target", "web", "--no-typescript", "--out-dir"])
            .arg(staging.join(pkg))
            .arg(&wasm))?;
        precompress(&staging.join(pkg).join("mnist_bn_web_bg.wasm"))?;
    }
    copy_dir(&root.join("web/www"), &staging)?;
    for (from, to) in [
        ("pretrained/batchnorm.bpk", "pretrained/batchnorm.bpk"),
        ("pretrained/plain.bpk", "pretrained/plain.bpk"),
        (
            "data/mnist/train-images.idx3-ubyte.gz",
            "data/train-images-idx3-ubyte.gz",
        ),
        (
            "data/mnist/train-labels.idx1-ubyte.gz",
            "data/train-labels-idx1-ubyte.gz",
        ),
        (
            "data/mnist/t10k-images.idx3-ubyte.gz",
            "data/t10k-images-idx3-ubyte.gz",
        ),
        (
            "data/mnist/t10k-labels.idx1-ubyte.gz",
            "data/t10k-labels-idx1-ubyte.gz",
        ),
    ] {
        copy(&root.join(from), &staging.join(to))?;
    }
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("removing {}", out.display()))?;
    }
    fs::rename(&staging, out).with_context(|| format!("moving the page to {}", out.display()))?;
    let size = |file: &str| fs::metadata(out.join(file)).map(|m| m.len() as f64 / 1e6);
    eprintln!(
        "built the page in {} (WebAssembly: CPU build {:.1} MB, {:.1} MB gzipped; WebGPU build \
         {:.1} MB, {:.1} MB gzipped)",
        out.display(),
        size("pkg/mnist_bn_web_bg.wasm")?,
        size("pkg/mnist_bn_web_bg.wasm.gz")?,
        size("pkg-webgpu/mnist_bn_web_bg.wasm")?,
        size("pkg-webgpu/mnist_bn_web_bg.wasm.gz")?,
    );
    Ok(())
}

/// Writes `path.gz` beside `path` (gzip at its best compression): what a static host serves
/// with `Content-Encoding: gzip` to a browser that accepts it (nginx's `gzip_static`, Caddy's
/// `precompressed`, and this task's own server).
fn precompress(path: &Path) -> Result<()> {
    use std::io::Write;
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&bytes)?;
    let gz = path.with_extension(format!(
        "{}.gz",
        path.extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
    ));
    fs::write(&gz, encoder.finish()?).with_context(|| format!("writing {}", gz.display()))
}

/// Whether `dir` holds a page this task built (and may therefore be replaced).
fn is_built_page(dir: &Path) -> bool {
    dir.join("index.html").is_file() && dir.join("pkg/mnist_bn_web_bg.wasm").is_file()
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()))?;
        } else {
            copy(&path, &to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Serves `dir` on 127.0.0.1: GET and HEAD of its files only, with the MIME types a browser
/// needs for modules and WebAssembly.
fn serve(dir: &Path, port: u16) -> Result<()> {
    if !dir.join("index.html").is_file() {
        bail!(
            "{} holds no built page; run `cargo run -p xtask -- web` without --serve-only",
            dir.display()
        );
    }
    let server = tiny_http::Server::http(SocketAddr::from(([127, 0, 0, 1], port)))
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let address = server.server_addr().to_ip().context("not an IP address")?;
    println!(
        "serving {} on http://{address}/ (Ctrl-C to stop)",
        dir.display()
    );
    for request in server.incoming_requests() {
        let response = respond(dir, &request);
        if let Err(e) = request.respond(response) {
            eprintln!("{e}");
        }
    }
    Ok(())
}

fn respond(dir: &Path, request: &tiny_http::Request) -> tiny_http::ResponseBox {
    use tiny_http::{Header, Method, Response};
    let text =
        |status: u16, body: &str| Response::from_string(body).with_status_code(status).boxed();
    if !matches!(request.method(), Method::Get | Method::Head) {
        return text(405, "only GET and HEAD");
    }
    let Some(path) = file_for(dir, request.url()) else {
        return text(404, "not found");
    };
    let header = |name: &str, value: &str| Header::from_bytes(name, value).expect("a valid header");
    // The precompressed copy, to a browser that takes gzip.
    let accept_encoding = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Accept-Encoding"))
        .map_or("", |h| h.value.as_str());
    let (served, encoding) = match gzipped_copy(&path, accept_encoding) {
        Some(gz) => (gz, Some("gzip")),
        None => (path.clone(), None),
    };
    let Ok(file) = fs::File::open(&served) else {
        return text(404, "not found");
    };
    let mut response = Response::from_file(file)
        .with_header(header("Content-Type", mime(&path)))
        .with_header(header("Cache-Control", "no-cache"))
        .with_header(header("Vary", "Accept-Encoding"));
    if let Some(encoding) = encoding {
        response = response.with_header(header("Content-Encoding", encoding));
    }
    response.boxed()
}

/// `path.gz` when it exists and the browser's `Accept-Encoding` takes gzip.
fn gzipped_copy(path: &Path, accept_encoding: &str) -> Option<PathBuf> {
    let takes_gzip = accept_encoding
        .split(',')
        .any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip"));
    let gz = path.with_file_name(format!("{}.gz", path.file_name()?.to_str()?));
    (takes_gzip && gz.is_file()).then_some(gz)
}

/// The file a URL names inside `dir` (`/` is `index.html`); `None` for anything that would
/// leave `dir` or is not a file.
fn file_for(dir: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    let relative = Path::new(relative);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let full = dir.join(relative);
    full.is_file().then_some(full)
}

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_files_inside_the_directory_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        fs::write(dir.join("index.html"), "hi").unwrap();
        fs::create_dir_all(dir.join("pkg")).unwrap();
        fs::write(dir.join("pkg/a.wasm"), "w").unwrap();
        assert_eq!(file_for(&dir, "/"), Some(dir.join("index.html")));
        assert_eq!(
            file_for(&dir, "/pkg/a.wasm?v=1"),
            Some(dir.join("pkg/a.wasm"))
        );
        assert_eq!(file_for(&dir, "/../Cargo.toml"), None);
        assert_eq!(file_for(&dir, "/pkg/../../x"), None);
        assert_eq!(file_for(&dir, "/pkg"), None, "a directory is not served");
        assert_eq!(file_for(&dir, "/missing.js"), None);
        assert_eq!(mime(Path::new("a.wasm")), "application/wasm");
    }

    #[test]
    fn the_webassembly_goes_gzipped_to_browsers_that_take_gzip() {
        use std::io::Read;
        let tmp = tempfile::tempdir().unwrap();
        let wasm = tmp.path().join("a.wasm");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
        fs::write(&wasm, &bytes).unwrap();
        precompress(&wasm).unwrap();
        let gz = tmp.path().join("a.wasm.gz");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(fs::File::open(&gz).unwrap())
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, bytes);
        assert!(fs::metadata(&gz).unwrap().len() < bytes.len() as u64 / 10);
        assert_eq!(gzipped_copy(&wasm, "gzip, deflate, br"), Some(gz.clone()));
        assert_eq!(gzipped_copy(&wasm, "br;q=1.0, gzip;q=0.8"), Some(gz));
        assert_eq!(gzipped_copy(&wasm, "br"), None);
        assert_eq!(gzipped_copy(&wasm, ""), None);
        let html = tmp.path().join("index.html");
        fs::write(&html, "hi").unwrap();
        assert_eq!(gzipped_copy(&html, "gzip"), None, "no copy, no encoding");
    }

    #[test]
    fn only_an_earlier_page_or_an_empty_directory_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let root = workspace_root();
        let target = tmp.path().join("target");
        // A directory with other files is refused before anything is built or removed.
        let mine = tmp.path().join("mine");
        fs::create_dir_all(&mine).unwrap();
        fs::write(mine.join("notes.txt"), "keep me").unwrap();
        let msg = build_web(&root, &target, &mine).unwrap_err().to_string();
        assert!(msg.contains("does not hold a page built by xtask"), "{msg}");
        assert!(mine.join("notes.txt").is_file());
        let msg = build_web(&root, &target, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("name a directory"), "{msg}");
        let page = tmp.path().join("page");
        fs::create_dir_all(page.join("pkg")).unwrap();
        fs::write(page.join("index.html"), "").unwrap();
        fs::write(page.join("pkg/mnist_bn_web_bg.wasm"), "").unwrap();
        assert!(is_built_page(&page));
    }

    #[test]
    fn the_locked_wasm_bindgen_version_is_found() {
        let root = workspace_root();
        let version = locked_wasm_bindgen(&root).unwrap();
        // The web crate pins the same version, so the CLI and the library agree.
        let manifest = fs::read_to_string(root.join("web/Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("wasm-bindgen = \"={version}\"")),
            "web/Cargo.toml does not pin wasm-bindgen {version}"
        );
    }
}
