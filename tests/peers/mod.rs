//! Peers for the interop, TLS and hostile-server tests, and ways to look at what the recorder
//! did with them:
//!
//! - third-party servers run as child processes: Python `websockets` and Node `ws` (the scripts
//!   in `tests/interop/`), tinyproxy. `scripts/test.sh` installs them and names them in
//!   `WSREC_INTEROP_*` variables; a plain `cargo test` without them skips those tests loudly,
//!   while `WSREC_INTEROP_REQUIRED=1` (set by the script) makes a missing one a failure;
//! - [`RawServer`]: plain TCP that speaks just enough WebSocket to misbehave on purpose;
//! - [`payloads`]: every recorded message as bytes, for byte-for-byte comparisons.
#![allow(dead_code)]

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// What was recorded.

/// A recorded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Text (from `msg`, verbatim, or `text`).
    Text(Vec<u8>),
    /// Binary (from `bin`).
    Binary(Vec<u8>),
}

/// Every message under `dir`, in order, as the exact bytes received: `msg` is cut out of the
/// line verbatim (it is embedded unchanged), `text` decoded from its JSON string, `bin` from
/// base64.
pub fn payloads(dir: &Path) -> Vec<Payload> {
    let mut out = Vec::new();
    for f in super::common::files(dir) {
        if !f.to_string_lossy().ends_with(".jsonl") {
            continue;
        }
        let text = std::fs::read(&f).unwrap();
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line).unwrap();
            if v.get("msg").is_some() {
                let key = b",\"msg\":";
                let at = memchr::memmem::find(line, key).expect("msg key");
                out.push(Payload::Text(line[at + key.len()..line.len() - 1].to_vec()));
            } else if let Some(t) = v.get("text").and_then(Value::as_str) {
                out.push(Payload::Text(t.as_bytes().to_vec()));
            } else if let Some(b) = v.get("bin").and_then(Value::as_str) {
                out.push(Payload::Binary(
                    base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
                ));
            }
        }
    }
    out
}

/// Compares recorded payloads with the expected ones, naming the first difference briefly
/// (a 10 MB message must not be dumped into the test output).
pub fn assert_payloads(got: &[Payload], want: &[Payload]) {
    let brief = |p: &Payload| match p {
        Payload::Text(t) => format!(
            "text {} bytes {:?}",
            t.len(),
            String::from_utf8_lossy(&t[..t.len().min(80)])
        ),
        Payload::Binary(b) => format!("binary {} bytes {:?}", b.len(), &b[..b.len().min(16)]),
    };
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "message {i} differs: got {}, want {}",
            brief(g),
            brief(w)
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "message count differs; got: {:?}",
        got.iter().map(brief).collect::<Vec<_>>()
    );
}

/// The JSON text of `size` bytes that the interop servers' `big` step sends.
pub fn big_text(size: usize) -> String {
    let pattern: String = (0..997u32)
        .map(|i| char::from(b'a' + ((i * i + 7 * i) % 26) as u8))
        .collect();
    let n = size - r#"{"big":""}"#.len();
    let body: String = pattern.chars().cycle().take(n).collect();
    format!(r#"{{"big":"{body}"}}"#)
}

/// Resident memory of this test process, in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// A raw TCP server that misbehaves on purpose.

/// A listener on 127.0.0.1:0; the test drives each accepted socket by hand.
pub struct RawServer {
    pub listener: TcpListener,
    pub addr: SocketAddr,
}

impl RawServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Self { listener, addr }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/raw", self.addr)
    }

    /// The next connection (bounded wait).
    pub async fn accept(&self) -> TcpStream {
        let (tcp, _) = tokio::time::timeout(Duration::from_secs(30), self.listener.accept())
            .await
            .expect("no connection arrived within 30 s")
            .unwrap();
        tcp
    }
}

/// Reads an HTTP request head (up to the blank line).
pub async fn read_request(tcp: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut byte).await.unwrap();
        assert!(n > 0, "client closed mid-request: {buf:?}");
        buf.push(byte[0]);
        assert!(buf.len() < 64 * 1024, "request too long");
    }
    String::from_utf8(buf).unwrap()
}

/// The value of header `name` in a request head.
pub fn header(request: &str, name: &str) -> Option<String> {
    request.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 4.2.2).
