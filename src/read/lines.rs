//! Decoding a file into lines: plain, zstd and gzip alike, in constant memory, with a torn
//! last line and a read error each reported as such.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::files::{Codec, RecordingFile};
use super::{MAX_LINE, READ_BUF, ReadError};

/// Counts the bytes read from a file (before decompression), for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}

/// Where the current line of a [`LineReader`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// 1-based line number.
    pub number: u64,
    /// The line has no newline: the file ends in the middle of it.
    pub torn: bool,
    /// The line was longer than [`MAX_LINE`] and was skipped; [`LineReader::line`] is empty.
    pub too_long: bool,
}

/// Reads one file line by line into one reused buffer.
pub struct LineReader {
    path: PathBuf,
    compressed: bool,
    inner: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    number: u64,
    failed: bool,
}

impl std::fmt::Debug for LineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineReader")
            .field("path", &self.path)
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl LineReader {
    /// Opens `file`; `count` (if any) is advanced by the bytes read from disk.
    ///
    /// An `.open` file renamed to its final name since it was found (the recorder closed it)
    /// is opened under that name.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(file: &RecordingFile, count: Option<Arc<AtomicU64>>) -> Result<Self, ReadError> {
        let opened = match File::open(&file.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && file.is_open => {
                File::open(crate::fsutil::strip_open(&file.path))
            }
            r => r,
        };
        let f = opened.map_err(|source| ReadError::Open {
            path: file.path.clone(),
            source,
        })?;
        let raw: Box<dyn Read + Send> = match count {
            Some(count) => Box::new(Counting { inner: f, count }),
            None => Box::new(f),
        };
        Self::from_reader(file.path.clone(), file.codec, raw)
    }

    /// A reader over any byte source (tests, embedded data).
    ///
    /// # Errors
    /// A zstd decoder cannot be set up.
    pub fn from_reader(
        path: PathBuf,
        codec: Codec,
        raw: Box<dyn Read + Send>,
    ) -> Result<Self, ReadError> {
        let inner: Box<dyn BufRead + Send> = match codec {
            Codec::Plain => Box::new(BufReader::with_capacity(READ_BUF, raw)),
            Codec::Zstd => {
                let d =
                    zstd::stream::read::Decoder::new(raw).map_err(|source| ReadError::Open {
                        path: path.clone(),
                        source,
                    })?;
                Box::new(BufReader::with_capacity(READ_BUF, d))
            }
            Codec::Gzip => Box::new(BufReader::with_capacity(
                READ_BUF,
                flate2::read::MultiGzDecoder::new(BufReader::new(raw)),
            )),
        };
        Ok(Self {
            path,
            compressed: codec != Codec::Plain,
            inner,
            buf: Vec::new(),
            number: 0,
            failed: false,
        })
    }

    /// Reads the next line; `Ok(None)` at the end of the file (or after an error).
    ///
    /// # Errors
    /// Reading failed part way; the lines before were delivered.
    pub fn advance(&mut self) -> Result<Option<LineInfo>, ReadError> {
        self.buf.clear();
        if self.failed {
            return Ok(None);
        }
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.failed = true;
                    return Err(ReadError::Stream {
                        path: self.path.clone(),
                        line: self.number,
                        compressed: self.compressed,
                        source,
                    });
                }
            };
            if chunk.is_empty() {
                if !any {
                    return Ok(None);
                }
                self.number += 1;
                return Ok(Some(LineInfo {
                    number: self.number,
                    torn: true,
                    too_long,
                }));
            }
            any = true;
            let (take, newline) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > MAX_LINE {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.inner.consume(take + usize::from(newline));
            if newline {
                self.number += 1;
                return Ok(Some(LineInfo {
                    number: self.number,
                    torn: false,
                    too_long,
                }));
            }
        }
    }

    /// The current line, without its newline.
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.number
    }
}
