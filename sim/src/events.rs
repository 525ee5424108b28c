//! The event log: one JSON object per line (`{"t":ms,"ev":…}`), hashed as it is written, and
//! either kept in memory (tests, `compare` of two fresh runs) or streamed to a gzip file
//! (`events.jsonl.gz`, what `run` writes), so a long run does not hold its log.
//!
//! [`lines`] reads a log back, gzip or plain (logs written before the streaming were plain
//! `events.jsonl`), one line at a time.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// Where the lines go.
enum Sink {
    Memory(Vec<u8>),
    Gzip(GzEncoder<BufWriter<File>>),
    /// A write failed: the error, kept for [`EventLog::finish`]; later lines only hash.
    Failed(io::Error),
}

/// The log being written.
pub struct EventLog {
    sink: Sink,
    hash: Sha256,
    lines: u64,
    line: Vec<u8>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog::in_memory()
    }
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("lines", &self.lines)
            .finish()
    }
}

/// A finished log: its size, its hash, and its text when it was kept in memory.
#[derive(Debug, Default)]
pub struct Finished {
    /// Lines written.
    pub lines: u64,
    /// SHA-256 of the uncompressed text, hex.
    pub sha256: String,
    /// The text, if kept in memory (empty when streamed to a file).
    pub text: Vec<u8>,
}

impl EventLog {
    /// A log kept in memory.
    pub fn in_memory() -> EventLog {
        EventLog::with(Sink::Memory(Vec::new()))
    }

    /// A log streamed to the gzip file `path` (created or truncated).
    pub fn to_gzip(path: &Path) -> io::Result<EventLog> {
        let file = BufWriter::with_capacity(1 << 16, File::create(path)?);
        Ok(EventLog::with(Sink::Gzip(GzEncoder::new(
            file,
            Compression::fast(),
        ))))
    }

    fn with(sink: Sink) -> EventLog {
        EventLog {
            sink,
            hash: Sha256::new(),
            lines: 0,
            line: Vec::with_capacity(256),
        }
    }

    /// Appends one event at virtual ms `t_ms`: `body` is a serialized JSON object
    /// (`{"ev":…}`), written as `{"t":t_ms,"ev":…}`. Anything else is skipped.
    pub fn push_raw(&mut self, t_ms: u64, body: &str) {
        if !body.starts_with('{') {
            return;
        }
        self.line.clear();
        let _ = write!(self.line, "{{\"t\":{t_ms},");
        self.line.extend_from_slice(&body.as_bytes()[1..]);
        self.line.push(b'\n');
        self.hash.update(&self.line);
        self.lines += 1;
        match &mut self.sink {
            Sink::Memory(buf) => buf.extend_from_slice(&self.line),
            Sink::Gzip(gz) => {
                if let Err(e) = gz.write_all(&self.line) {
                    self.sink = Sink::Failed(e);
                }
            }
            Sink::Failed(_) => {}
        }
    }

    /// Lines so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Closes the log (the gzip trailer, the file flushed): its count, hash and, if kept in
    /// memory, text. A failed write to the file is reported here.
    pub fn finish(&mut self) -> io::Result<Finished> {
        let sink = std::mem::replace(&mut self.sink, Sink::Memory(Vec::new()));
        let text = match sink {
            Sink::Memory(buf) => buf,
            Sink::Gzip(gz) => {
                gz.finish()?.into_inner().map_err(|e| e.into_error())?;
                Vec::new()
            }
            Sink::Failed(e) => return Err(e),
        };
        Ok(Finished {
            lines: self.lines,
            sha256: hex::encode(self.hash.clone().finalize()),
            text,
        })
    }
}

/// The log file of run directory `dir`: `events.jsonl.gz`, or a plain `events.jsonl` of a run
/// made before the logs were compressed.
pub fn file_in(dir: &Path) -> PathBuf {
    let gz = dir.join("events.jsonl.gz");
    if gz.exists() {
        gz
    } else {
        dir.join("events.jsonl")
    }
}

/// The lines of the log file `path` (gzip if it starts with gzip's magic bytes, plain text
/// otherwise), read one at a time.
pub fn lines(path: &Path) -> io::Result<impl Iterator<Item = io::Result<String>>> {
    let mut file = BufReader::new(File::open(path)?);
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    };
    Ok(reader.lines())
}

/// Runs `f` over the lines of the log file `path`; a read error (a truncated gzip file, say)
/// ends the lines and is returned instead of `f`'s result.
pub fn with_lines<R>(
    path: &Path,
    f: impl FnOnce(&mut dyn Iterator<Item = String>) -> R,
) -> io::Result<R> {
    let mut err = None;
    let mut it = lines(path)?.map_while(|r| match r {
        Ok(line) => Some(line),
        Err(e) => {
            err = Some(e);
            None
        }
    });
    let out = f(&mut it);
    drop(it);
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(log: &mut EventLog) {
        log.push_raw(5, r#"{"ev":"up","node":1}"#);
        log.push_raw(7, "not an object");
        log.push_raw(9, r#"{"ev":"lookup","found":true}"#);
    }

    /// The gzip file holds exactly the text the in-memory log holds, with the same hash, and
    /// reads back line by line.
    #[test]
    fn gzip_and_memory_logs_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl.gz");
        let mut mem = EventLog::in_memory();
        let mut gz = EventLog::to_gzip(&path).unwrap();
        fill(&mut mem);
        fill(&mut gz);
        let (a, b) = (mem.finish().unwrap(), gz.finish().unwrap());
        assert_eq!(a.lines, 2);
        assert_eq!(
            String::from_utf8(a.text.clone()).unwrap(),
            "{\"t\":5,\"ev\":\"up\",\"node\":1}\n{\"t\":9,\"ev\":\"lookup\",\"found\":true}\n"
        );
        assert_eq!(a.sha256, hex::encode(Sha256::digest(&a.text)));
        assert_eq!((b.lines, &b.sha256), (2, &a.sha256));
        assert!(b.text.is_empty());
        assert_eq!(&std::fs::read(&path).unwrap()[..2], &[0x1f, 0x8b]);
        let back: Vec<String> = lines(&path).unwrap().map(Result::unwrap).collect();
        assert_eq!(back.join("\n") + "\n", String::from_utf8(a.text).unwrap());
        assert_eq!(file_in(dir.path()), path);
        assert_eq!(with_lines(&path, |it| it.count()).unwrap(), 2);
    }

    /// A log cut short (a run killed mid-write) is an error, not a shorter log.
    #[test]
    fn a_truncated_gzip_log_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl.gz");
        let mut gz = EventLog::to_gzip(&path).unwrap();
        for t in 0..2000 {
            gz.push_raw(t, &format!("{{\"ev\":\"lookup\",\"n\":{}}}", t * 7919));
        }
        gz.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(with_lines(&path, |it| it.count()).is_err());
    }

    /// A plain log (a run from before compression) reads back too.
    #[test]
    fn plain_logs_still_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events.jsonl"), "{\"t\":1}\n{\"t\":2}\n").unwrap();
        let path = file_in(dir.path());
        assert!(path.ends_with("events.jsonl"));
        assert_eq!(lines(&path).unwrap().count(), 2);
    }
}
