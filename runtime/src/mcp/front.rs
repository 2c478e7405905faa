//! The front door of `baton mcp`'s stdio: every line the client sends is checked before rmcp
//! reads it, so that malformed input gets the JSON-RPC error it deserves.
//!
//! rmcp (0.x, as pinned) reads one JSON message per line into its typed request enum. A line
//! that is not JSON it logs and drops: the client waits for an answer that never comes. A
//! `tools/call` whose params do not fit (`name` not a string, `arguments` not an object) falls
//! through to its catch-all and is answered -32601 "method not found", naming the method that
//! does exist. Neither is configurable in rmcp. So the front answers them itself:
//!
//! - a line that is not JSON: -32700 (parse error), `id` null, with what the parser said;
//! - a line that is JSON but no message object (a number, a string, …): -32600 (invalid request);
//! - a line longer than [`LINE_BYTES_MAX`]: -32600, without reading it into memory whole;
//! - a `tools/call` request whose params are not `{name: string, arguments?: object}`: -32602
//!   (invalid params) with its id and what is wrong.
//!
//! Everything else goes to rmcp as it came. Answers from rmcp and from the front reach stdout
//! through one writer, a whole line at a time, so they never interleave.
//!
//! Pure: [`check`] decides for one line. The shell ([`serve`]) moves bytes.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::sync::mpsc;

/// Longest message line the client may send, in bytes: far above any tool call Baton has (a
/// prompt is at most 64 KiB), low enough that a client cannot make `baton mcp` hold gigabytes.
pub const LINE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Bytes buffered between the front and rmcp in each direction.
pub const PIPE_BYTES: usize = 64 * 1024;
/// Answers of the front waiting to be written.
pub const FRONT_ANSWERS_MAX: usize = 64;

/// What to do with one line from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to rmcp.
    Pass,
    /// Answer it with this line (no newline) and drop it.
    Answer(String),
    /// Drop it silently (a blank line).
    Skip,
}

/// A JSON-RPC error answer, as one line.
fn error(id: &Value, code: i64, message: &str) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }).to_string()
}

/// Decides what to do with `line` (without its newline).
#[must_use]
pub fn check(line: &[u8]) -> Verdict {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Skip;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(parse) => {
            return Verdict::Answer(error(
                &Value::Null,
                -32700,
                &format!("Parse error: the line is not JSON ({parse})"),
            ));
        }
    };
    let Some(message) = value.as_object() else {
        // A batch (an array) is rmcp's to judge; anything else is no message.
        if value.is_array() {
            return Verdict::Pass;
        }
        return Verdict::Answer(error(
            &Value::Null,
            -32600,
            "Invalid Request: a message is a JSON object",
        ));
    };
    let Some(id) = message.get("id") else {
        return Verdict::Pass;
    };
    if message.get("method").and_then(Value::as_str) != Some("tools/call") {
        return Verdict::Pass;
    }
    match tool_call_params_problem(message.get("params")) {
        None => Verdict::Pass,
        Some(problem) => Verdict::Answer(error(id, -32602, &format!("Invalid params: {problem}"))),
    }
}

/// What is wrong with a `tools/call`'s params, if anything.
fn tool_call_params_problem(params: Option<&Value>) -> Option<&'static str> {
    let Some(params) = params else {
        return Some("tools/call needs params {name, arguments}");
    };
    let Some(params) = params.as_object() else {
        return Some("params must be an object {name, arguments}");
    };
    match params.get("name") {
        Some(Value::String(_)) => {}
        Some(_) => return Some("name must be a string (the tool's name)"),
        None => return Some("name is missing (the tool's name)"),
    }
    match params.get("arguments") {
        None | Some(Value::Null | Value::Object(_)) => None,
        Some(_) => Some("arguments must be an object"),
    }
}

