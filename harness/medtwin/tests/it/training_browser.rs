//! `medtwin serve` in a real headless Chromium, driven over WebDriver
//! (Debian's `chromedriver`, the `fantoccini` client): the central station
//! loads and updates live, an instructor-triggered desaturation turns the
//! patient's tile red, a trainee's acknowledgement lands in the
//! after-action report, and the bedside canvases draw at the device's
//! rate. Screenshots go to `target/test-artifacts/training/`. Also the
//! 40-bed measurement (server CPU, browser frame rate), printed, never
//! asserted as a speed. Names contain `chromium`: nextest runs them alone.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::training::{SseReader, client, serve};

const TOKEN: &str = "instructor-token-for-tests";

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// chromedriver on a free port, killed when dropped (each test closes its
/// browser session first, which ends the browser).
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser and its driver, or `None` (with a message) when
/// `MEDTWIN_NO_BROWSER` is set and they are missing.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(on_path);
    let driver = on_path("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var_os("MEDTWIN_NO_BROWSER").is_some() => {
            eprintln!("skipped: chromium or chromedriver missing and MEDTWIN_NO_BROWSER is set");
            None
        }
        _ => panic!(
            "chromium and chromedriver (Debian's chromium-driver) are needed: run ./scripts/test.sh, which installs them"
        ),
    }
}

fn start_driver(driver: &PathBuf) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, url }
}

async fn open_browser(driver: &Driver, chromium: &PathBuf) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--autoplay-policy=no-user-gesture-required"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in headless chromium")
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::common::root().join("target"));
    let dir = target.join("test-artifacts").join("training");
    std::fs::create_dir_all(&dir).expect("the artifacts folder");
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(artifacts().join(name), png).expect("the screenshot is written");
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("the script runs")
}

/// Polls `f` every 200 ms until it yields, or `limit` passes.
async fn poll<T, F: Future<Output = Option<T>>>(
    limit: Duration,
    mut f: impl FnMut() -> F,
) -> Option<T> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

