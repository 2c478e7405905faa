//! serde_json's pretty printer a piece at a time: an object written field by field, an array
//! item by item, at any depth, each value by serde, so that text kept from an earlier save can
//! stand between freshly written fields. What comes out is byte for byte what
//! `serde_json::to_vec_pretty` writes for the whole (the state tests hold it to that).
//!
//! A level is how deep an object's or array's opening bracket stands: the file's own object is
//! at 0, its fields and items one deeper, each level two spaces.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// One level of indentation, as `serde_json::to_vec_pretty` writes it.
const INDENT: &[u8] = b"  ";

/// `serde_json::ser::PrettyFormatter`, started `level` deep (its own can only start at 0).
struct AtLevel {
    level: usize,
    has_value: bool,
}

fn indent(out: &mut (impl io::Write + ?Sized), level: usize) -> io::Result<()> {
    for _ in 0..level {
        out.write_all(INDENT)?;
    }
    Ok(())
}

impl AtLevel {
    /// An array or object opens one level deeper, with nothing in it yet.
    fn open<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    /// It closes on a line of its own at its level, when it held something.
    fn close<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            writer.write_all(b"\n")?;
            indent(writer, self.level)?;
        }
        writer.write_all(bracket)
    }

    /// A value or a key starts a line at the level.
    fn next_line<W: ?Sized + io::Write>(&self, writer: &mut W, first: bool) -> io::Result<()> {
        writer.write_all(if first { b"\n" } else { b",\n" })?;
        indent(writer, self.level)
    }
}

impl Formatter for AtLevel {
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.next_line(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.next_line(writer, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Writes `value` as it stands inside an object or array at `level - 1` (its nested lines
/// indented from `level`).
fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, level: usize, value: &T) {
    let formatter = AtLevel {
        level,
        has_value: false,
    };
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, formatter);
    // Into a Vec, serde_json fails only on a map whose keys are not strings: the DTOs have none.
    let _ = value.serialize(&mut serializer);
}

/// Where the next field or item goes: a comma after the one before, a new line, the indent.
fn next(out: &mut Vec<u8>, level: usize, first: bool) {
    out.extend_from_slice(if first { b"\n" } else { b",\n" });
    for _ in 0..level {
        out.extend_from_slice(INDENT);
    }
}

/// The end of an object or array at `level`: on a line of its own unless it is empty.
fn close(out: &mut Vec<u8>, level: usize, empty: bool, bracket: u8) {
    if !empty {
        out.push(b'\n');
        for _ in 0..level {
            out.extend_from_slice(INDENT);
        }
    }
    out.push(bracket);
}

/// An object being written at its level, field by field.
pub(super) struct Object<'o> {
    out: &'o mut Vec<u8>,
    level: usize,
    first: bool,
}

impl<'o> Object<'o> {
    /// Opens an object at `level`.
    pub(super) fn open(out: &'o mut Vec<u8>, level: usize) -> Self {
        out.push(b'{');
        Object::fields(out, level, true)
    }

    /// Fields of an object at `level` written on their own (no bracket), to be kept and put in
    /// place later ([`Self::kept`]); `first`: they are its first fields.
    pub(super) fn fields(out: &'o mut Vec<u8>, level: usize, first: bool) -> Self {
        Object { out, level, first }
    }

    /// Starts the field `key` (a plain name: nothing in it to escape); its value comes next.
    pub(super) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        next(self.out, self.level + 1, self.first);
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\": ");
        self.out
    }

    /// Writes the field `key`.
    pub(super) fn field<T: Serialize + ?Sized>(&mut self, key: &str, field: &T) {
        let level = self.level + 1;
        value(self.key(key), level, field);
    }

    /// Writes the field `key`, an array whose items `items` writes.
    pub(super) fn array(&mut self, key: &str, items: impl FnOnce(&mut Array<'_>)) {
        let level = self.level + 1;
        let mut array = Array::open(self.key(key), level);
        items(&mut array);
        array.close();
    }

    /// Puts fields written before by [`Self::fields`] in place: they were written as this
    /// object's first fields exactly when none is written yet.
    pub(super) fn kept(&mut self, fields: &[u8]) {
        self.out.extend_from_slice(fields);
        self.first = false;
    }

    /// Closes the object.
    pub(super) fn close(self) {
        close(self.out, self.level, self.first, b'}');
    }
}

/// An array being written at its level, item by item.
pub(super) struct Array<'o> {
    out: &'o mut Vec<u8>,
    level: usize,
    first: bool,
}

impl<'o> Array<'o> {
    fn open(out: &'o mut Vec<u8>, level: usize) -> Self {
        out.push(b'[');
        Array {
            out,
            level,
            first: true,
        }
    }

    /// Writes one item by serde.
    pub(super) fn item<T: Serialize + ?Sized>(&mut self, item: &T) {
        let level = self.level + 1;
        value(self.place(), level, item);
    }

    /// Starts one item, written by the caller at [`Self::item_level`].
    pub(super) fn place(&mut self) -> &mut Vec<u8> {
        next(self.out, self.level + 1, self.first);
        self.first = false;
        self.out
    }

    /// The level an item stands at.
    pub(super) fn item_level(&self) -> usize {
        self.level + 1
    }

    fn close(self) {
        close(self.out, self.level, self.first, b']');
    }
}
