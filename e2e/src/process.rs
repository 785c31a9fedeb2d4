//! Child processes of a test, and the folder their logs go to.
//!
//! A [`TestDir`] is one test's folder under `target/e2e-logs/<test>-<random>`; every [`Process`]
//! of the test writes `<name>.log` (stdout and stderr interleaved) into it. A `Process` is
//! SIGKILLed and reaped when dropped. When the test fails (the thread is panicking while the
//! last handle to its `TestDir` is dropped) the folder is kept and its path printed; otherwise
//! it is removed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use anyhow::Context;

/// One test's folder for logs, configuration and state. Cheap to clone; removed when the last
/// clone is dropped, unless the test is failing.
#[derive(Clone, Debug)]
pub struct TestDir(Arc<TestDirInner>);

#[derive(Debug)]
struct TestDirInner {
    path: PathBuf,
}

impl TestDir {
    /// Creates `target/e2e-logs/<test>-<random>`.
    pub fn new(test: &str) -> anyhow::Result<Self> {
        let root = crate::components::target_dir().join("e2e-logs");
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let suffix: u32 = rand::random();
        let path = root.join(format!("{}-{suffix:08x}", sanitize(test)));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(Arc::new(TestDirInner { path })))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// A sub-folder, created if missing.
    pub fn subdir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.0.path.join(name);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(path)
    }

    /// Writes a file into the folder and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> anyhow::Result<PathBuf> {
        let path = self.0.path.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

impl Drop for TestDirInner {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("FLEETGATE_E2E_KEEP_LOGS").is_some() {
            eprintln!("e2e: logs and state kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Keeps what makes a readable folder name: ASCII letters, digits, '-' and '_'.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "test".into() } else { s }
}

/// A process of the test exited while it should be running.
#[derive(Debug)]
pub struct Exited {
    pub name: String,
    pub status: String,
    pub log_tail: String,
}

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exited ({}); last log lines:\n{}",
            self.name, self.status, self.log_tail
        )
    }
}

impl std::error::Error for Exited {}

/// What to run: kept so the process can be restarted with the same command line.
#[derive(Clone, Debug)]
struct Spec {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
}

/// Environment every process this test binary starts from now on also gets (set once, before
/// the fleet starts): how a test points every product process at its OTLP receiver
/// (`crate::otlp`) without changing how each is started.
static PRODUCT_ENV: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// Sets [`PRODUCT_ENV`]; an error if it was already set to something else.
pub fn set_product_env(env: Vec<(String, String)>) -> anyhow::Result<()> {
    let set = PRODUCT_ENV.get_or_init(|| env.clone());
    anyhow::ensure!(
        *set == env,
        "the product environment of this test binary is already {set:?}"
    );
    Ok(())
}

