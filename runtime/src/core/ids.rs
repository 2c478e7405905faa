//! Identifiers and secrets, made from random bytes handed in by the caller.
//!
//! Every id is a UUID v4 ([`Uuid`]) wrapped in a type per kind, so a task id can never be passed
//! where a coordinator id is expected. Ids print as lower-case hyphenated hex and parse from any
//! case, refusing anything but a well-formed version-4, RFC 4122 variant UUID. The core has no
//! randomness of its own: [`Uuid::from_random`] and [`DoneToken::from_random`] take the bytes
//! (the `Entropy` port supplies them, seeded in the simulator).

use std::fmt;
use std::str::FromStr;

/// A version-4 UUID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid([u8; 16]);

impl Uuid {
    /// The UUID v4 made of `bytes`, with the version and variant bits set.
    #[must_use]
    pub const fn from_random(mut bytes: [u8; 16]) -> Self {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid(bytes)
    }

    /// The sixteen bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// The length of a hyphenated UUID: 32 hex digits and 4 hyphens.
pub const UUID_TEXT_BYTES: usize = 36;

/// A UUID's text, made on the stack: what [`Uuid`]'s `Display` writes, without a formatter
/// per byte or an allocation (the REST list writes several ids per task; issue 23 measured
/// `{:02x}` per byte at 28 % of the list's time).
#[derive(Clone, Copy)]
pub struct Hyphenated([u8; UUID_TEXT_BYTES]);

impl Hyphenated {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Hex digits and hyphens only: ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Uuid {
    /// Its lower-case hyphenated text.
    #[must_use]
    pub const fn hyphenated(&self) -> Hyphenated {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b'-'; UUID_TEXT_BYTES];
        let (mut byte, mut at) = (0, 0);
        while byte < 16 {
            if matches!(byte, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = HEX[(self.0[byte] >> 4) as usize];
            text[at + 1] = HEX[(self.0[byte] & 0x0f) as usize];
            at += 2;
            byte += 1;
        }
        Hyphenated(text)
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hyphenated().as_str())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Text that is not a UUID v4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be a valid UUID")]
pub struct InvalidUuid;

impl FromStr for Uuid {
    type Err = InvalidUuid;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.as_bytes();
        if text.len() != 36 {
            return Err(InvalidUuid);
        }
        let mut bytes = [0u8; 16];
        let mut digits = 0;
        for (index, &c) in text.iter().enumerate() {
            if matches!(index, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(InvalidUuid);
                }
                continue;
            }
            let value = (c as char).to_digit(16).ok_or(InvalidUuid)? as u8;
            bytes[digits / 2] |= if digits % 2 == 0 { value << 4 } else { value };
            digits += 1;
        }
        let version_4 = bytes[6] >> 4 == 4;
        let rfc_variant = bytes[8] >> 6 == 0b10;
        if version_4 && rfc_variant {
            Ok(Uuid(bytes))
        } else {
            Err(InvalidUuid)
        }
    }
}

/// Declares an id type wrapping a [`Uuid`].
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh id made of `bytes` (random bytes from the caller).
            #[must_use]
            pub const fn from_random(bytes: [u8; 16]) -> Self {
                $name(Uuid::from_random(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidUuid;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map($name)
            }
        }
    };
}

id_type!(
    /// A sub-task (a worktree with its agent).
    TaskId
);
id_type!(
    /// A coordinator: the task whose agent drives sub-tasks.
    CoordinatorId
);
id_type!(
    /// An agent's PTY session.
    AgentId
);
id_type!(
    /// A staged batch of coordinator notifications.
    BatchId
);
id_type!(
    /// One coordinator notification.
    NotificationId
);

/// Random bytes in a done token: 24, so its base64url form is 32 characters without padding.
pub const DONE_TOKEN_BYTES: usize = 24;

/// The per-task secret an agent presents with `signal_done` to prove it is that task.
///
/// Compared in constant time; its `Debug` form hides the value, so it cannot reach a log line
/// through `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct DoneToken(String);

impl DoneToken {
    /// The token for `bytes` (random bytes from the caller), base64url without padding.
    #[must_use]
    pub fn from_random(bytes: [u8; DONE_TOKEN_BYTES]) -> Self {
        DoneToken(base64url(&bytes))
    }

    /// A token as stored or presented (for restore and comparison).
    #[must_use]
    pub fn from_text(text: &str) -> Self {
        DoneToken(text.to_owned())
    }

    /// The secret, to write into the agent's MCP config.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in time that does not depend on where they differ.
    #[must_use]
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), presented.as_bytes())
    }
}

impl fmt::Debug for DoneToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DoneToken(…)")
    }
}

