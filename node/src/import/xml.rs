//! A streaming reader of one dump file: `<row .../>` elements, one record each, read with
//! quick-xml without holding the file in memory.
//!
//! A byte order mark, the XML declaration, a DOCTYPE line, comments and whitespace are passed
//! over; attribute values are unescaped (entities and character references such as `&#10;`)
//! and normalised as XML says. Each row comes with the line it starts on, so that a report can
//! point at it. A file that is not well-formed XML ends the stream with an error naming the
//! file and the line.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

use super::ImportError;

/// One `<row/>` of a dump file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The line the row starts on (1-based).
    pub line: u64,
    /// Its attributes, unescaped.
    pub attrs: HashMap<String, String>,
}

impl Row {
    /// An attribute's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }
}

/// A `BufRead` that counts the newlines its reader has consumed.
struct Lines<R> {
    inner: R,
    newlines: u64,
}

impl<R: BufRead> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Lines<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let end = amt.min(buf.len());
            self.newlines += buf[..end].iter().filter(|b| **b == b'\n').count() as u64;
        }
        self.inner.consume(amt)
    }
}

/// The rows of one dump file, in file order.
pub struct Rows {
    path: PathBuf,
    reader: Reader<Lines<BufReader<File>>>,
    buf: Vec<u8>,
    done: bool,
    /// The root element once it opened, and how many elements are open.
    root: Option<String>,
    depth: usize,
}

impl Rows {
    /// Opens `path`; `Ok(None)` if the file does not exist (any dump file may be missing).
    pub fn open(path: &Path) -> Result<Option<Rows>, ImportError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ImportError::Io {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        };
        let lines = Lines {
            inner: BufReader::with_capacity(64 * 1024, file),
            newlines: 0,
        };
        let mut reader = Reader::from_reader(lines);
        reader.config_mut().check_end_names = true;
        Ok(Some(Rows {
            path: path.to_path_buf(),
            reader,
            buf: Vec::with_capacity(4096),
            done: false,
            root: None,
            depth: 0,
        }))
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn malformed(&self, reason: String) -> ImportError {
        // The error position is a byte offset; count the lines up to it from the file.
        let offset = self.reader.error_position();
        ImportError::Malformed {
            path: self.path.clone(),
            line: line_at(&self.path, offset),
            reason,
        }
    }

    /// The end of the file: fine only after the root element closed. A dump cut short between
    /// two rows is still well-formed up to its end, so this is where it shows.
    fn at_end(&self) -> Result<Option<Row>, ImportError> {
        let line = self.reader.get_ref().newlines + 1;
        let reason = match &self.root {
            None => "no root element: the file is empty or not a dump file".to_string(),
            Some(root) if self.depth > 0 => {
                format!("the file ends before its closing </{root}> tag: it was cut short")
            }
            Some(_) => return Ok(None),
        };
        Err(ImportError::Malformed {
            path: self.path.clone(),
            line,
            reason,
        })
    }

    fn next_row(&mut self) -> Result<Option<Row>, ImportError> {
        loop {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => return Err(self.malformed(e.to_string())),
            };
            match &event {
                Event::Start(e) => {
                    if self.root.is_none() {
                        self.root = Some(e.name().as_ref().to_string());
                    }
                    self.depth += 1;
                }
                Event::Empty(e) if self.root.is_none() && e.name().as_ref() != "row" => {
                    self.root = Some(e.name().as_ref().to_string());
                }
                Event::End(_) => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
            match event {
                Event::Eof => return self.at_end(),
                Event::Empty(e) | Event::Start(e) if e.name().as_ref() == "row" => {
                    // Newlines inside the row (rare: attribute values escape them) were
                    // consumed with it; the row starts that many lines earlier.
                    let inside = e.bytes().filter(|b| *b == b'\n').count() as u64;
                    let line = 1 + self.reader.get_ref().newlines - inside;
                    let mut attrs = HashMap::new();
                    for attr in e.attributes() {
                        let attr = attr.map_err(|err| ImportError::Malformed {
                            path: self.path.clone(),
                            line,
                            reason: err.to_string(),
                        })?;
                        let key = attr.key.as_ref().to_string();
                        let value =
                            attr.normalized_value(XmlVersion::Implicit1_0)
                                .map_err(|err| ImportError::Malformed {
                                    path: self.path.clone(),
                                    line,
                                    reason: format!("attribute {key}: {err}"),
                                })?;
                        attrs.insert(key, value.into_owned());
                    }
                    return Ok(Some(Row { line, attrs }));
                }
                _ => {}
            }
        }
    }
}