async fn tile_class(c: &Client, patient: &str) -> String {
    match c.find(Locator::Css(&format!("#tile-{patient}"))).await {
        Ok(el) => el.attr("class").await.ok().flatten().unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test]
async fn training_ward_in_headless_chromium_alarms_acknowledges_and_draws_waveforms() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let driver = start_driver(&chromedriver);
    let mut served = serve("scenarios/training/sepsis-ward.toml", &["--speed", "60"]);
    let base = served.url.clone();
    let c = open_browser(&driver, &chromium).await;

    // The central station loads with a tile per patient and updates live.
    c.goto(&base).await.expect("the central station loads");
    let tiles = poll(Duration::from_secs(15), || async {
        let n = js(
            &c,
            "return document.querySelectorAll('#tiles .tile').length",
        )
        .await;
        (n.as_u64() == Some(8)).then_some(8)
    })
    .await;
    assert_eq!(tiles, Some(8), "a tile per patient");
    let clock0 = c
        .find(Locator::Css("#clock"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ticks0 = js(&c, "return state.ticks").await.as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let clock1 = c
        .find(Locator::Css("#clock"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ticks1 = js(&c, "return state.ticks").await.as_u64().unwrap_or(0);
    assert!(
        ticks1 > ticks0 + 3,
        "ticks arrive live: {ticks0} then {ticks1}"
    );
    assert_ne!(clock0, clock1, "the clock moves");
    // Read in one script: the tiles are re-rendered live, so an element
    // found first may be gone when its text is asked for.
    let hr = js(
        &c,
        "const v = document.querySelector('#tile-ward-002 .num.hr .v'); return v ? v.textContent : ''",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .trim()
    .to_owned();
    assert!(
        hr.parse::<f64>().is_ok(),
        "the tile shows a heart rate, not {hr:?}"
    );
    assert!(
        !tile_class(&c, "ward-002").await.contains("alarm-high"),
        "not red before the cue"
    );
    screenshot(&c, "central-before.png").await;

    // The instructor triggers an opioid desaturation from the console.
    c.goto(&format!("{base}instructor")).await.unwrap();
    poll(Duration::from_secs(10), || async {
        let n = js(
            &c,
            "return document.querySelectorAll('#patient option').length",
        )
        .await;
        (n.as_u64() == Some(8)).then_some(())
    })
    .await
    .expect("the console lists the patients");
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    c.find(Locator::Css("#patient"))
        .await
        .unwrap()
        .select_by_value("ward-002")
        .await
        .unwrap();
    c.find(Locator::Css("#condition"))
        .await
        .unwrap()
        .select_by_value("opioid_respiratory_depression")
        .await
        .unwrap();
    let ramp = c.find(Locator::Css("#ramp")).await.unwrap();
    ramp.clear().await.unwrap();
    ramp.send_keys("1m").await.unwrap();
    let severity = c.find(Locator::Css("#severity")).await.unwrap();
    severity.clear().await.unwrap();
    severity.send_keys("1").await.unwrap();
    c.find(Locator::Css("#trigger"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let said = poll(Duration::from_secs(10), || async {
        let t = c
            .find(Locator::Css("#result"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (!t.is_empty()).then_some(t)
    })
    .await
    .unwrap_or_default();
    assert!(
        said.contains("queued_at_ms"),
        "the console's command was taken: {said}"
    );
    screenshot(&c, "instructor.png").await;

    // Back at the central station, the tile turns red (high priority,
    // flashing) within the expected time: the opioid takes RR, SpO2 and
    // consciousness down within its 1 min ramp; the nurse's next round
    // (every 15 min) charts the drowsiness, NEWS2 passes 7, the backend
    // smooths over 1 min and posts news2-high: at most ~18 simulated
    // minutes. At x60, 40 s of wall time is 40 simulated minutes.
    let cued = Instant::now();
    c.goto(&base).await.unwrap();
    let red = poll(Duration::from_secs(40), || async {
        let class = tile_class(&c, "ward-002").await;
        class.contains("alarm-high").then_some(class)
    })
    .await;
    let waited = cued.elapsed();
    screenshot(&c, "central-alarm.png").await;
    let red = red.unwrap_or_else(|| panic!("ward-002's tile did not turn red within 40 s (x60)"));
    assert!(
        red.contains("unacked"),
        "an unacknowledged high alarm flashes: {red}"
    );
    let first = js(&c, "return document.querySelector('#tiles .tile').id").await;
    assert_eq!(first, "tile-ward-002", "the most acute patient comes first");
    let sim_t = js(&c, "return state.t").await;
    eprintln!(
        "figure: ward-002 red {:.1} s wall after the cue (x60), station clock {sim_t} ms",
        waited.as_secs_f64()
    );

    // A trainee acknowledges from the station: the flashing stops, the
    // colour stays while the condition lasts.
    let alarm_id = js(&c, "const a=[...state.alarms.values()].find(a=>a.patient==='ward-002'&&a.priority==='high'&&a.state==='active'); return a? a.id : null").await;
    let alarm_id = alarm_id.as_u64().expect("the high alarm is listed");
    // The list is redrawn on every tick: find and click in one go, retried
    // until the button is caught between two redraws.
    poll(Duration::from_secs(5), || async {
        let button = c
            .find(Locator::Css(&format!("#alarm-{alarm_id} button.ack")))
            .await
            .ok()?;
        button.click().await.ok()
    })
    .await
    .expect("the Ack button is clicked");
    let acked = poll(Duration::from_secs(10), || async {
        let class = tile_class(&c, "ward-002").await;
        (!class.contains("unacked")).then_some(class)
    })
    .await;
    screenshot(&c, "central-acknowledged.png").await;
    let acked = acked.expect("the tile stops flashing once acknowledged");
    assert!(acked.contains("alarm-high"), "still red, steady: {acked}");

    // The bedside view draws its waveforms at the device's rate. At x1
    // the 500 Hz ECG should advance ~500 samples a second.
    let (status, _) = {
        let r = client()
            .post(format!("{base}api/instructor/clock"))
            .bearer_auth(TOKEN)
            .json(&json!({"action": "speed", "speed": 1.0}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(status, 200);
    c.goto(&format!("{base}bed/2")).await.unwrap();
    poll(Duration::from_secs(10), || async {
        let n = js(&c, "return (window.__drawn && window.__drawn.ecg_ii) || 0").await;
        (n.as_u64().unwrap_or(0) > 0).then_some(())
    })
    .await
    .expect("the ECG canvas draws");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = js(
        &c,
        "return [window.__drawn.ecg_ii, window.__drawn.pleth, window.__frames, performance.now()]",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = js(
        &c,
        "return [window.__drawn.ecg_ii, window.__drawn.pleth, window.__frames, performance.now()]",
    )
    .await;
    let f = |v: &Value, i: usize| v[i].as_f64().unwrap_or(0.0);
    let seconds = (f(&after, 3) - f(&before, 3)) / 1000.0;
    let ecg_rate = (f(&after, 0) - f(&before, 0)) / seconds;
    let pleth_rate = (f(&after, 1) - f(&before, 1)) / seconds;
    let fps = (f(&after, 2) - f(&before, 2)) / seconds;
    eprintln!(
        "figure: bedside ECG {ecg_rate:.0} samples/s, pleth {pleth_rate:.0} samples/s (device 500 Hz), {fps:.1} fps"
    );
    assert!(
        (350.0..=650.0).contains(&ecg_rate),
        "the ECG sweeps at the device's 500 Hz: {ecg_rate:.0}/s"
    );
    assert!(pleth_rate > 300.0, "the pleth draws too: {pleth_rate:.0}/s");
    let lit = js(&c, "const c=document.getElementById('canvas-ecg_ii'); const d=c.getContext('2d').getImageData(0,0,c.width,c.height).data; let n=0; for(let i=1;i<d.length;i+=4){ if(d[i]>100) n++; } return n;").await;
    assert!(
        lit.as_u64().unwrap_or(0) > 500,
        "the ECG trace is on the canvas: {lit} green pixels"
    );
    screenshot(&c, "bedside.png").await;

    // The session ends; the acknowledgement is in the after-action report.
    c.goto(&format!("{base}report")).await.unwrap();
    screenshot(&c, "after-action-live.png").await;
    let ack_row = js(
        &c,
        "const a = document.querySelector('#alarms'); return a ? a.innerText : ''",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned();
    assert!(
        ack_row.contains("news2-high") && ack_row.contains("trainee"),
        "{ack_row}"
    );
    c.close().await.ok();
    let r = client()
        .post(format!("{base}api/instructor/end"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(served.wait_exit(Duration::from_secs(20)), Some(0));
    let html = std::fs::read_to_string(served.report_dir().join("after-action.html")).unwrap();
    assert!(html.contains("news2-high") && html.contains("trainee"));
}

/// The performance figures: a 40-bed ward at real time, every bed's
/// waveforms streaming to a subscriber, the bedside page open in
/// chromium. Prints the server's CPU (its own CPU time over a window) and
/// the browser's frame rate; asserts only that both were measured.
#[tokio::test]
async fn training_forty_beds_in_chromium_measures_server_cpu_and_fps() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let driver = start_driver(&chromedriver);
    let served = serve(
        "fixtures/scenarios/training-40-beds.toml",
        &["--speed", "1"],
    );
    let base = served.url.clone();
    let c = open_browser(&driver, &chromium).await;
    c.goto(&format!("{base}bed/0")).await.unwrap();
    // Every bed's waveforms, read as fast as they come.
    let all = tokio::spawn({
        let url = format!("{base}api/waves");
        async move {
            let mut feed = SseReader::open(&url, None).await;
            let mut blocks = 0u64;
            while feed.next(Duration::from_secs(30)).await.is_some() {
                blocks += 1;
            }
            blocks
        }
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stats = |v: Value| {
        (
            v["cpu_s"].as_f64().unwrap_or(0.0),
            v["steps"].as_u64().unwrap_or(0),
        )
    };
    let get = || async {
        client()
            .get(format!("{base}api/stats"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let (cpu0, steps0) = stats(get().await);
    let frames0 = js(
        &c,
        "return [window.__frames, performance.now(), window.__drawn.ecg_ii||0]",
    )
    .await;
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (cpu1, steps1) = stats(get().await);
    let frames1 = js(
        &c,
        "return [window.__frames, performance.now(), window.__drawn.ecg_ii||0]",
    )
    .await;
    let window_s = wall.elapsed().as_secs_f64();
    let cpu_pct = (cpu1 - cpu0) / window_s * 100.0;
    let f = |v: &Value, i: usize| v[i].as_f64().unwrap_or(0.0);
    let fps = (f(&frames1, 0) - f(&frames0, 0)) / ((f(&frames1, 1) - f(&frames0, 1)) / 1000.0);
    let ecg = (f(&frames1, 2) - f(&frames0, 2)) / ((f(&frames1, 1) - f(&frames0, 1)) / 1000.0);
    let lagged = get().await["waves"]["lagged"].clone();
    screenshot(&c, "bedside-40-beds.png").await;
    c.close().await.ok();
    drop(served);
    let blocks = all.await.unwrap_or(0);
    eprintln!(
        "figure: 40 beds x1, all waveforms streaming ({blocks} blocks read): serve CPU {cpu_pct:.1} % of one core over {window_s:.1} s ({} steps), browser {fps:.1} fps, ECG {ecg:.0} samples/s, waves lagged {lagged}",
        steps1 - steps0
    );
    assert!(steps1 > steps0, "the ward ran during the window");
    assert!(fps > 0.0 && blocks > 0, "both sides measured");
}