pub fn accept_key(key: &str) -> String {
    use sha1::Digest;
    let mut sha = sha1::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Reads the upgrade request and answers 101, with `extensions` if given; returns the request.
pub async fn upgrade_with(tcp: &mut TcpStream, extensions: Option<&str>) -> String {
    let request = read_request(tcp).await;
    let key = header(&request, "sec-websocket-key").expect("no key");
    let mut answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(&key)
    );
    if let Some(ext) = extensions {
        answer.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    answer.push_str("\r\n");
    tcp.write_all(answer.as_bytes()).await.unwrap();
    request
}

/// [`upgrade_with`] without extensions.
pub async fn upgrade(tcp: &mut TcpStream) -> String {
    upgrade_with(tcp, None).await
}

/// A frame from the server: FIN set, unmasked.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(true, false, opcode, payload, None)
}

/// Any frame: FIN, RSV1, opcode, payload, optional mask key.
pub fn frame_with(
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => f.push(m | n as u8),
        n @ 126..=0xffff => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            f.extend_from_slice(&key);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// A close frame with a code and reason.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    frame(8, &payload)
}

/// Raw deflate of `data`, sync-flushed, with the `00 00 ff ff` tail removed (RFC 7692 7.2.1).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut input = data;
    loop {
        out.reserve(64 * 1024);
        let before = c.total_in();
        c.compress_vec(input, &mut out, FlushCompress::Sync)
            .unwrap();
        input = &input[(c.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "no sync-flush tail");
    out.truncate(out.len() - 4);
    out
}

// ---------------------------------------------------------------------------------------------
// Third-party servers as child processes.

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `scripts/test.sh` runs us: then a missing interop tool is a failure, not a skip.
fn required() -> bool {
    std::env::var("WSREC_INTEROP_REQUIRED").is_ok_and(|v| v == "1")
}

/// Says that a test is skipped, on the real stderr: the test harness captures `eprintln!`
/// of passing tests, and a skip must not go unnoticed.
fn skip(why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPED interop test: {why} !!!!!\n"
    );
}

/// `Some(path)` if the tool is there; otherwise a loud skip, or a failure under
/// `WSREC_INTEROP_REQUIRED=1`.
fn tool(var: &str, default: PathBuf, what: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map_or(default, PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "{what} not found at {} (set {var}); `bash scripts/test.sh` installs it",
        path.display()
    );
    if required() {
        panic!("{msg}");
    }
    skip(&msg);
    None
}

/// A `python3` command that can import `websockets`: the package directory comes from
/// `WSREC_INTEROP_PYTHONPATH` (default `target/interop/python`, where `scripts/test.sh`
/// installs it with `pip install --target`), the interpreter from `WSREC_INTEROP_PYTHON`
/// (default `python3`).
pub fn python() -> Option<Command> {
    let lib = tool(
        "WSREC_INTEROP_PYTHONPATH",
        repo().join("target/interop/python"),
        "Python websockets (a pip --target directory)",
    )?;
    let interpreter = std::env::var_os("WSREC_INTEROP_PYTHON").unwrap_or_else(|| "python3".into());
    let mut cmd = Command::new(interpreter);
    cmd.env("PYTHONPATH", lib);
    Some(cmd)
}

/// The `node_modules` directory holding `ws`.
pub fn node_modules() -> Option<PathBuf> {
    let dir = tool(
        "WSREC_INTEROP_NODE_MODULES",
        repo().join("target/interop/node/node_modules"),
        "Node ws",
    )?;
    if dir.join("ws").exists() {
        Some(dir)
    } else if required() {
        panic!("{} has no ws package", dir.display());
    } else {
        skip(&format!("{} has no ws package", dir.display()));
        None
    }
}

/// The tinyproxy binary.
pub fn tinyproxy() -> Option<PathBuf> {
    tool(
        "WSREC_TINYPROXY",
        PathBuf::from("/usr/bin/tinyproxy"),
        "tinyproxy",
    )
}

/// A child process serving on a port it printed as `PORT <n>`; killed on drop.
pub struct ChildServer {
    child: Child,
    pub port: u16,
}

