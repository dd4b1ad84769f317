//! Length-prefixed message framing, shared by gRPC and Connect streams: one flags byte, a
//! big-endian u32 length, then the message. Flag bit 0 marks a compressed message; Connect
//! uses bit 1 for its end-of-stream message.

use std::io::{Read, Write};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

pub const COMPRESSED: u8 = 0b01;
pub const END_STREAM: u8 = 0b10;
const HEADER: usize = 5;

/// One framed message.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub flags: u8,
    pub data: Bytes,
}

pub fn encode(flags: u8, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER + data.len());
    out.put_u8(flags);
    out.put_u32(data.len() as u32);
    out.extend_from_slice(data);
    out.freeze()
}

/// Collects bytes as they arrive and yields whole frames.
#[derive(Default)]
pub struct Decoder {
    buffer: BytesMut,
    max_len: usize,
}

impl Decoder {
    pub fn new(max_len: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            max_len,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete frame, None while more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        if self.buffer.len() < HEADER {
            return Ok(None);
        }
        let flags = self.buffer[0];
        let len = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if len > self.max_len {
            return Err(format!(
                "a message of {len} bytes is larger than the limit of {} bytes",
                self.max_len
            ));
        }
        if self.buffer.len() < HEADER + len {
            return Ok(None);
        }
        self.buffer.advance(HEADER);
        let data = self.buffer.split_to(len).freeze();
        Ok(Some(Frame { flags, data }))
    }

    /// Bytes left over that do not make a whole frame.
    pub fn leftover(&self) -> usize {
        self.buffer.len()
    }
}

/// Every frame of a complete body; an incomplete trailing frame is an error.
pub fn decode_all(body: &[u8], max_len: usize) -> Result<Vec<Frame>, String> {
    let mut decoder = Decoder::new(max_len);
    decoder.push(body);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.next_frame()? {
        frames.push(frame);
    }
    if decoder.leftover() > 0 {
        return Err(format!(
            "the body ends inside a message ({} stray bytes)",
            decoder.leftover()
        ));
    }
    Ok(frames)
}

pub fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    encoder.write_all(data).expect("gzip into memory");
    Bytes::from(encoder.finish().expect("gzip into memory"))
}

/// Decompresses, refusing output beyond `max_len` (a small body may expand enormously).
pub fn gunzip(data: &[u8], max_len: usize) -> Result<Bytes, String> {
    let mut out = Vec::new();
    GzDecoder::new(data)
        .take(max_len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("invalid gzip data: {e}"))?;
    if out.len() > max_len {
        return Err(format!(
            "the message is larger than the limit of {max_len} bytes once decompressed"
        ));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_chunk_boundaries() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&encode(0, b"hello"));
        wire.extend_from_slice(&encode(COMPRESSED, b""));
        wire.extend_from_slice(&encode(END_STREAM, b"{}"));
        let mut decoder = Decoder::new(1024);
        let mut got = Vec::new();
        for byte in &wire {
            decoder.push(&[*byte]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                got.push(frame);
            }
        }
        assert_eq!(
            got,
            vec![
                Frame {
                    flags: 0,
                    data: Bytes::from_static(b"hello")
                },
                Frame {
                    flags: COMPRESSED,
                    data: Bytes::new()
                },
                Frame {
                    flags: END_STREAM,
                    data: Bytes::from_static(b"{}")
                },
            ]
        );
        assert_eq!(decode_all(&wire, 1024).unwrap().len(), 3);
    }

    #[test]
    fn refuses_truncated_and_oversized_frames() {
        let wire = encode(0, b"hello");
        assert!(decode_all(&wire[..wire.len() - 1], 1024)
            .unwrap_err()
            .contains("stray"));
        assert!(decode_all(&wire, 4).unwrap_err().contains("limit"));
    }

    #[test]
    fn gzip_round_trip_and_bomb_limit() {
        let data = vec![7u8; 10_000];
        let packed = gzip(&data);
        assert!(packed.len() < 200);
        assert_eq!(gunzip(&packed, 10_000).unwrap(), data);
        assert!(gunzip(&packed, 9_999).unwrap_err().contains("limit"));
        assert!(gunzip(b"not gzip", 100).is_err());
    }
}
