//! deploy/: `install.sh` installs, reinstalls and uninstalls the agent and
//! the aggregator into a temporary root (never the machine itself), the
//! installed example configs are accepted by the binaries' config loaders,
//! and both systemd units pass `systemd-analyze verify`.
//!
//! Needs bash and, for the unit check, systemd-analyze (Debian package
//! `systemd`); that test fails, rather than skips, when it is missing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use tempfile::TempDir;

const ROLES: [&str; 2] = ["agent", "aggregator"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn script() -> PathBuf {
    deploy_dir().join("install.sh")
}

/// Runs install.sh with `args`, never touching systemctl.
fn install(args: &[&str]) -> Result<Output> {
    Command::new("bash")
        .arg(script())
        .args(args)
        .env_remove("FLEETWATCH_CONFIG")
        .output()
        .context("cannot run bash deploy/install.sh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(out: &Output, what: &str) -> Result<String> {
    ensure!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    Ok(text(&out.stdout))
}

/// A temporary root, and a stand-in binary (a shell script, deliberately
/// not executable, so the test sees install.sh set the mode).
struct Fixture {
    dir: TempDir,
    root: PathBuf,
    bin: PathBuf,
}

impl Fixture {
    fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("root");
        fs::create_dir(&root)?;
        let bin = dir.path().join("fake-binary");
        fs::write(&bin, "#!/bin/sh\nexit 0\n")?;
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o644))?;
        Ok(Self { dir, root, bin })
    }

    fn root_str(&self) -> &str {
        self.root.to_str().unwrap_or_default()
    }

    fn install(&self, role: &str) -> Result<String> {
        let out = install(&[
            &format!("--{role}"),
            "--root",
            self.root_str(),
            "--bin",
            self.bin.to_str().unwrap_or_default(),
        ])?;
        succeeded(&out, &format!("install.sh --{role}"))
    }

    fn uninstall(&self, role: &str) -> Result<String> {
        let out = install(&[
            &format!("--{role}"),
            "--uninstall",
            "--root",
            self.root_str(),
        ])?;
        succeeded(&out, &format!("install.sh --{role} --uninstall"))
    }

    fn binary(&self, role: &str) -> PathBuf {
        self.root.join(format!("usr/local/bin/fleetwatch-{role}"))
    }

    fn config(&self, role: &str) -> PathBuf {
        self.root.join(format!("etc/fleetwatch/{role}.toml"))
    }

    fn unit(&self, role: &str) -> PathBuf {
        self.root
            .join(format!("etc/systemd/system/fleetwatch-{role}.service"))
    }
}

fn mode(path: &Path) -> Result<u32> {
    let meta = fs::metadata(path).with_context(|| format!("{} is missing", path.display()))?;
    ensure!(
        meta.is_file() || meta.is_dir(),
        "{} is not a file",
        path.display()
    );
    Ok(meta.permissions().mode() & 0o7777)
}

fn check_installed(fx: &Fixture, role: &str) -> Result<()> {
    let expect = [
        (fx.binary(role), 0o755),
        (fx.config(role), 0o644),
        (fx.unit(role), 0o644),
        (fx.root.join("etc/fleetwatch"), 0o755),
    ];
    for (path, want) in expect {
        let got = mode(&path)?;
        ensure!(
            got == want,
            "{}: mode {got:o}, want {want:o}",
            path.display()
        );
    }
    ensure!(
        fs::read(fx.binary(role))? == fs::read(&fx.bin)?,
        "binary differs"
    );
    let example = deploy_dir().join(format!("{role}.example.toml"));
    ensure!(
        fs::read(fx.config(role))? == fs::read(example)?,
        "config is not the example"
    );
    let unit = deploy_dir().join(format!("fleetwatch-{role}.service"));
    ensure!(fs::read(fx.unit(role))? == fs::read(unit)?, "unit differs");
    Ok(())
}

