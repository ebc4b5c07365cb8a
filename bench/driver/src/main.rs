//! valet-bench: the one load driver used for every scenario of `bench/run.sh`, so that Valet,
//! node-oidc-provider and the axum hello ceiling are all measured by the same client.
//!
//!   valet-bench hello --listen 127.0.0.1:PORT
//!       a bare axum 0.8 "hello" server on tokio's default multi-thread runtime (as `valet serve`).
//!   valet-bench load --url URL [--method M] [-H 'K: V']... [--body S | --bodies FILE]
//!                    [--conns 32] [--threads 1] [--duration 5] [--warmup 1] [--rate R]
//!                    [--pid PID] [--expect 200] [--expect-body SUBSTRING] [--out FILE]
//!       HTTP/1.1 keep-alive load on a fixed pool of connections. Closed loop by default; with
//!       `--rate R` open loop at R req/s (latency counted from the intended send time when the
//!       driver is behind, see `Pacer`). `--bodies FILE` sends each line of FILE as the body of
//!       exactly one request (single-use values such as authorization codes) and stops early
//!       when they run out. With `--pid`, the server's CPU (utime+stime) and RSS (VmRSS sampled
//!       every 20 ms) are measured over the window. A response counts as a success only with the
//!       expected status and, with `--expect-body`, a body containing SUBSTRING (checked on every
//!       response). Prints one JSON object.
//!   valet-bench mint --url AUTHORIZE_URL --cookie 'k=v; ...' --count N [--conns 4] --out FILE
//!       replays an authorize request that redirects straight to the client with a code (the
//!       session has already consented) and writes one code per line.
//!   valet-bench sign --alg RS256|ES256 [--threads 1] [--duration 3] [--bytes 300] [--out FILE]
//!       the machine's raw JWS signing rate with pre-parsed aws-lc-rs keys (what a server that
//!       parses its key once can reach at best): an RSA-2048 key pair (RS256: PKCS#1 v1.5 SHA-256)
//!       or a P-256 `EcdsaKeyPair` (ES256: ECDSA_P256_SHA256_FIXED_SIGNING) generated once, then a
//!       JWT-sized signing input signed in a loop on N OS threads for S seconds. Prints one JSON
//!       object: signs/s in total and per thread, the process's CPU and the rest of the machine's.
//!
//! Every run is bounded: warmup + duration (+ a 10 s request timeout), never more.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("hello") => hello(&args[1..]),
        Some("load") => load(&args[1..]),
        Some("mint") => mint(&args[1..]),
        Some("sign") => sign(&args[1..]),
        _ => Err("usage: valet-bench hello|load|mint|sign ... (see the comment at the top of bench/driver/src/main.rs)".into()),
    };
    if let Err(e) = r {
        eprintln!("valet-bench: {e}");
        std::process::exit(2);
    }
}

/// `--name value` options; `-H` may repeat.
struct Opts {
    kv: Vec<(String, String)>,
}

impl Opts {
    fn parse(args: &[String]) -> Res<Opts> {
        let mut kv = Vec::new();
        let mut it = args.iter();
        while let Some(k) = it.next() {
            if !k.starts_with('-') {
                return Err(format!("unexpected argument {k}").into());
            }
            let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
            kv.push((k.trim_start_matches('-').to_string(), v.clone()));
        }
        Ok(Opts { kv })
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.kv.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<&str> {
        self.kv.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect()
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Res<T> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{k}: bad number {v}").into()),
        }
    }
    fn req(&self, k: &str) -> Res<&str> {
        self.get(k).ok_or_else(|| format!("--{k} is required").into())
    }
}

// ---------------------------------------------------------------------------------------------
// hello