impl Iterator for Rows {
    type Item = Result<Row, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_row() {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The 1-based line of byte `offset` in the file at `path` (0 if it cannot be read again).
/// The XML reader reports an error at the end of what it read last; whitespace after that
/// is passed over, so the line is that of the markup that is broken.
fn line_at(path: &Path, offset: u64) -> u64 {
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut newlines = 0u64;
    let mut reader = BufReader::new(file);
    // The XML reader counts positions after a byte order mark.
    let bom = reader
        .fill_buf()
        .is_ok_and(|b| b.starts_with(&[0xef, 0xbb, 0xbf]));
    let mut left = offset + if bom { 3 } else { 0 };
    while left > 0 {
        let Ok(buf) = reader.fill_buf() else { break };
        if buf.is_empty() {
            break;
        }
        let take = buf.len().min(left as usize);
        newlines += buf[..take].iter().filter(|b| **b == b'\n').count() as u64;
        reader.consume(take);
        left -= take as u64;
    }
    'skip: while let Ok(buf) = reader.fill_buf() {
        if buf.is_empty() {
            break;
        }
        let mut used = 0;
        for b in buf {
            if !b.is_ascii_whitespace() {
                break 'skip;
            }
            newlines += u64::from(*b == b'\n');
            used += 1;
        }
        reader.consume(used);
    }
    newlines + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(text: &str) -> Vec<Result<Row, ImportError>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Posts.xml");
        std::fs::write(&path, text).unwrap();
        Rows::open(&path).unwrap().unwrap().collect()
    }

    #[test]
    fn reads_rows_past_bom_doctype_entities_and_escaped_newlines() {
        let text =
            "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE posts>\n<posts>\n  \
                    <row Id=\"1\" Body=\"&lt;p&gt;a &amp; b&lt;/p&gt;&#10;next\" />\n  \
                    <row Id=\"2\" Title=\"caf\u{e9}\" />\n</posts>\n";
        let rows: Vec<Row> = rows_of(text).into_iter().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 4);
        assert_eq!(rows[0].get("Body"), Some("<p>a & b</p>\nnext"));
        assert_eq!(rows[1].line, 5);
        assert_eq!(rows[1].get("Title"), Some("caf\u{e9}"));
    }

    #[test]
    fn a_broken_file_names_its_line() {
        let text = "<posts>\n<row Id=\"1\" />\n<row Id=\"2\" Body=\"unclosed />\n</posts>\n";
        let out = rows_of(text);
        assert!(out[0].is_ok());
        let err = out.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(err.contains("Posts.xml") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn a_file_cut_short_between_rows_or_empty_is_an_error() {
        let cut = rows_of("<posts>\n<row Id=\"1\" />\n<row Id=\"2\" />\n");
        assert_eq!(cut.len(), 3);
        assert!(cut[0].is_ok() && cut[1].is_ok());
        let err = cut[2].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("</posts>") && err.contains("cut short"),
            "{err}"
        );
        for empty in ["", "\u{feff}<?xml version=\"1.0\"?>\n"] {
            let out = rows_of(empty);
            let err = out[0].as_ref().unwrap_err().to_string();
            assert!(err.contains("no root element"), "{err}");
        }
        // A whole file with no rows is fine.
        assert!(rows_of("<votes>\n</votes>\n").is_empty());
        assert!(rows_of("<votes/>").is_empty());
    }

    #[test]
    fn a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Rows::open(&dir.path().join("Votes.xml")).unwrap().is_none());
    }
}