/// Byte-wise equality whose time depends only on the lengths.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    for index in 0..a.len().max(b.len()) {
        let x = a.get(index).copied().unwrap_or(0);
        let y = b.get(index).copied().unwrap_or(0);
        difference |= x ^ y;
    }
    difference == 0
}

/// RFC 4648 base64url without padding.
#[must_use]
pub fn base64url(bytes: &[u8]) -> String {
    encode(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        false,
    )
}

/// RFC 4648 base64, with padding.
#[must_use]
pub fn base64(bytes: &[u8]) -> String {
    encode(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true,
    )
}

/// The bytes of RFC 4648 base64 text (padded, as [`base64`] writes it); `None` if it is not.
#[must_use]
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let groups = text.len() / 4;
    for (index, group) in text.chunks(4).enumerate() {
        let padding = group.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && index + 1 != groups) {
            return None;
        }
        let mut n = 0u32;
        for &c in &group[..4 - padding] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * padding;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - padding]);
    }
    Some(out)
}

fn encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for k in 0..=group.len() {
            out.push(alphabet[(n >> (18 - 6 * k) & 0x3f) as usize] as char);
        }
        if pad {
            for _ in group.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{
        DoneToken, InvalidUuid, TaskId, Uuid, base64, base64_decode, base64url, constant_time_eq,
    };

    #[test]
    fn base64_reads_back_what_it_wrote_and_refuses_anything_else() {
        for length in 0..64usize {
            let bytes: Vec<u8> = (0..length).map(|i| (i * 37 % 256) as u8).collect();
            assert_eq!(base64_decode(&base64(&bytes)), Some(bytes));
        }
        for bad in ["a", "ab=c", "a===", "ab==cdef", "ab-_", "ab\ncd"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64_pads_and_base64url_does_not() {
        assert_eq!(base64(b"hi"), "aGk=");
        assert_eq!(base64(b"h"), "aA==");
        assert_eq!(base64(b"\xfb\xff"), "+/8=");
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn uuids_from_random_bytes_are_version_4_and_round_trip() {
        let id = Uuid::from_random([0xff; 16]);
        let text = id.to_string();
        assert_eq!(text, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(text.parse(), Ok(id));
        assert_eq!(text.to_uppercase().parse(), Ok(id), "any case");
    }

    #[test]
    fn hyphenated_text_is_each_byte_in_two_hex_digits_with_hyphens_after_4_6_8_10() {
        let id = Uuid::from_random(std::array::from_fn(|i| (i as u8).wrapping_mul(37)));
        let mut expected = String::new();
        for (index, byte) in id.as_bytes().iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                expected.push('-');
            }
            expected.push_str(&format!("{byte:02x}"));
        }
        assert_eq!(id.hyphenated().as_str(), expected);
        assert_eq!(id.to_string(), expected);
        assert_eq!(expected.parse(), Ok(id));
    }

    #[test]
    fn only_well_formed_version_4_uuids_parse() {
        for bad in [
            "",
            "not-a-uuid",
            "ffffffff-ffff-3fff-bfff-ffffffffffff",
            "ffffffff-ffff-4fff-7fff-ffffffffffff",
            "ffffffffffff-4fff-bfff-ffffffffffff",
            "ffffffff-ffff-4fff-bfff-fffffffffffg",
            "ffffffff-ffff-4fff-bfff-ffffffffffff\n",
            "ffffffff+ffff-4fff-bfff-ffffffffffff",
            "fffffff\u{e9}-ffff-4fff-bfff-ffffffffffff",
        ] {
            assert_eq!(bad.parse::<Uuid>(), Err(InvalidUuid), "{bad:?}");
        }
    }

    #[test]
    fn id_kinds_print_as_their_uuid_and_debug_with_their_kind() {
        let id = TaskId::from_random([0; 16]);
        assert_eq!(id.to_string(), "00000000-0000-4000-8000-000000000000");
        assert_eq!(
            format!("{id:?}"),
            "TaskId(00000000-0000-4000-8000-000000000000)"
        );
    }

    #[test]
    fn base64url_matches_rfc_4648_vectors_without_padding() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff], "-_8"),
        ] {
            assert_eq!(base64url(input), expected);
        }
    }

    #[test]
    fn done_tokens_are_32_characters_compared_exactly_and_never_printed() {
        let token = DoneToken::from_random([7; 24]);
        assert_eq!(token.expose().len(), 32);
        assert!(token.matches(token.expose()));
        assert!(!token.matches(&token.expose()[..31]));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "DoneToken(…)");
    }

    #[test]
    fn constant_time_eq_is_plain_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"\0"));
        assert!(constant_time_eq(b"", b""));
    }
}