impl ChildServer {
    /// Starts `cmd` and waits (up to 30 s) for its `PORT <n>` line.
    pub fn spawn(mut cmd: Command) -> ChildServer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{cmd:?} printed no PORT line within 30 s"));
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{cmd:?} printed {line:?} instead of PORT <n>"));
        ChildServer { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options of the scripted servers.
#[derive(Default, Clone)]
pub struct ServerOptions {
    pub deflate: bool,
    pub server_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    /// PEM certificate and key files (Python only).
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl ServerOptions {
    fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if self.deflate {
            a.push("--deflate".to_owned());
        }
        if self.server_no_context_takeover {
            a.push("--server-no-context-takeover".to_owned());
        }
        if let Some(bits) = self.server_max_window_bits {
            a.push("--server-max-window-bits".to_owned());
            a.push(bits.to_string());
        }
        if let Some((cert, key)) = &self.tls {
            a.extend([
                "--cert".to_owned(),
                cert.display().to_string(),
                "--key".to_owned(),
                key.display().to_string(),
            ]);
        }
        a
    }
}

/// Which third-party server.
#[derive(Clone, Copy, Debug)]
pub enum Impl {
    Python,
    Node,
}

/// Starts the Python or Node server running `steps` (written to `dir/script.json`), or `None`
/// (skipped) if that server is not installed.
pub fn scripted_server(
    which: Impl,
    dir: &Path,
    steps: &Value,
    options: &ServerOptions,
) -> Option<ChildServer> {
    let script = dir.join("script.json");
    std::fs::write(&script, serde_json::to_vec(steps).unwrap()).unwrap();
    let cmd = match which {
        Impl::Python => {
            let mut c = python()?;
            c.arg(repo().join("tests/interop/server.py"));
            c
        }
        Impl::Node => {
            let modules = node_modules()?;
            let mut c = Command::new("node");
            c.env("NODE_PATH", modules)
                .arg(repo().join("tests/interop/server.js"));
            c
        }
    };
    let mut cmd = cmd;
    cmd.arg(&script).args(options.args());
    Some(ChildServer::spawn(cmd))
}

/// tinyproxy on a free loopback port, allowing CONNECT to any port, logging to `dir`.
pub struct Tinyproxy {
    child: Child,
    pub port: u16,
}

impl Tinyproxy {
    pub fn start(dir: &Path) -> Option<Tinyproxy> {
        let bin = tinyproxy()?;
        // tinyproxy needs a fixed port: take a free one from the kernel and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("tinyproxy.conf");
        // No ConnectPort line: CONNECT to every port is allowed. As root, tinyproxy wants a
        // user to drop to; `nobody` exists on every Debian system.
        let user = if is_root() {
            "User nobody\nGroup nogroup\n"
        } else {
            ""
        };
        std::fs::write(
            &conf,
            format!(
                "{user}Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 20\n\
                 Allow 127.0.0.1\nLogLevel Info\nDisableViaHeader Yes\n"
            ),
        )
        .unwrap();
        let child = Command::new(&bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        // Owned from here on, so it is killed and reaped whatever happens.
        let proxy = Tinyproxy { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(proxy);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        drop(proxy);
        panic!("tinyproxy did not listen on {port} within 5 s");
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this process runs as root (tinyproxy then needs `User`/`Group`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// An HTTP CONNECT proxy.

/// What the little proxy does with a CONNECT.
#[derive(Clone, Copy)]
pub enum ProxyMode {
    /// Answer with this status line and close.
    Refuse(&'static str),
    /// Tunnel, if the request carries this `Proxy-Authorization`.
    Tunnel(Option<&'static str>),
}

/// A minimal HTTP CONNECT proxy; returns its address and the request heads it saw.
pub async fn little_proxy(mode: ProxyMode) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let request = read_request(&mut client).await;
                log.lock().unwrap().push(request.clone());
                let target = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                match mode {
                    ProxyMode::Refuse(status) => {
                        let _ = client
                            .write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes())
                            .await;
                    }
                    ProxyMode::Tunnel(auth) => {
                        if auth.is_some()
                            && header(&request, "proxy-authorization").as_deref() != auth
                        {
                            let _ = client
                                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                                .await;
                            return;
                        }
                        let Ok(mut upstream) = TcpStream::connect(&target).await else {
                            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                            return;
                        };
                        let _ = client
                            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                            .await;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                }
            });
        }
    });
    (addr, seen)
}

// ---------------------------------------------------------------------------------------------
// Test certificates.

/// A test CA (written to `ca.pem`) that signs server certificates.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA certificate, for `ca_file`.
    pub ca_pem: PathBuf,
    ca_params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    /// A fresh CA named `name` with its files under `dir`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("wsrec test CA {name}"));
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
        Pki {
            dir: dir.to_owned(),
            ca_pem,
            ca_params,
            ca_key,
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA,
    /// expired if `expired`; returns the PEM certificate and key files.
    pub fn leaf(&self, file: &str, names: &[&str], expired: bool) -> (PathBuf, PathBuf) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let cert_path = self.dir.join(format!("{file}.pem"));
        let key_path = self.dir.join(format!("{file}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// A rustls server config from PEM files.
pub fn tls_server_config(cert: &Path, key: &Path) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<rustls::pki_types::CertificateDer<'static>> =
        rustls::pki_types::CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    std::sync::Arc::new(config)
}

/// Polls `cond` on the recorder's counters every 5 ms of real time until it holds; fails after
/// `limit`, showing the counters (so a broken case fails fast instead of hanging the suite).
pub async fn wait_for(
    rec: &super::common::Running,
    limit: Duration,
    cond: impl Fn(&wsrec::observe::stats::Stats) -> bool,
) {
    let deadline = std::time::Instant::now() + limit;
    while !cond(&rec.stats) {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached within {limit:?}: {:?}",
            rec.stats.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A permessage-deflate payload that inflates to `1 + 258 * matches` zero bytes at about
/// 1000:1: one dynamic-Huffman block (hand-built, RFC 1951 3.2.7) whose only codes are the
/// literal 0, "length 258" and "distance 1", so each 258 bytes cost two bits. It ends like a
/// sync flush minus the `00 00 ff ff` the receiver appends (RFC 7692 7.2.2).
pub fn deflate_bomb(matches: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        /// `count` bits of `value`, least significant first (header fields, extra bits).
        fn put(&mut self, value: u64, count: u32) {
            self.acc |= value << self.n;
            self.n += count;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code, most significant bit first.
        fn code(&mut self, code: u64, len: u32) {
            let mut reversed = 0;
            for i in 0..len {
                reversed |= ((code >> i) & 1) << (len - 1 - i);
            }
            self.put(reversed, len);
        }
    }
    let mut b = Bits {
        out: Vec::with_capacity(matches / 4 + 64),
        acc: 0,
        n: 0,
    };
    b.put(0, 1); // BFINAL = 0: the message's deflate stream goes on
    b.put(2, 2); // BTYPE = dynamic Huffman
    b.put(286 - 257, 5); // HLIT: literal/length codes 0..=285
    b.put(0, 5); // HDIST: one distance code
    b.put(18 - 4, 4); // HCLEN: 18 code-length code lengths
    // Code-length alphabet: 18 (run of zeros) -> "0", 1 -> "10", 2 -> "11".
    let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
    for sym in order {
        b.put(
            match sym {
                18 => 1,
                1 | 2 => 2,
                _ => 0,
            },
            3,
        );
    }
    // Literal/length code lengths: 0 -> 2, 1..=255 -> 0, 256 -> 2, 257..=284 -> 0, 285 -> 1.
    b.code(0b11, 2);
    b.code(0, 1);
    b.put(138 - 11, 7);
    b.code(0, 1);
    b.put(117 - 11, 7);
    b.code(0b11, 2);
    b.code(0, 1);
    b.put(28 - 11, 7);
    b.code(0b10, 2);
    // Distance code lengths: 0 -> 1.
    b.code(0b10, 2);
    // Data. Canonical codes: 285 -> "0", literal 0 -> "10", end of block -> "11"; distance
    // 0 -> "0".
    b.code(0b10, 2);
    for _ in 0..matches {
        b.code(0, 1);
        b.code(0, 1);
    }
    b.code(0b11, 2);
    b.put(0, 3); // the empty stored block's header; its LEN/NLEN is what the receiver appends
    if b.n > 0 {
        b.put(0, 8 - b.n);
    }
    b.out
}
