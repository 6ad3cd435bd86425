//! Reading a text file line by line with bounded memory: a line longer than the limit is
//! skipped (and reported) instead of buffered, and bytes that are not UTF-8 are reported with
//! their line instead of failing the file.

use std::io::BufRead;

/// The longest line kept (1 MiB); longer ones are reported and skipped.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// One line of a file.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    Text(&'a str),
    /// Not UTF-8: the byte offset in the line where it stops being valid.
    NotUtf8(usize),
    /// Longer than the limit; its length in bytes.
    TooLong(usize),
}

/// Lines of a reader, numbered from 1, with `\n` or `\r\n` endings removed.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    number: u64,
    max: usize,
    /// Bytes consumed since the last [`LineReader::take_progress`].
    progress: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader::with_limit(inner, MAX_LINE_BYTES)
    }

    pub fn with_limit(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            number: 0,
            max,
            progress: 0,
        }
    }

    /// The number of the line last returned.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Bytes read since the last call.
    pub fn take_progress(&mut self) -> u64 {
        std::mem::take(&mut self.progress)
    }

    /// The next line, `None` at the end of the file.
    pub fn next_line(&mut self) -> std::io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        let mut length = 0usize;
        let mut any = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            any = true;
            let (piece, done) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (&available[..i], i + 1),
                None => (available, available.len()),
            };
            let room = self.max.saturating_sub(self.buf.len());
            if length <= self.max {
                self.buf
                    .extend_from_slice(&piece[..piece.len().min(room + 1)]);
            }
            length += piece.len();
            let newline = done > piece.len();
            self.inner.consume(done);
            self.progress += done as u64;
            if newline {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        if length > self.max {
            return Ok(Some((self.number, Line::TooLong(length))));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        // A UTF-8 byte-order mark on the first line.
        let start = if self.number == 1 && self.buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            0
        };
        match std::str::from_utf8(&self.buf[start..]) {
            Ok(text) => Ok(Some((self.number, Line::Text(text)))),
            Err(e) => Ok(Some((self.number, Line::NotUtf8(e.valid_up_to())))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<String> {
        let mut r = LineReader::with_limit(std::io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some((number, line)) = r.next_line().expect("reads") {
            out.push(format!("{number}:{line:?}"));
        }
        out
    }

    #[test]
    fn lines_are_numbered_and_bad_ones_named() {
        let input = b"one\r\ntwo\n\xff\xfe\nthis is far too long\nlast";
        assert_eq!(
            all(input, 8),
            vec![
                "1:Text(\"one\")",
                "2:Text(\"two\")",
                "3:NotUtf8(0)",
                "4:TooLong(20)",
                "5:Text(\"last\")"
            ]
        );
        assert!(all(b"", 8).is_empty());
        assert_eq!(all(b"\n", 8), vec!["1:Text(\"\")"]);
    }
}
