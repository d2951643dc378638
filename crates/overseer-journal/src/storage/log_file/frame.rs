//! The log file's layout, as pure functions over bytes: its header, its frames, and what a
//! file's bytes hold ([`scan`]).
//!
//! ```text
//! header (20 bytes): magic "OVSJRNL\0" | storage format u32 LE | journal format u32 LE | crc32 of the 16 bytes before, u32 LE
//! frame:             payload length u32 LE | crc32 of (payload, length) u32 LE | payload
//! ```
//!
//! A crash in the middle of an append leaves a *torn tail*: an incomplete frame, a last frame
//! whose checksum does not match, or zeros (a file grown before its data reached the disk).
//! Anything else that does not check (a checksum before the last frame, a length that cuts a
//! complete frame short, a damaged header) is corruption.

use super::super::StorageError;

/// The first bytes of every journal log file.
pub(crate) const MAGIC: [u8; 8] = *b"OVSJRNL\0";
/// The layout of the file (header and frames) this version reads and writes.
pub(crate) const STORAGE_VERSION: u32 = 1;
/// The header's length in bytes.
pub(crate) const HEADER_LEN: usize = 20;
/// A frame's length and checksum, before its payload.
pub(crate) const FRAME_HEADER_LEN: usize = 8;

/// What a file's bytes hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The journal format in the header; `None` for a file never initialized (empty, or an
    /// initialization cut short by a crash).
    pub(crate) journal_version: Option<u32>,
    /// Where each record's frame starts, then where the last one ends: record `i` is
    /// `boundaries[i]..boundaries[i + 1]`. Starts at [`HEADER_LEN`].
    pub(crate) boundaries: Vec<u64>,
    /// Whether bytes follow the last whole frame: a torn tail, to be truncated.
    pub(crate) torn_tail: bool,
}

impl Scan {
    /// The payload of each record, borrowed from `bytes` (the bytes scanned).
    pub(crate) fn payloads<'a>(&'a self, bytes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        self.boundaries.windows(2).map(move |pair| {
            // Both came from offsets into `bytes`, so they fit in usize.
            let start = pair[0] as usize + FRAME_HEADER_LEN;
            &bytes[start..pair[1] as usize]
        })
    }
}

/// The header of a file holding journal format `journal_version`.
pub(crate) fn header(journal_version: u32) -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&STORAGE_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&journal_version.to_le_bytes());
    let checksum = crc32fast::hash(&header[..16]);
    header[16..].copy_from_slice(&checksum.to_le_bytes());
    header
}

/// Appends the frame of `payload` to `out`; returns the frame's length.
///
/// # Errors
///
/// [`StorageError::RecordTooLarge`] for a payload whose length does not fit in a `u32`
/// (nothing is appended).
pub(crate) fn push_frame(out: &mut Vec<u8>, payload: &[u8]) -> Result<u64, StorageError> {
    let length = u32::try_from(payload.len()).map_err(|_| StorageError::RecordTooLarge {
        bytes: payload.len(),
        limit: u32::MAX as usize,
    })?;
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&checksum(payload, length).to_le_bytes());
    out.extend_from_slice(payload);
    Ok((FRAME_HEADER_LEN + payload.len()) as u64)
}

/// The checksum of a frame: its payload, then its length, so that a damaged length is caught
/// (and so that the checksum of every prefix of a payload can be tried in one pass, see
/// [`length_damaged`]).
fn checksum(payload: &[u8], length: u32) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(payload);
    hasher.update(&length.to_le_bytes());
    hasher.finalize()
}

/// Reads a whole file: its header, its records, and whether a torn tail follows them.
///
/// # Errors
///
/// [`StorageError::Corrupted`] for a file that is not a journal, a damaged header, or damage
/// before the last frame; [`StorageError::UnsupportedFormat`] for a file in a layout this
/// version does not read.
pub(crate) fn scan(bytes: &[u8]) -> Result<Scan, StorageError> {
    let journal_version = read_header(bytes)?;
    let mut at = HEADER_LEN;
    let mut boundaries = vec![at as u64];
    if journal_version.is_none() {
        return Ok(Scan {
            journal_version,
            boundaries,
            torn_tail: false,
        });
    }
    let torn_tail = loop {
        match frame_at(bytes, at) {
            Frame::End => break false,
            Frame::Whole { next } => {
                at = next;
                boundaries.push(at as u64);
            }
            Frame::Mismatch { next } if next == bytes.len() && !length_damaged(bytes, at) => {
                break true
            }
            Frame::Mismatch { .. } => return Err(damaged(boundaries.len(), at, "its checksum")),
            Frame::Zeros if bytes[at..].iter().all(|&byte| byte == 0) => break true,
            Frame::Zeros => return Err(damaged(boundaries.len(), at, "zeros in its header")),
            Frame::Cut if length_damaged(bytes, at) => {
                return Err(damaged(boundaries.len(), at, "its length"))
            }
            Frame::Cut => break true,
        }
    };
    Ok(Scan {
        journal_version,
        boundaries,
        torn_tail,
    })
}