fn hello(args: &[String]) -> Res<()> {
    let o = Opts::parse(args)?;
    let listen: std::net::SocketAddr = o.req("listen")?.parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
        let l = tokio::net::TcpListener::bind(listen).await?;
        axum::serve(l, app).await?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// target URL

struct Target {
    addr: String,
    authority: String,
    path_and_query: String,
}

fn parse_url(url: &str) -> Res<Target> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, pq) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok(Target { addr: authority.to_string(), authority: authority.to_string(), path_and_query: pq.to_string() })
}

fn parse_headers(o: &Opts) -> Res<Vec<(HeaderName, HeaderValue)>> {
    let mut out = Vec::new();
    for h in o.all("H") {
        let (n, v) = h.split_once(':').ok_or_else(|| format!("bad header {h}"))?;
        out.push((HeaderName::from_bytes(n.trim().as_bytes())?, HeaderValue::from_str(v.trim())?));
    }
    Ok(out)
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Res<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request on an open connection: (status, body, response asked to close).
async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> Res<(u16, Bytes, bool)> {
    sender.ready().await?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let close = res.headers().get(hyper::header::CONNECTION).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body, close))
}

// ---------------------------------------------------------------------------------------------
// /proc sampling

const CLK_TCK: f64 = 100.0;

fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields after the comm: state(0) ... utime(11) stime(12)
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn proc_rss_kib(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// (busy, total) jiffies of the whole machine.
fn machine_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = s.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

struct CpuSnap {
    at: Instant,
    server: Option<u64>,
    me: Option<u64>,
    machine: Option<(u64, u64)>,
}

fn snap(pid: Option<&str>) -> CpuSnap {
    CpuSnap { at: Instant::now(), server: pid.and_then(proc_cpu_ticks), me: proc_cpu_ticks("self"), machine: machine_ticks() }
}

/// Seconds between two snapshots (never 0).
fn window_s(s0: &CpuSnap, s1: &CpuSnap) -> f64 {
    s1.at.saturating_duration_since(s0.at).as_secs_f64().max(1e-6)
}

/// A process's CPU between two tick counts, in % of one core.
fn cpu_pct(a: Option<u64>, b: Option<u64>, wall: f64) -> Option<f64> {
    Some(b?.saturating_sub(a?) as f64 / CLK_TCK / wall * 100.0)
}

/// The whole machine's busy time between two snapshots, in % of one core (200 % = 2 CPUs busy).
fn machine_pct(s0: &CpuSnap, s1: &CpuSnap) -> Option<f64> {
    let ((b0, t0), (b1, t1)) = (s0.machine?, s1.machine?);
    if t1 <= t0 {
        return None;
    }
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    Some(b1.saturating_sub(b0) as f64 / (t1 - t0) as f64 * ncpu * 100.0)
}

// ---------------------------------------------------------------------------------------------
// load

/// Open-loop pacing: request i is due at start + i / rate. A connection that is free before the
/// slot's due time sleeps until then and measures from when it actually woke (tokio's timer has
/// 1 ms granularity; that lateness is the driver's, not the server's); one that picks a slot
/// already overdue (every connection was busy: the server is behind) measures from the due
/// time, so queueing is counted (no coordinated omission).
struct Pacer {
    start: Instant,
    interval_ns: f64,
    next: AtomicU64,
}

struct Shared {
    target: Target,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    bodies: Option<Vec<Bytes>>,
    next_body: AtomicUsize,
    exhausted: AtomicBool,
    pacer: Option<Pacer>,
    win_start: Instant,
    win_end: Instant,
    stop: Instant,
    lat: Mutex<Vec<u32>>,
    statuses: Mutex<BTreeMap<u16, u64>>,
    conn_errors: AtomicU64,
    reconnects: AtomicU64,
    sample: Mutex<Option<(u16, String)>>,
    first_error: Mutex<Option<(u16, String)>>,
    expect: u16,
    expect_body: Option<Vec<u8>>,
    bad_body: AtomicU64,
    in_window_done: AtomicU64,
}

fn load(args: &[String]) -> Res<()> {
    let o = Opts::parse(args)?;
    let target = parse_url(o.req("url")?)?;
    let method = Method::from_bytes(o.get("method").unwrap_or("GET").as_bytes())?;
    let headers = parse_headers(&o)?;
    let conns: usize = o.num("conns", 32)?;
    let threads: usize = o.num("threads", 1)?;
    let duration: f64 = o.num("duration", 5.0)?;
    let warmup: f64 = o.num("warmup", 1.0)?;
    let rate: f64 = o.num("rate", 0.0)?;
    let expect: u16 = o.num("expect", 200)?;
    let pid = o.get("pid").map(str::to_string);
    let bodies = match o.get("bodies") {
        Some(f) => Some(std::fs::read_to_string(f)?.lines().filter(|l| !l.is_empty()).map(|l| Bytes::from(l.to_string())).collect::<Vec<_>>()),
        None => None,
    };
    let body = Bytes::from(o.get("body").unwrap_or("").to_string());
    if !(duration > 0.0 && duration <= 600.0 && (0.0..=60.0).contains(&warmup)) {
        return Err("--duration must be in (0, 600] and --warmup in [0, 60]".into());
    }

    let rss_idle = pid.as_deref().and_then(proc_rss_kib);
    let now = Instant::now();
    let win_start = now + Duration::from_secs_f64(warmup);
    let win_end = win_start + Duration::from_secs_f64(duration);
    let shared = Arc::new(Shared {
        target,
        method,
        headers,
        body,
        bodies,
        next_body: AtomicUsize::new(0),
        exhausted: AtomicBool::new(false),
        pacer: (rate > 0.0).then(|| Pacer { start: now, interval_ns: 1e9 / rate, next: AtomicU64::new(0) }),
        win_start,
        win_end,
        stop: win_end,
        lat: Mutex::new(Vec::with_capacity(1 << 20)),
        statuses: Mutex::new(BTreeMap::new()),
        conn_errors: AtomicU64::new(0),
        reconnects: AtomicU64::new(0),
        sample: Mutex::new(None),
        first_error: Mutex::new(None),
        expect,
        expect_body: o.get("expect-body").map(|s| s.as_bytes().to_vec()),
        bad_body: AtomicU64::new(0),
        in_window_done: AtomicU64::new(0),
    });

    // RSS sampler: a plain thread, 20 ms period, peak over warmup + window.
    let peak = Arc::new(AtomicU64::new(rss_idle.unwrap_or(0)));
    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = pid.clone().map(|p| {
        let (peak, stop) = (peak.clone(), sampler_stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = proc_rss_kib(&p) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    });

    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?
    };
    let snaps: Arc<Mutex<(Option<CpuSnap>, Option<CpuSnap>)>> = Arc::new(Mutex::new((None, None)));
    let (sh, sn, pid2) = (shared.clone(), snaps.clone(), pid.clone());
    rt.block_on(async move {
        // Window snapshots, taken on time by a task of their own.
        let snapper = {
            let (sh, sn, pid) = (sh.clone(), sn.clone(), pid2.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until(sh.win_start.into()).await;
                sn.lock().map(|mut g| g.0 = Some(snap(pid.as_deref()))).ok();
                tokio::time::sleep_until(sh.win_end.into()).await;
                sn.lock().map(|mut g| g.1 = Some(snap(pid.as_deref()))).ok();
            })
        };
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let sh = sh.clone();
            tasks.push(tokio::spawn(async move { conn_loop(sh).await }));
        }
        for t in tasks {
            let _ = tokio::time::timeout_at((sh.stop + Duration::from_secs(10)).into(), t).await;
        }
        // Bodies exhausted early: the window ends now (the end snapshot is taken below).
        if Instant::now() < sh.win_end {
            snapper.abort();
        } else {
            let _ = tokio::time::timeout(Duration::from_secs(11), snapper).await;
        }
    });
    // Connections still open are dropped with the runtime.
    drop(rt);
    sampler_stop.store(true, Ordering::Relaxed);
    if let Some(s) = sampler {
        let _ = s.join();
    }

    let end_at = Instant::now();
    let (s0, s1) = {
        let mut g = snaps.lock().map_err(|_| "poisoned")?;
        (g.0.take(), g.1.take())
    };
    let s0 = s0.unwrap_or_else(|| snap(pid.as_deref()));
    let exhausted = shared.exhausted.load(Ordering::Relaxed);
    // If bodies ran out before the window ended, the window ends at the last completion.
    let s1 = s1.unwrap_or_else(|| snap(pid.as_deref()));
    let wall = window_s(&s0, &s1);
    let server_cpu = cpu_pct(s0.server, s1.server, wall);
    let driver_cpu = cpu_pct(s0.me, s1.me, wall);
    let machine = machine_pct(&s0, &s1);
    let other = match (machine, server_cpu, driver_cpu) {
        (Some(m), Some(s), Some(d)) => Some((m - s - d).max(0.0)),
        _ => None,
    };

    let mut lat = std::mem::take(&mut *shared.lat.lock().map_err(|_| "poisoned")?);
    lat.sort_unstable();
    let q = |p: f64| -> Option<f64> {
        if lat.is_empty() {
            return None;
        }
        let i = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
        Some(lat[i] as f64 / 1000.0)
    };
    let ok = lat.len() as u64;
    let done = shared.in_window_done.load(Ordering::Relaxed);
    let statuses = shared.statuses.lock().map_err(|_| "poisoned")?.clone();
    let mean = if lat.is_empty() { None } else { Some(lat.iter().map(|&x| x as f64).sum::<f64>() / lat.len() as f64 / 1000.0) };
    let _ = end_at;
    let out = serde_json::json!({
        "url": format!("http://{}{}", shared.target.authority, shared.target.path_and_query),
        "method": shared.method.as_str(),
        "conns": conns,
        "threads": threads,
        "rate": if rate > 0.0 { Some(rate) } else { None },
        "warmup_s": warmup,
        "duration_s": wall,
        "requests": done,
        "ok": ok,
        "rps": ok as f64 / wall,
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<String, u64>>(),
        "conn_errors": shared.conn_errors.load(Ordering::Relaxed),
        "bad_body": shared.bad_body.load(Ordering::Relaxed),
        "expect_body": shared.expect_body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
        "reconnects": shared.reconnects.load(Ordering::Relaxed),
        "bodies_exhausted": exhausted,
        "bodies_used": shared.next_body.load(Ordering::Relaxed).min(shared.bodies.as_ref().map_or(0, Vec::len)),
        "latency_ms": {
            "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "p999": q(0.999),
            "max": lat.last().map(|&x| x as f64 / 1000.0), "mean": mean,
        },
        "server_cpu_pct": server_cpu,
        "server_rss_idle_kib": rss_idle,
        "server_rss_peak_kib": pid.as_ref().map(|_| peak.load(Ordering::Relaxed)),
        "driver_cpu_pct": driver_cpu,
        "machine_busy_pct": machine,
        "other_cpu_pct": other,
        "sample": shared.sample.lock().ok().and_then(|g| g.clone()).map(|(s, b)| serde_json::json!({"status": s, "body": b})),
        "first_error": shared.first_error.lock().ok().and_then(|g| g.clone()).map(|(s, b)| serde_json::json!({"status": s, "body": b})),
    });
    emit(&o, &out)
}

