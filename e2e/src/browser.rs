//! A real headless browser for tests: Debian's Chromium driven through its ChromeDriver over
//! the W3C WebDriver protocol (JSON over HTTP on loopback). Nothing is downloaded: both come
//! from Debian's packages (`e2e/setup.sh`).
//!
//! `Browser::start(dir)` starts ChromeDriver and one headless session; `goto`, `click`,
//! `type_into`, `text`, `accept_alert` and `screenshot` are what a test does with a page.
//! Dropped: the session is ended and ChromeDriver (with its Chromium) stopped.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};

use crate::components;
use crate::eventually::try_eventually;
use crate::ports::free_port;
use crate::process::{Process, TestDir};

/// The WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    driver: SocketAddr,
    session: String,
    _process: Process,
}

/// How long [`Browser`] waits for an element it is asked to act on to appear.
const FIND_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Browser {
    /// Starts ChromeDriver on a free loopback port and a headless Chromium session
    /// (1280x900, no sandbox: tests run as root in CI).
    pub async fn start(dir: &TestDir) -> anyhow::Result<Self> {
        let chromium = components::chromium()?;
        let driver_bin = components::chromedriver()?;
        let port = free_port()?;
        let process = Process::spawn(
            dir,
            "chromedriver",
            driver_bin,
            [format!("--port={port}"), "--allowed-ips=127.0.0.1".into()],
        )?;
        let driver: SocketAddr = ([127, 0, 0, 1], port).into();
        try_eventually(Duration::from_secs(20), || async {
            let (status, body) = crate::http::get(driver, "localhost", "/status", &[]).await?;
            anyhow::ensure!(
                status == 200 && body.contains("\"ready\":true"),
                "{status} {body}"
            );
            Ok(())
        })
        .await
        .context("ChromeDriver did not become ready")?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--no-first-run", "--disable-extensions",
                         "--user-data-dir=".to_string() + &dir.subdir("chromium-profile")?.display().to_string()],
            },
        }}});
        let created = call(driver, "POST", "/session", Some(caps)).await?;
        let session = created["sessionId"]
            .as_str()
            .context("WebDriver gave no sessionId")?
            .to_string();
        Ok(Self {
            driver,
            session,
            _process: process,
        })
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        call(
            self.driver,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
        .await
    }

    /// Loads `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await
            .map(|_| ())
    }

    /// The first element matching the CSS `selector`, waiting up to [`FIND_WAIT`] for one to
    /// appear (a page's script may draw it after the page has loaded); an error when none does.
    async fn find(&self, selector: &str) -> anyhow::Result<String> {
        let started = std::time::Instant::now();
        let v = loop {
            let found = self
                .cmd(
                    "POST",
                    "/element",
                    Some(json!({"using": "css selector", "value": selector})),
                )
                .await;
            match found {
                Err(e)
                    if e.to_string().contains("no such element")
                        && started.elapsed() < FIND_WAIT =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => {
                    break other.with_context(|| format!("no element matches {selector:?}"))?;
                }
            }
        };
        Ok(v[ELEMENT]
            .as_str()
            .with_context(|| format!("WebDriver gave no element reference for {selector:?}: {v}"))?
            .to_string())
    }

    /// The visible text of the first element matching `selector` (found again if the page
    /// replaced it meanwhile, like [`Browser::click`]).
    pub async fn text(&self, selector: &str) -> anyhow::Result<String> {
        let mut attempts = 0;
        loop {
            let id = self.find(selector).await?;
            match self.cmd("GET", &format!("/element/{id}/text"), None).await {
                Err(e) if attempts < 5 && e.to_string().contains("stale element") => {
                    attempts += 1;
                }
                other => return Ok(other?.as_str().unwrap_or_default().to_string()),
            }
        }
    }

    /// How many elements match `selector`.
    pub async fn count(&self, selector: &str) -> anyhow::Result<usize> {
        let v = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await?;
        Ok(v.as_array().map_or(0, Vec::len))
    }

    /// Clicks the first element matching `selector`. Live pages replace parts of themselves:
    /// an element replaced between finding and clicking it is found again (a few times).
    pub async fn click(&self, selector: &str) -> anyhow::Result<()> {
        let mut attempts = 0;
        loop {
            let id = self.find(selector).await?;
            match self
                .cmd("POST", &format!("/element/{id}/click"), Some(json!({})))
                .await
            {
                Err(e) if attempts < 5 && e.to_string().contains("stale element") => {
                    attempts += 1;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// Types `text` into the first element matching `selector`.
    pub async fn type_into(&self, selector: &str, text: &str) -> anyhow::Result<()> {
        let id = self.find(selector).await?;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await
        .map(|_| ())
    }

    /// The text of the open `confirm()` dialog, accepted.
    pub async fn accept_alert(&self) -> anyhow::Result<String> {
        let text = self.cmd("GET", "/alert/text", None).await?;
        self.cmd("POST", "/alert/accept", Some(json!({}))).await?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }

    /// The page's current HTML.
    pub async fn source(&self) -> anyhow::Result<String> {
        let v = self.cmd("GET", "/source", None).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let v = self.cmd("GET", "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().context("WebDriver gave no screenshot")?)
            .context("the screenshot is not base64")?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: ChromeDriver is killed with its process anyway.
        let driver = self.driver;
        let path = format!("/session/{}", self.session);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = call(driver, "DELETE", &path, None).await;
            });
        }
    }
}

/// One WebDriver command: its `value`, or the WebDriver error as an error.
async fn call(
    driver: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let r = match (method, body) {
        ("POST", Some(b)) => crate::http::post_json(driver, "localhost", path, &[], &b).await?,
        ("POST", None) => {
            crate::http::post_json(driver, "localhost", path, &[], &json!({})).await?
        }
        (m, _) => crate::http::send(driver, m, "localhost", path, &[]).await?,
    };
    let v: Value = serde_json::from_str(&r.body)
        .with_context(|| format!("WebDriver {method} {path}: not JSON: {}", r.body))?;
    if r.status != 200 {
        bail!(
            "WebDriver {method} {path}: {} {}: {}",
            r.status,
            v["value"]["error"].as_str().unwrap_or(""),
            v["value"]["message"].as_str().unwrap_or("")
        );
    }
    Ok(v["value"].clone())
}