fn damaged(boundaries: usize, at: usize, what: &str) -> StorageError {
    StorageError::Corrupted(format!(
        "record {} (at byte {at}) is damaged ({what} does not check) and is not the last",
        boundaries - 1
    ))
}

/// The journal format in the header of `bytes`, `None` for a file never initialized.
fn read_header(bytes: &[u8]) -> Result<Option<u32>, StorageError> {
    let head = &bytes[..bytes.len().min(HEADER_LEN)];
    let magic = head.len() >= MAGIC.len() && head[..MAGIC.len()] == MAGIC;
    let version = |range: std::ops::Range<usize>| {
        head.get(range)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let whole = head.len() == HEADER_LEN;
    if magic
        && whole
        && version(8..12) == Some(STORAGE_VERSION)
        && version(16..20) == Some(crc32fast::hash(&head[..16]))
    {
        return Ok(version(12..16));
    }
    if bytes.len() <= HEADER_LEN && is_cut_initialization(head) {
        return Ok(None);
    }
    if !magic {
        return Err(StorageError::Corrupted(
            "not a journal log file (its first bytes are not the journal's)".into(),
        ));
    }
    match version(8..12) {
        Some(found) if found != STORAGE_VERSION => Err(StorageError::UnsupportedFormat {
            found,
            supported: STORAGE_VERSION,
        }),
        _ => Err(StorageError::Corrupted(
            "the file's header is damaged (its checksum does not match)".into(),
        )),
    }
}

/// Whether `head`, the whole of a file no longer than a header, is what an initialization cut
/// short leaves: the header is written to an empty file in one write, so a crash leaves a prefix
/// of it, possibly with zeros where its data did not reach the disk. Nothing was ever stored
/// after it: the file is a new journal.
fn is_cut_initialization(head: &[u8]) -> bool {
    let expected = header(0);
    head.iter()
        .zip(&expected[..12])
        .all(|(&found, &expected)| found == expected || found == 0)
}

/// What starts at offset `at` of the file.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// Nothing: the end of the file.
    End,
    /// A frame that checks; the next starts at `next`.
    Whole { next: usize },
    /// A frame that fits in the file but whose checksum does not match.
    Mismatch { next: usize },
    /// A frame header of zeros (a zero length with a zero checksum is never written: the
    /// checksum of an empty payload is not zero).
    Zeros,
    /// A frame longer than what is left of the file.
    Cut,
}

fn frame_at(bytes: &[u8], at: usize) -> Frame {
    let rest = &bytes[at..];
    if rest.is_empty() {
        return Frame::End;
    }
    let Some(head) = rest.get(..FRAME_HEADER_LEN) else {
        return Frame::Cut;
    };
    let length = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let stored = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if length == 0 && stored == 0 {
        return Frame::Zeros;
    }
    let Some(payload) = rest[FRAME_HEADER_LEN..].get(..length as usize) else {
        return Frame::Cut;
    };
    let next = at + FRAME_HEADER_LEN + payload.len();
    if checksum(payload, length) == stored {
        Frame::Whole { next }
    } else {
        Frame::Mismatch { next }
    }
}