/// The result: pretty JSON to `--out FILE`, or to stdout.
fn emit(o: &Opts, out: &serde_json::Value) -> Res<()> {
    let text = serde_json::to_string_pretty(out)?;
    match o.get("out") {
        Some(f) => std::fs::write(f, text + "\n")?,
        None => println!("{text}"),
    }
    Ok(())
}

fn snippet(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(400)]).to_string();
    s
}

async fn conn_loop(sh: Arc<Shared>) {
    let mut sender: Option<Sender> = None;
    let mut local: Vec<u32> = Vec::with_capacity(1 << 16);
    let mut local_status: BTreeMap<u16, u64> = BTreeMap::new();
    loop {
        // Pace (open loop) or go (closed loop).
        let mut from: Option<Instant> = None;
        if let Some(p) = &sh.pacer {
            let i = p.next.fetch_add(1, Ordering::Relaxed);
            let due = p.start + Duration::from_nanos((i as f64 * p.interval_ns) as u64);
            if due >= sh.stop {
                break;
            }
            let now = Instant::now();
            if due > now {
                tokio::time::sleep_until(due.into()).await;
            } else {
                from = Some(due);
            }
        }
        if Instant::now() >= sh.stop {
            break;
        }
        let body = match &sh.bodies {
            Some(b) => {
                let i = sh.next_body.fetch_add(1, Ordering::Relaxed);
                match b.get(i) {
                    Some(x) => x.clone(),
                    None => {
                        sh.exhausted.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
            None => sh.body.clone(),
        };
        if sender.is_none() {
            match connect(&sh.target.addr).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    sh.conn_errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let mut b = Request::builder().method(sh.method.clone()).uri(sh.target.path_and_query.as_str());
        b = b.header(hyper::header::HOST, sh.target.authority.as_str());
        for (n, v) in &sh.headers {
            b = b.header(n, v);
        }
        let req = match b.body(Full::new(body)) {
            Ok(r) => r,
            Err(_) => break,
        };
        let t0 = from.unwrap_or_else(Instant::now);
        let Some(s) = sender.as_mut() else { continue };
        let r = tokio::time::timeout(Duration::from_secs(10), send(s, req)).await;
        let t1 = Instant::now();
        match r {
            Ok(Ok((status, body, close))) => {
                let in_window = t1 >= sh.win_start && t1 <= sh.win_end;
                if in_window {
                    sh.in_window_done.fetch_add(1, Ordering::Relaxed);
                    *local_status.entry(status).or_default() += 1;
                    let body_ok = sh.expect_body.as_ref().is_none_or(|want| body.windows(want.len()).any(|w| w == want.as_slice()));
                    if status == sh.expect && !body_ok {
                        sh.bad_body.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut g) = sh.first_error.lock() {
                            if g.is_none() {
                                *g = Some((status, snippet(&body)));
                            }
                        }
                    } else if status == sh.expect {
                        local.push(t1.saturating_duration_since(t0).as_micros().min(u32::MAX as u128) as u32);
                        if let Ok(mut g) = sh.sample.lock() {
                            if g.is_none() {
                                *g = Some((status, snippet(&body)));
                            }
                        }
                    }
                }
                if status != sh.expect {
                    if let Ok(mut g) = sh.first_error.lock() {
                        if g.is_none() {
                            *g = Some((status, snippet(&body)));
                        }
                    }
                }
                if close {
                    sender = None;
                    sh.reconnects.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                sh.conn_errors.fetch_add(1, Ordering::Relaxed);
                sender = None;
            }
        }
        if t1 > sh.win_end {
            break;
        }
    }
    if let Ok(mut g) = sh.lat.lock() {
        g.extend_from_slice(&local);
    }
    if let Ok(mut g) = sh.statuses.lock() {
        for (k, v) in local_status {
            *g.entry(k).or_default() += v;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// mint

fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    let q = q.split('#').next().unwrap_or(q);
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(x) => {
                        out.push(x);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mint(args: &[String]) -> Res<()> {
    let o = Opts::parse(args)?;
    let target = Arc::new(parse_url(o.req("url")?)?);
    let cookie = o.get("cookie").unwrap_or("").to_string();
    let count: usize = o.num("count", 1000)?;
    let conns: usize = o.num("conns", 4)?;
    let timeout: f64 = o.num("timeout", 120.0)?;
    let out = o.req("out")?.to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let codes: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let issued = Arc::new(AtomicUsize::new(0));
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (target, cookie, codes, issued, failure) = (target.clone(), cookie.clone(), codes.clone(), issued.clone(), failure.clone());
            tasks.push(tokio::spawn(async move {
                let mut sender: Option<Sender> = None;
                while issued.fetch_add(1, Ordering::Relaxed) < count && Instant::now() < deadline {
                    if failure.lock().map(|g| g.is_some()).unwrap_or(true) {
                        return;
                    }
                    if sender.is_none() {
                        match connect(&target.addr).await {
                            Ok(s) => sender = Some(s),
                            Err(e) => {
                                failure.lock().map(|mut g| *g = Some(format!("connect: {e}"))).ok();
                                return;
                            }
                        }
                    }
                    let Some(s) = sender.as_mut() else { return };
                    let mut b = Request::builder().method(Method::GET).uri(target.path_and_query.as_str()).header(hyper::header::HOST, target.authority.as_str());
                    if !cookie.is_empty() {
                        b = b.header(hyper::header::COOKIE, cookie.as_str());
                    }
                    let Ok(req) = b.body(Full::new(Bytes::new())) else { return };
                    let r = async {
                        s.ready().await?;
                        let res = s.send_request(req).await?;
                        let status = res.status().as_u16();
                        let loc = res.headers().get(hyper::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
                        let body = res.into_body().collect().await?.to_bytes();
                        Res::Ok((status, loc, body))
                    }
                    .await;
                    match r {
                        Ok((status, Some(loc), _)) if (300..400).contains(&status) => match query_param(&loc, "code") {
                            Some(c) => codes.lock().map(|mut g| g.push(c)).unwrap_or(()),
                            None => {
                                failure.lock().map(|mut g| *g = Some(format!("{status} to {loc} (no code)"))).ok();
                            }
                        },
                        Ok((status, loc, body)) => {
                            failure.lock().map(|mut g| *g = Some(format!("{status} {loc:?} {}", snippet(&body)))).ok();
                        }
                        Err(e) => {
                            failure.lock().map(|mut g| *g = Some(format!("request: {e}"))).ok();
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    if let Some(f) = failure.lock().map_err(|_| "poisoned")?.take() {
        return Err(format!("mint: authorize did not redirect with a code: {f}").into());
    }
    let codes = codes.lock().map_err(|_| "poisoned")?;
    let mut text = codes.join("\n");
    text.push('\n');
    std::fs::write(&out, text)?;
    eprintln!("minted {} codes", codes.len());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sign

/// A key parsed once, as a server holds it.
enum Signer {
    Rs256(aws_lc_rs::rsa::KeyPair),
    Es256(aws_lc_rs::signature::EcdsaKeyPair),
}

impl Signer {
    fn generate(alg: &str) -> Res<Signer> {
        use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        match alg {
            "RS256" => Ok(Signer::Rs256(aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| "RSA key generation failed")?)),
            "ES256" => Ok(Signer::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| "P-256 key generation failed")?)),
            _ => Err(format!("--alg {alg}: RS256 or ES256").into()),
        }
    }

    /// One signature of `msg` into `sig` (reused) -> its length.
    fn sign(&self, rng: &aws_lc_rs::rand::SystemRandom, msg: &[u8], sig: &mut Vec<u8>) -> Res<usize> {
        match self {
            Signer::Rs256(k) => {
                sig.resize(k.public_modulus_len(), 0);
                k.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, rng, msg, sig).map_err(|_| "RS256 signing failed")?;
                Ok(sig.len())
            }
            Signer::Es256(k) => {
                let s = k.sign(rng, msg).map_err(|_| "ES256 signing failed")?;
                sig.clear();
                sig.extend_from_slice(s.as_ref());
                Ok(sig.len())
            }
        }
    }

    /// The signature checks out with the public key (so the loop measures real signatures).
    fn verify(&self, msg: &[u8], sig: &[u8]) -> Res<()> {
        use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256};
        let ok = match self {
            Signer::Rs256(k) => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, k.public_key().as_ref()).verify(msg, sig),
            Signer::Es256(k) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, k.public_key().as_ref()).verify(msg, sig),
        };
        ok.map_err(|_| "the signature does not verify".into())
    }
}

fn sign(args: &[String]) -> Res<()> {
    let o = Opts::parse(args)?;
    let alg = o.get("alg").unwrap_or("RS256").to_ascii_uppercase();
    let threads: usize = o.num("threads", 1)?;
    let duration: f64 = o.num("duration", 3.0)?;
    let bytes: usize = o.num("bytes", 300)?;
    if !(duration > 0.0 && duration <= 600.0 && (1..=256).contains(&threads) && (1..=65536).contains(&bytes)) {
        return Err("--duration must be in (0, 600], --threads in [1, 256], --bytes in [1, 65536]".into());
    }
    let signer = Signer::generate(&alg)?;
    // A JWS signing input of a JWT access token's size: base64url header "." base64url claims.
    const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut msg: Vec<u8> = (0..bytes).map(|i| B64URL[(i * 7 + 3) % 64]).collect();
    if bytes > 40 {
        msg[36] = b'.';
    }
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut sig = Vec::new();
    let sig_len = signer.sign(&rng, &msg, &mut sig)?;
    signer.verify(&msg, &sig)?;

    let start_line = std::sync::Barrier::new(threads + 1);
    let stop = AtomicBool::new(false);
    let (counts, s0, s1) = std::thread::scope(|sc| -> Res<(Vec<u64>, CpuSnap, CpuSnap)> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (signer, msg, start_line, stop) = (&signer, &msg, &start_line, &stop);
                sc.spawn(move || -> Res<u64> {
                    let rng = aws_lc_rs::rand::SystemRandom::new();
                    let mut sig = Vec::with_capacity(512);
                    let mut n = 0u64;
                    start_line.wait();
                    while !stop.load(Ordering::Relaxed) {
                        signer.sign(&rng, msg, &mut sig)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        start_line.wait();
        let s0 = snap(None);
        std::thread::sleep(Duration::from_secs_f64(duration));
        stop.store(true, Ordering::Relaxed);
        let counts = workers.into_iter().map(|w| w.join().map_err(|_| "a signing thread panicked")?).collect::<Res<Vec<u64>>>()?;
        Ok((counts, s0, snap(None)))
    })?;
    // Signatures finished after the stop flag count, and so does their time: at most one signature
    // per thread (≈ 0.3 ms for RS256) past the window.
    let wall = window_s(&s0, &s1);
    let me_cpu = cpu_pct(s0.me, s1.me, wall);
    let machine = machine_pct(&s0, &s1);
    let total: u64 = counts.iter().sum();
    let out = serde_json::json!({
        "alg": alg,
        "key": if alg == "RS256" { "RSA-2048, PKCS#1 v1.5 SHA-256 (aws-lc-rs rsa::KeyPair)" } else { "P-256, ECDSA_P256_SHA256_FIXED_SIGNING (aws-lc-rs EcdsaKeyPair)" },
        "threads": threads,
        "duration_s": wall,
        "message_bytes": bytes,
        "signature_bytes": sig_len,
        "signs": total,
        "signs_per_s": total as f64 / wall,
        "per_thread_signs_per_s": counts.iter().map(|&n| n as f64 / wall).collect::<Vec<f64>>(),
        "mean_per_thread_signs_per_s": total as f64 / wall / threads as f64,
        "cpu_pct": me_cpu,
        "machine_busy_pct": machine,
        "other_cpu_pct": match (machine, me_cpu) {
            (Some(m), Some(c)) => Some((m - c).max(0.0)),
            _ => None,
        },
    });
    emit(&o, &out)
}