#[test]
fn install_agent_and_aggregator_into_temp_root() -> Result<()> {
    let fx = Fixture::new()?;
    for role in ROLES {
        let out = fx.install(role)?;
        ensure!(
            out.contains("not running systemctl"),
            "should say systemctl was skipped: {out}"
        );
        check_installed(&fx, role)?;
    }
    // Nothing outside the three places (no state, no stray temp files).
    let mut files = Vec::new();
    collect_files(&fx.root, &mut files)?;
    files.sort();
    let want: Vec<PathBuf> = [
        "etc/fleetwatch/agent.toml",
        "etc/fleetwatch/aggregator.toml",
        "etc/systemd/system/fleetwatch-agent.service",
        "etc/systemd/system/fleetwatch-aggregator.service",
        "usr/local/bin/fleetwatch-agent",
        "usr/local/bin/fleetwatch-aggregator",
    ]
    .iter()
    .map(|p| fx.root.join(p))
    .collect();
    ensure!(files == want, "installed files: {files:?}");
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[test]
fn reinstall_keeps_an_edited_config_and_replaces_the_binary() -> Result<()> {
    let fx = Fixture::new()?;
    for role in ROLES {
        fx.install(role)?;
        let edited = format!(
            "# edited by the operator\n{}",
            fs::read_to_string(fx.config(role))?
        );
        fs::write(fx.config(role), &edited)?;
        fs::write(&fx.bin, "#!/bin/sh\necho new version\n")?;

        let out = fx.install(role)?;
        ensure!(out.contains("kept the existing config"), "{out}");
        ensure!(
            fs::read_to_string(fx.config(role))? == edited,
            "config overwritten"
        );
        ensure!(
            fs::read(fx.binary(role))? == fs::read(&fx.bin)?,
            "binary not replaced"
        );
        ensure!(mode(&fx.binary(role))? == 0o755, "binary mode");
    }
    Ok(())
}

#[test]
fn uninstall_removes_binary_and_unit_and_keeps_config() -> Result<()> {
    let fx = Fixture::new()?;
    for role in ROLES {
        fx.install(role)?;
        let out = fx.uninstall(role)?;
        ensure!(!fx.binary(role).exists(), "binary left behind");
        ensure!(!fx.unit(role).exists(), "unit left behind");
        ensure!(fx.config(role).is_file(), "config removed");
        ensure!(out.contains("kept the config"), "{out}");
        // A second uninstall is harmless.
        let again = fx.uninstall(role)?;
        ensure!(again.contains("was not installed"), "{again}");
    }
    Ok(())
}

#[test]
fn agent_token_is_installed_root_only_and_checked() -> Result<()> {
    let fx = Fixture::new()?;
    let token = format!("fwa_{}", "ab".repeat(32));
    let good = fx.dir.path().join("token");
    fs::write(&good, format!("{token}\n"))?;
    fs::set_permissions(&good, fs::Permissions::from_mode(0o644))?;
    let bin = fx.bin.to_str().unwrap_or_default();
    let with_token = |file: &Path| {
        install(&[
            "--agent",
            "--root",
            fx.root_str(),
            "--bin",
            bin,
            "--token-file",
            file.to_str().unwrap_or_default(),
        ])
    };
    let installed = fx.root.join("etc/fleetwatch/agent.token");

    // Without a token the script says where it goes, and installs none.
    let out = fx.install("agent")?;
    ensure!(out.contains("no agent token yet"), "{out}");
    ensure!(!installed.exists(), "a token appeared from nowhere");

    let out = succeeded(&with_token(&good)?, "install --token-file")?;
    ensure!(out.contains("agent.token (mode 0600)"), "{out}");
    ensure!(
        mode(&installed)? == 0o600,
        "token mode {:o}",
        mode(&installed)?
    );
    ensure!(
        fs::read_to_string(&installed)?.trim() == token,
        "token differs"
    );
    // The unit hands it to the service as a credential.
    let unit = fs::read_to_string(fx.unit("agent"))?;
    ensure!(
        unit.contains("LoadCredential=agent-token:/etc/fleetwatch/agent.token")
            && unit.contains("Environment=FLEETWATCH_TOKEN_FILE=%d/agent-token"),
        "{unit}"
    );

    // Something that is not an agent token is refused, and the installed
    // one is left alone.
    let bad = fx.dir.path().join("bad");
    fs::write(&bad, "password123\n")?;
    let out = with_token(&bad)?;
    ensure!(out.status.code() == Some(1), "{}", out.status);
    ensure!(
        text(&out.stderr).contains("does not hold an agent token"),
        "{}",
        text(&out.stderr)
    );
    ensure!(
        fs::read_to_string(&installed)?.trim() == token,
        "token replaced"
    );

    let out = fx.uninstall("agent")?;
    ensure!(out.contains("kept the agent token"), "{out}");
    ensure!(installed.exists(), "uninstall removed the token");
    Ok(())
}

#[test]
fn bad_arguments_exit_2_with_usage() -> Result<()> {
    let fx = Fixture::new()?;
    let root = fx.root_str();
    let cases: [&[&str]; 8] = [
        &[],
        &["--aggregator", "--token-file", "/dev/null", "--root", root],
        &["--root", root],
        &["--agent", "--aggregator", "--root", root],
        &["--agent", "--frobnicate"],
        &["--agent", "--root"],
        &["--agent", "--bin"],
        &[
            "--agent",
            "--uninstall",
            "--bin",
            "/bin/true",
            "--root",
            root,
        ],
    ];
    for args in cases {
        let out = install(args)?;
        let stderr = text(&out.stderr);
        ensure!(
            out.status.code() == Some(2),
            "{args:?}: {}, stderr: {stderr}",
            out.status
        );
        ensure!(
            stderr.contains("error:") && stderr.contains("Usage:"),
            "{args:?}: {stderr}"
        );
    }
    let mut files = Vec::new();
    collect_files(&fx.root, &mut files)?;
    ensure!(files.is_empty(), "bad arguments installed {files:?}");

    let help = install(&["--help"])?;
    ensure!(
        help.status.success() && text(&help.stdout).contains("--uninstall"),
        "--help"
    );
    Ok(())
}

#[test]
fn missing_binary_or_root_is_a_clear_error() -> Result<()> {
    let fx = Fixture::new()?;
    let missing = fx.dir.path().join("no-such-binary");
    let out = install(&[
        "--agent",
        "--root",
        fx.root_str(),
        "--bin",
        missing.to_str().unwrap_or_default(),
    ])?;
    let stderr = text(&out.stderr);
    ensure!(out.status.code() == Some(1), "{}: {stderr}", out.status);
    ensure!(
        stderr.contains("not found") && stderr.contains("no-such-binary"),
        "{stderr}"
    );
    ensure!(
        !fx.config("agent").exists(),
        "installed a config without a binary"
    );

    let nowhere = fx.dir.path().join("no-such-root");
    let out = install(&[
        "--aggregator",
        "--root",
        nowhere.to_str().unwrap_or_default(),
        "--bin",
        fx.bin.to_str().unwrap_or_default(),
    ])?;
    ensure!(out.status.code() == Some(1), "{}", out.status);
    ensure!(
        text(&out.stderr).contains("no such directory"),
        "{}",
        text(&out.stderr)
    );
    ensure!(!nowhere.exists(), "created the missing root");
    Ok(())
}

#[test]
fn installed_example_configs_load() -> Result<()> {
    let fx = Fixture::new()?;
    for role in ROLES {
        fx.install(role)?;
    }
    let agent = fx.config("agent");
    let args = fleetwatch_agent::config::Args::try_parse_from([
        "fleetwatch-agent".as_ref(),
        "--config".as_ref(),
        agent.as_os_str(),
        "--host-id".as_ref(),
        "deploy-test".as_ref(),
    ])?;
    fleetwatch_agent::Config::load(&args)
        .map_err(|e| anyhow::anyhow!("agent.example.toml: {e}"))?;

    let aggregator = fx.config("aggregator");
    let args = fleetwatch_aggregator::config::Args::try_parse_from([
        "fleetwatch-aggregator".as_ref(),
        "--config".as_ref(),
        aggregator.as_os_str(),
    ])?;
    let config = fleetwatch_aggregator::Config::load(&args)
        .map_err(|e| anyhow::anyhow!("aggregator.example.toml: {e}"))?;
    ensure!(
        config.db == Path::new("/var/lib/fleetwatch/fleetwatch.db"),
        "the db must live in the unit's StateDirectory, not {}",
        config.db.display()
    );
    Ok(())
}

#[test]
fn units_are_hardened() -> Result<()> {
    let common = [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "SystemCallArchitectures=native",
        "Restart=on-failure",
        "RestartSec=",
        "WantedBy=multi-user.target",
    ];
    let specific: [(&str, &[&str]); 2] = [
        (
            "agent",
            &[
                "ExecStart=/usr/local/bin/fleetwatch-agent --config /etc/fleetwatch/agent.toml",
                "CapabilityBoundingSet=CAP_SYS_PTRACE CAP_NET_ADMIN CAP_SYS_NICE\n",
                "AmbientCapabilities=CAP_SYS_PTRACE CAP_NET_ADMIN CAP_SYS_NICE\n",
                "StateDirectory=fleetwatch-agent\n",
                "ProtectHome=read-only",
                "ProtectProc=default",
                "StateDirectory=fleetwatch-agent\n",
                "TimeoutStopSec=",
            ],
        ),
        (
            "aggregator",
            &[
                "ExecStart=/usr/local/bin/fleetwatch-aggregator --config /etc/fleetwatch/aggregator.toml",
                "StateDirectory=fleetwatch\n",
                "CapabilityBoundingSet=\n",
                "ProtectHome=yes",
                "PrivateDevices=yes",
            ],
        ),
    ];
    for (role, own) in specific {
        let unit = fs::read_to_string(deploy_dir().join(format!("fleetwatch-{role}.service")))?;
        for want in common.iter().chain(own) {
            ensure!(
                unit.lines().any(|l| format!("{l}\n").starts_with(want)),
                "fleetwatch-{role}.service lacks `{}`",
                want.trim_end()
            );
        }
    }
    Ok(())
}

#[test]
fn units_pass_systemd_analyze_verify() -> Result<()> {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
    let Some(analyze) = analyze else {
        bail!(
            "systemd-analyze is not installed: it verifies the units in deploy/ \
             (Debian/Ubuntu: apt-get install systemd)"
        );
    };

    // Verify the installed units, with ExecStart pointing into the temporary
    // root (verify insists the binary exists and is executable).
    let fx = Fixture::new()?;
    let check_dir = fx.dir.path().join("units");
    fs::create_dir(&check_dir)?;
    let mut units = Vec::new();
    for role in ROLES {
        fx.install(role)?;
        let installed = fs::read_to_string(fx.unit(role))?;
        let exec = format!("ExecStart=/usr/local/bin/fleetwatch-{role} ");
        ensure!(
            installed.matches("ExecStart=").count() == 1 && installed.contains(&exec),
            "fleetwatch-{role}.service: expected one `{exec}...`"
        );
        let rewritten = installed.replace(
            "ExecStart=/usr/local/bin/",
            &format!("ExecStart={}/usr/local/bin/", fx.root.display()),
        );
        let path = check_dir.join(format!("fleetwatch-{role}.service"));
        fs::write(&path, rewritten)?;
        units.push(path);
    }

    let out = Command::new(analyze)
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .context("cannot run systemd-analyze")?;
    let stderr = text(&out.stderr);
    ensure!(
        out.status.success(),
        "systemd-analyze verify failed ({}):\n{stderr}{}",
        out.status,
        text(&out.stdout)
    );
    // verify exits 0 on unknown keys and bad values ("..., ignoring"), so
    // any complaint about our files fails the test too.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("fleetwatch-"))
        .collect();
    ensure!(
        complaints.is_empty(),
        "systemd-analyze verify:\n{}",
        complaints.join("\n")
    );
    Ok(())
}
