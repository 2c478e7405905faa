//! What the REST load clients (`list_load`, `wake_load`) share: the API served over the
//! in-memory ports (`api_on_fakes`, a child process on loopback), its CPU time read from
//! `/proc`, and HTTP/1.1 exchanges on a keep-alive connection, read to the answer's last byte.
//!
//! These are the helpers of command-line tools that print figures: unlike the rest of this
//! library they start processes, read `/proc` and use sockets, and their errors are `anyhow`'s.
//! Loopback only: the server binds 127.0.0.1 and every connection goes there.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Largest answer head read, in bytes: the API's heads are a few hundred.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Largest answer body read, in bytes: a list of 64 tasks is under 32 KiB.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`: 100 on every Linux ABI).
const USER_HZ: u64 = 100;
/// How long the server may take to print its ready lines.
const READY_TIMEOUT_MS: u64 = 30_000;
/// Most tasks a coordinator holds, so most done-token lines the server prints
/// (`core::coordinator::TASKS_PER_COORDINATOR_MAX`).
const DONE_TOKEN_LINES_MAX: usize = 64;

/// `api_on_fakes` beside the running binary (the same target directory and profile), or `path`.
///
/// # Errors
/// The running binary's path is not known.
pub fn server_path(path: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match path {
        Some(path) => Ok(path),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("this binary's directory")?
            .join("examples/api_on_fakes")),
    }
}

/// How to start the server.
#[derive(Clone, Copy, Debug)]
pub struct ServerSetup {
    /// Tasks per coordinator.
    pub tasks: usize,
    /// Whether the server prints the first coordinator's tasks' done tokens after its ready
    /// line (`api_on_fakes TASKS --done-tokens`), for clients that call `done` as a sub-task.
    pub done_tokens: bool,
}

/// The server under test (`api_on_fakes`, or a wrapper around the real daemon such as
/// `benches/daemon/wake_server.py`); killed when dropped.
pub struct Server {
    child: Child,
    /// The process whose CPU is the server's: the child itself, or the one its ready line names
    /// with `pid=N` (a wrapper's daemon).
    serving: u32,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The first coordinator's bearer token.
    pub token: String,
    /// The first coordinator's tasks and their done tokens, when asked for.
    pub done_tokens: Vec<(String, String)>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `path` as `setup` says and reads its ready line (and its done-token lines).
    ///
    /// # Errors
    /// It could not start, or printed no ready line in time.
    pub fn start(path: &Path, setup: ServerSetup) -> anyhow::Result<Server> {
        let mut command = Command::new(path);
        command.arg(setup.tasks.to_string());
        if setup.done_tokens {
            command.arg("--done-tokens");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let lines = if setup.done_tokens {
            1 + setup.tasks.min(DONE_TOKEN_LINES_MAX)
        } else {
            1
        };
        let (send, receive) = std::sync::mpsc::channel();
        // The pipe is read on a thread of its own so that a silent server times out.
        std::thread::spawn(move || {
            let mut stdout = std::io::BufReader::new(stdout);
            let mut read = Vec::new();
            for _ in 0..lines {
                let mut line = String::new();
                if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                read.push(line);
            }
            let _ = send.send(read);
        });
        let read = receive
            .recv_timeout(Duration::from_millis(READY_TIMEOUT_MS))
            .context("the server printed no ready line")?;
        let Some(line) = read.first() else {
            bail!("the server printed nothing");
        };
        let mut words = line.split_whitespace();
        let (Some(url), Some(token)) = (words.next(), words.next()) else {
            bail!("unexpected ready line {line:?}");
        };
        let serving = match words.find_map(|word| word.strip_prefix("pid=")) {
            Some(pid) => pid.parse().with_context(|| format!("no pid in {line:?}"))?,
            None => child.id(),
        };
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no port in {url:?}"))?;
        let done_tokens = read[1..]
            .iter()
            .filter_map(|line| {
                let (task, token) = line.trim().split_once(' ')?;
                Some((task.to_owned(), token.to_owned()))
            })
            .collect();
        Ok(Server {
            child,
            serving,
            port,
            token: token.to_owned(),
            done_tokens,
        })
    }

    /// A new keep-alive connection to it, Nagle off (each request leaves in one write).
    ///
    /// # Errors
    /// The connection failed.
    pub async fn connect(&self) -> anyhow::Result<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// The server's CPU time so far (user + system), from `/proc/PID/stat` (of the process its
    /// ready line named, if it named one).
    ///
    /// # Errors
    /// `/proc` could not be read (not Linux, or the server is gone).
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.serving))?;
        // Fields after the command's closing parenthesis; utime and stime are the 14th and
        // 15th of the line, the 12th and 13th after it.
        let rest = stat.rsplit(')').next().context("a stat line")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        Ok(Duration::from_nanos(ticks * 1_000_000_000 / USER_HZ))
    }
}