/// Puts the front between the client's `input`/`output` and rmcp: returns the reader and
/// writer rmcp is to serve on, and the writing task, done once everything rmcp and the front
/// answered is written (await it before the process ends). The front's reader ends when the
/// client's input ends (rmcp then reads the end of its input); its writer when rmcp closed its
/// output and the reader is done.
pub fn serve<R, W>(
    input: R,
    output: W,
) -> (
    impl AsyncRead + Unpin,
    impl AsyncWrite + Unpin,
    tokio::task::JoinHandle<()>,
)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (rmcp_in, mut to_rmcp) = tokio::io::duplex(PIPE_BYTES);
    let (from_rmcp, rmcp_out) = tokio::io::duplex(PIPE_BYTES);
    let (answers, mut answered) = mpsc::channel::<String>(FRONT_ANSWERS_MAX);
    tokio::spawn(async move {
        let mut input = BufReader::new(input);
        let mut line = Vec::new();
        loop {
            line.clear();
            match read_line(&mut input, &mut line).await {
                Ok(Line::End) | Err(_) => break,
                Ok(Line::TooLong) => {
                    let too_long = error(
                        &Value::Null,
                        -32600,
                        &format!("Invalid Request: a message is at most {LINE_BYTES_MAX} bytes"),
                    );
                    if answers.send(too_long).await.is_err() {
                        break;
                    }
                }
                Ok(Line::Read) => match check(trim_newline(&line)) {
                    Verdict::Skip => {}
                    Verdict::Answer(answer) => {
                        if answers.send(answer).await.is_err() {
                            break;
                        }
                    }
                    Verdict::Pass => {
                        if to_rmcp.write_all(&line).await.is_err() {
                            break;
                        }
                        if !line.ends_with(b"\n") && to_rmcp.write_all(b"\n").await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
        // Dropping `to_rmcp` is rmcp's end of input.
    });
    let written = tokio::spawn(async move {
        let mut output = output;
        let mut from_rmcp = BufReader::new(from_rmcp);
        let mut line = Vec::new();
        let (mut rmcp_open, mut answers_open) = (true, true);
        while rmcp_open || answers_open {
            // `read_until` keeps what it read in `line` when the other branch wins: nothing
            // is lost, the line is finished on the next turn.
            tokio::select! {
                read = from_rmcp.read_until(b'\n', &mut line), if rmcp_open => match read {
                    Ok(0) | Err(_) => rmcp_open = false,
                    Ok(_) => {
                        if output.write_all(&line).await.is_err() || output.flush().await.is_err()
                        {
                            return;
                        }
                        line.clear();
                    }
                },
                answer = answered.recv(), if answers_open => match answer {
                    None => answers_open = false,
                    Some(mut answer) => {
                        answer.push('\n');
                        if output.write_all(answer.as_bytes()).await.is_err()
                            || output.flush().await.is_err()
                        {
                            return;
                        }
                    }
                },
            }
        }
    });
    (rmcp_in, rmcp_out, written)
}

/// How reading one line ended.
enum Line {
    /// A line (with its newline, unless the input ended first).
    Read,
    /// Longer than [`LINE_BYTES_MAX`]: skipped to its end.
    TooLong,
    /// The input ended.
    End,
}

/// Reads one line into `line`, never holding more than [`LINE_BYTES_MAX`] of it.
async fn read_line<R: AsyncRead + Unpin>(
    input: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> std::io::Result<Line> {
    let mut too_long = false;
    loop {
        let buffered = input.fill_buf().await?;
        if buffered.is_empty() {
            return Ok(if too_long {
                Line::TooLong
            } else if line.is_empty() {
                Line::End
            } else {
                Line::Read
            });
        }
        let (chunk, done) = match memchr::memchr(b'\n', buffered) {
            Some(at) => (&buffered[..=at], true),
            None => (buffered, false),
        };
        let taken = chunk.len();
        if !too_long {
            if line.len() + taken > LINE_BYTES_MAX {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        input.consume(taken);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Read });
        }
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::{Verdict, check};

    fn answer(line: &str) -> serde_json::Value {
        match check(line.as_bytes()) {
            Verdict::Answer(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn a_line_that_is_not_json_is_a_parse_error() {
        let error = answer("this is not json");
        assert_eq!(error["id"], serde_json::Value::Null);
        assert_eq!(error["error"]["code"], -32700);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Parse error"),
            "{error}"
        );
        assert_eq!(answer("{\"jsonrpc\":")["error"]["code"], -32700);
        assert_eq!(answer("42")["error"]["code"], -32600);
    }

    #[test]
    fn a_tool_call_with_params_that_do_not_fit_is_invalid_params_with_its_id() {
        for (params, says) in [
            ("", "needs params"),
            (",\"params\":7", "must be an object"),
            (",\"params\":{\"name\":42}", "name must be a string"),
            (",\"params\":{\"arguments\":{}}", "name is missing"),
            (
                ",\"params\":{\"name\":\"list_tasks\",\"arguments\":\"x\"}",
                "arguments must be an object",
            ),
        ] {
            let line =
                format!("{{\"jsonrpc\":\"2.0\",\"id\":\"a-7\",\"method\":\"tools/call\"{params}}}");
            let error = answer(&line);
            assert_eq!(error["id"], "a-7", "{line}");
            assert_eq!(error["error"]["code"], -32602, "{line}");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{line}: {message}");
        }
    }

    #[test]
    fn everything_else_goes_to_rmcp() {
        for line in [
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"list_tasks\"}}",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{}}}",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}",
            "[]",
        ] {
            assert_eq!(check(line.as_bytes()), Verdict::Pass, "{line}");
        }
        assert_eq!(check(b"  \r"), Verdict::Skip);
    }

    #[tokio::test]
    async fn answers_from_the_front_and_from_rmcp_reach_the_client_whole() {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
        let huge = format!("{{\"x\":\"{}\"}}\n", "a".repeat(super::LINE_BYTES_MAX));
        let input = format!(
            "nope\n{}\n{huge}{}",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":[]}"#
        );
        let (client_out, mut client_reads) = tokio::io::duplex(1 << 16);
        let (rmcp_in, mut rmcp_out, written) =
            super::serve(std::io::Cursor::new(input), client_out);
        // rmcp's stand-in: answers each line it gets, then ends its output.
        let rmcp = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(rmcp_in).lines();
            let mut got = Vec::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                rmcp_out.write_all(b"{\"from\":\"rmcp\"}\n").await.unwrap();
                got.push(line);
            }
            got
        });
        let got = rmcp.await.unwrap();
        assert_eq!(got.len(), 1, "only the valid line reached rmcp: {got:?}");
        assert!(got[0].contains("tools/list"));
        written.await.unwrap();
        let mut text = String::new();
        client_reads.read_to_string(&mut text).await.unwrap();
        let codes: Vec<i64> = text
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter_map(|answer| answer["error"]["code"].as_i64())
            .collect();
        assert_eq!(codes, [-32700, -32600, -32602], "{text}");
        assert!(text.contains("\"from\":\"rmcp\""), "{text}");
    }
}