/// Whether the frame at `at`, which looks like a torn last frame (it claims more bytes than the
/// file has, or reaches its end with a checksum that does not match), is in fact a whole frame
/// followed by others, whose length was damaged: some shorter length makes its checksum match,
/// and a whole frame follows there. A torn last frame is cut short instead: its stored length is
/// right and no shorter one checks (but by a 2^-32 chance twice over).
fn length_damaged(bytes: &[u8], at: usize) -> bool {
    let Some(head) = bytes.get(at..at + FRAME_HEADER_LEN) else {
        return false;
    };
    let stored = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let payload = &bytes[at + FRAME_HEADER_LEN..];
    let mut hasher = crc32fast::Hasher::new();
    for (length, &byte) in payload.iter().enumerate() {
        let Ok(length32) = u32::try_from(length) else {
            return false;
        };
        let mut candidate = hasher.clone();
        candidate.update(&length32.to_le_bytes());
        if candidate.finalize() == stored
            && matches!(
                frame_at(bytes, at + FRAME_HEADER_LEN + length),
                Frame::Whole { .. }
            )
        {
            return true;
        }
        hasher.update(&[byte]);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(records: &[&[u8]]) -> Vec<u8> {
        let mut bytes = header(1).to_vec();
        for record in records {
            push_frame(&mut bytes, record).unwrap();
        }
        bytes
    }

    fn payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
        let scan = scan(bytes).unwrap();
        scan.payloads(bytes).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn an_empty_file_is_a_new_journal() {
        let scan = scan(&[]).unwrap();
        assert_eq!(scan.journal_version, None);
        assert_eq!(scan.boundaries, vec![HEADER_LEN as u64]);
        assert!(!scan.torn_tail);
    }

    #[test]
    fn whole_frames_are_read_back_in_order() {
        let bytes = file(&[b"a", b"", b"ccc"]);
        let scanned = scan(&bytes).unwrap();
        assert_eq!(scanned.journal_version, Some(1));
        assert!(!scanned.torn_tail);
        assert_eq!(
            payloads(&bytes),
            vec![b"a".to_vec(), vec![], b"ccc".to_vec()]
        );
        assert_eq!(scanned.boundaries, vec![20, 29, 37, 48]);
    }

    #[test]
    fn every_cut_of_an_initialization_is_a_new_journal() {
        let full = header(7);
        for cut in 0..HEADER_LEN {
            assert_eq!(
                scan(&full[..cut]).unwrap().journal_version,
                None,
                "cut at {cut}"
            );
        }
        assert_eq!(scan(&[0; HEADER_LEN]).unwrap().journal_version, None);
    }

    #[test]
    fn a_damaged_header_is_corrupted() {
        let mut bytes = file(&[b"a"]);
        bytes[13] ^= 1;
        assert!(matches!(scan(&bytes), Err(StorageError::Corrupted(_))));
    }

    #[test]
    fn a_future_layout_is_unsupported() {
        let mut bytes = file(&[b"a"]);
        bytes[8] = 2;
        assert!(matches!(
            scan(&bytes),
            Err(StorageError::UnsupportedFormat {
                found: 2,
                supported: 1
            })
        ));
    }

    #[test]
    fn another_file_is_not_a_journal() {
        for bytes in [&b"hello, world, this is text"[..], b"hi", b"OVSJRNLx"] {
            assert!(
                matches!(scan(bytes), Err(StorageError::Corrupted(_))),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn trailing_zeros_are_a_torn_tail() {
        let mut bytes = file(&[b"a", b"bb"]);
        bytes.extend_from_slice(&[0; 100]);
        let scanned = scan(&bytes).unwrap();
        assert!(scanned.torn_tail);
        assert_eq!(payloads(&bytes), vec![b"a".to_vec(), b"bb".to_vec()]);
    }

    #[test]
    fn zeros_followed_by_data_are_corrupted() {
        let mut bytes = file(&[b"a"]);
        bytes.extend_from_slice(&[0; 8]);
        push_frame(&mut bytes, b"b").unwrap();
        assert!(matches!(scan(&bytes), Err(StorageError::Corrupted(_))));
    }

    #[test]
    fn a_mismatch_in_the_last_frame_is_torn_and_before_it_corrupted() {
        let mut last = file(&[b"aaaa", b"bbbb"]);
        let end = last.len();
        last[end - 1] ^= 0xff;
        assert!(scan(&last).unwrap().torn_tail);
        assert_eq!(payloads(&last), vec![b"aaaa".to_vec()]);

        let mut middle = file(&[b"aaaa", b"bbbb"]);
        middle[HEADER_LEN + FRAME_HEADER_LEN] ^= 0xff;
        assert!(matches!(scan(&middle), Err(StorageError::Corrupted(_))));
    }

    #[test]
    fn a_middle_length_damaged_past_the_end_is_corrupted_not_torn() {
        let mut bytes = file(&[b"first record", b"second", b"third"]);
        // The first frame now claims more than the file holds.
        bytes[HEADER_LEN + 2] = 0x7f;
        assert!(matches!(scan(&bytes), Err(StorageError::Corrupted(_))));
    }

    #[test]
    fn a_middle_length_damaged_to_reach_the_end_is_corrupted_not_torn() {
        let mut bytes = file(&[b"first record", b"second", b"third"]);
        let to_the_end = bytes.len() - HEADER_LEN - FRAME_HEADER_LEN;
        bytes[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&(to_the_end as u32).to_le_bytes());
        assert!(matches!(scan(&bytes), Err(StorageError::Corrupted(_))));
    }

    #[test]
    fn a_middle_length_damaged_within_the_file_is_corrupted() {
        let mut bytes = file(&[b"first record", b"second", b"third"]);
        bytes[HEADER_LEN] = 3;
        assert!(matches!(scan(&bytes), Err(StorageError::Corrupted(_))));
    }

    #[test]
    fn a_cut_last_frame_is_torn() {
        let bytes = file(&[b"first", b"second record"]);
        let start = HEADER_LEN + FRAME_HEADER_LEN + 5;
        for cut in start + 1..bytes.len() {
            let scanned = scan(&bytes[..cut]).unwrap();
            assert!(scanned.torn_tail, "cut at {cut}");
            assert_eq!(
                payloads(&bytes[..cut]),
                vec![b"first".to_vec()],
                "cut at {cut}"
            );
        }
    }
}