/// Sends `request` and reads one answer ([`read_answer`]); its status.
///
/// # Errors
/// As [`read_answer`].
pub async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    stream.write_all(request).await?;
    read_answer(stream, buffer).await
}

/// Reads one answer to its last byte: its head, then a `Content-Length` body or a chunked one
/// (to its last, empty chunk); its status. `buffer` holds the answer's bytes as read.
///
/// # Errors
/// The connection failed or closed, or the answer is larger than [`HEAD_BYTES_MAX`] and
/// [`BODY_BYTES_MAX`] allow, or is not HTTP/1.1 as the API writes it.
pub async fn read_answer(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<u16> {
    buffer.clear();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > HEAD_BYTES_MAX {
            bail!("an answer head over {HEAD_BYTES_MAX} bytes");
        }
        read_more(stream, &mut chunk, buffer).await?;
    };
    let head = std::str::from_utf8(&buffer[..head_end])?;
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context("a status")?;
    let header = |wanted: &str| {
        head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case(wanted).then(|| value.trim())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        // Chunked: read until the last chunk (size 0) and its blank line are in.
        loop {
            if chunked_end(&buffer[head_end..])?.is_some() {
                return Ok(status);
            }
            if buffer.len() > head_end + BODY_BYTES_MAX {
                bail!("a chunked answer body over {BODY_BYTES_MAX} bytes");
            }
            read_more(stream, &mut chunk, buffer).await?;
        }
    }
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .context("an answer with neither Content-Length nor chunks")?;
    if length > BODY_BYTES_MAX {
        bail!("an answer body of {length} bytes");
    }
    while buffer.len() < head_end + length {
        read_more(stream, &mut chunk, buffer).await?;
    }
    Ok(status)
}

async fn read_more(
    stream: &mut TcpStream,
    chunk: &mut [u8],
    buffer: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let read = stream.read(chunk).await?;
    if read == 0 {
        bail!("the server closed the connection");
    }
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

/// Where a chunked body that starts `body` ends (the byte after its last chunk's blank line),
/// or `None` while it is incomplete. Trailers are not expected (the API sends none).
fn chunked_end(body: &[u8]) -> anyhow::Result<Option<usize>> {
    let mut at = 0;
    loop {
        let Some(line) = body[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&body[at..at + line])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("a chunk size {size_text:?}"))?;
        at += line + 2;
        if size == 0 {
            return Ok((body.len() >= at + 2).then_some(at + 2));
        }
        if body.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

/// The body of the chunked answer in `answer` (head included), its chunks joined.
#[must_use]
pub fn chunked_body(answer: &[u8]) -> Vec<u8> {
    let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Vec::new();
    };
    let mut body = &answer[head_end + 4..];
    let mut joined = Vec::new();
    while let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || body.len() < line + 2 + size {
            break;
        }
        joined.extend_from_slice(&body[line + 2..line + 2 + size]);
        body = &body[line + 2 + size + 2..];
    }
    joined
}

/// Latencies, sorted, read at percentiles.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// `samples`, sorted.
    ///
    /// # Panics
    /// `samples` is empty.
    #[must_use]
    pub fn new(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        Latencies(samples)
    }

    /// How many.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never: [`Self::new`] takes at least one.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sample at `p` (0 to 1) of the sorted samples, nearest rank.
    #[must_use]
    pub fn percentile(&self, p: f64) -> Duration {
        let at = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[at]
    }

    /// The largest.
    #[must_use]
    pub fn max(&self) -> Duration {
        self.0[self.0.len() - 1]
    }
}

/// `d` in milliseconds.
#[must_use]
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::{chunked_body, chunked_end};

    #[test]
    fn a_chunked_body_ends_after_its_last_chunk_and_blank_line() {
        let whole = b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
        for cut in 0..whole.len() {
            assert_eq!(chunked_end(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(chunked_end(whole).unwrap(), Some(whole.len()));
        assert!(chunked_end(b"zz\r\n").is_err());
    }

    #[test]
    fn a_chunked_body_is_joined() {
        let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(chunked_body(answer), b"helloabc");
    }
}