/// A child process that is killed when dropped. Output goes to `<TestDir>/<name>.log`.
#[derive(Debug)]
pub struct Process {
    name: String,
    spec: Spec,
    dir: TestDir,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Starts `program args...` with output appended to `<dir>/<name>.log`.
    pub fn spawn(
        dir: &TestDir,
        name: &str,
        program: impl AsRef<Path>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> anyhow::Result<Self> {
        Self::spawn_with_env(dir, name, program, args, Vec::<(String, String)>::new())
    }

    /// Like [`Process::spawn`], with extra environment variables.
    pub fn spawn_with_env(
        dir: &TestDir,
        name: &str,
        program: impl AsRef<Path>,
        args: impl IntoIterator<Item = impl Into<String>>,
        env: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> anyhow::Result<Self> {
        let spec = Spec {
            program: program.as_ref().to_path_buf(),
            args: args.into_iter().map(Into::into).collect(),
            env: env.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            cwd: None,
        };
        let mut process = Self {
            name: name.to_string(),
            log: dir.path().join(format!("{}.log", sanitize(name))),
            spec,
            dir: dir.clone(),
            child: None,
        };
        process.start()?;
        Ok(process)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        writeln!(
            log,
            "=== e2e: starting {} {}",
            self.spec.program.display(),
            self.spec.args.join(" ")
        )?;
        let stderr: File = log.try_clone()?;
        let mut cmd = Command::new(&self.spec.program);
        // Product processes log JSON when stderr is a file (`fleetgate_observe::log`); the
        // harness's logs are read by people and searched by tests, so they get text. A test's
        // own `env` may say otherwise.
        cmd.env("FLEETGATE_LOG_FORMAT", "text");
        if let Some(env) = PRODUCT_ENV.get() {
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
        }
        cmd.args(&self.spec.args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        if let Some(cwd) = &self.spec.cwd {
            cmd.current_dir(cwd);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.spec.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The test folder the process writes into.
    pub fn dir(&self) -> &TestDir {
        &self.dir
    }

    /// The OS process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Ok(None)` while running, `Ok(Some(status))` once it exited by itself.
    pub fn try_exit_status(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        match &mut self.child {
            Some(child) => Ok(child.try_wait()?),
            None => anyhow::bail!("{} was killed by the test", self.name),
        }
    }

    /// Fails with [`Exited`] (and the log tail) if the process has exited. Polling loops
    /// ([`crate::eventually`]) stop at once on this error instead of waiting for their timeout.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.try_exit_status()? {
            return Err(Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log_tail: self.log_tail(40),
            }
            .into());
        }
        Ok(())
    }

    /// SIGKILLs the process and waits for it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if let Ok(mut log) = OpenOptions::new().append(true).open(&self.log) {
                let _ = writeln!(log, "=== e2e: killed {}", self.name);
            }
        }
    }

    /// Kills the process (if running) and starts it again with the same command line.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.start()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        self.kill();
        if failing {
            eprintln!("e2e: {} log: {}", self.name, self.log.display());
        }
    }
}

/// The resident memory (VmRSS) of process `pid` in KiB, 0 when it cannot be read (the process
/// is gone).
pub fn rss_kib(pid: u32) -> u64 {
    proc_field(pid, "status", "VmRSS:").unwrap_or(0)
}

/// A number field of `/proc/<pid>/<file>` (`status`, `smaps_rollup`), e.g. `Anonymous:` in
/// KiB; `None` when the kernel does not show it (or the process is gone).
pub fn proc_field(pid: u32, file: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_readable_names() {
        for (input, want) in [
            ("harness::etcd", "harness__etcd"),
            ("tenant-a_c1", "tenant-a_c1"),
            ("", "test"),
        ] {
            assert_eq!(sanitize(input), want, "{input:?}");
        }
    }

    #[test]
    fn output_goes_to_the_log_and_kill_stops_the_process() {
        let dir = TestDir::new("process-unit").unwrap();
        let path = dir.path().to_path_buf();
        let mut p =
            Process::spawn(&dir, "sh", "/bin/sh", ["-c", "echo hello; exec sleep 60"]).unwrap();
        let pid = p.pid().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !p.log().contains("hello") {
            assert!(std::time::Instant::now() < deadline, "log: {}", p.log());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        p.ensure_running().unwrap();
        p.kill();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still exists after kill"
        );
        p.restart().unwrap();
        assert_ne!(p.pid(), Some(pid));
        p.ensure_running().unwrap();
        drop(p);
        drop(dir);
        assert!(!path.exists(), "a passing test's folder is removed");
    }

    #[test]
    fn a_process_that_exits_is_reported_with_its_log() {
        let dir = TestDir::new("process-exit").unwrap();
        let mut p =
            Process::spawn(&dir, "false", "/bin/sh", ["-c", "echo boom >&2; exit 3"]).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Err(e) = p.ensure_running() {
                let msg = e.to_string();
                assert!(msg.contains("boom") && msg.contains('3'), "{msg}");
                break;
            }
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
