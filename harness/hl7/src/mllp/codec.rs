//! MLLP framing as a tokio-util codec.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

/// Start of a frame (vertical tab).
pub const START_BLOCK: u8 = 0x0B;
/// End of a frame: file separator, carriage return.
pub const END_BLOCK: [u8; 2] = [0x1C, 0x0D];

/// A byte stream that is not MLLP frames.
#[derive(Debug, Error)]
pub enum FrameError {
    /// A frame longer than the codec's cap (the rest is not read).
    #[error("frame over the {max}-byte cap")]
    TooLarge {
        /// The cap.
        max: usize,
    },
    /// A byte other than the start block (or whitespace) between frames.
    #[error("byte 0x{byte:02X} where a frame should start")]
    Garbage {
        /// The byte.
        byte: u8,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({len} bytes read)")]
    Truncated {
        /// Bytes of the unfinished frame.
        len: usize,
    },
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// MLLP codec: frames out, payloads in, with a cap on a frame's size.
#[derive(Clone, Debug)]
pub struct MllpCodec {
    max_frame_bytes: usize,
    /// Bytes of the current frame already searched for the end block.
    scanned: usize,
}

impl MllpCodec {
    /// A codec refusing payloads over `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        MllpCodec {
            max_frame_bytes,
            scanned: 0,
        }
    }
}

impl Default for MllpCodec {
    fn default() -> Self {
        Self::new(crate::MAX_MESSAGE_BYTES)
    }
}

impl Decoder for MllpCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if self.scanned == 0 {
            // Some senders put a line break between frames: not data.
            let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            buf.advance(ws);
            match buf.first() {
                None => return Ok(None),
                Some(&START_BLOCK) => {}
                Some(&byte) => return Err(FrameError::Garbage { byte }),
            }
        }
        let from = self.scanned.max(1).min(buf.len());
        if let Some(i) = buf[from..].windows(2).position(|w| w == END_BLOCK) {
            let end = from + i;
            self.scanned = 0;
            if end - 1 > self.max_frame_bytes {
                return Err(FrameError::TooLarge {
                    max: self.max_frame_bytes,
                });
            }
            let mut frame = buf.split_to(end + 2);
            frame.advance(1);
            frame.truncate(end - 1);
            return Ok(Some(frame.freeze()));
        }
        // The last byte may be the first half of the end block.
        self.scanned = buf.len().saturating_sub(1).max(1);
        if buf.len() > self.max_frame_bytes + 2 {
            self.scanned = 0;
            return Err(FrameError::TooLarge {
                max: self.max_frame_bytes,
            });
        }
        Ok(None)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.iter().all(u8::is_ascii_whitespace) => Ok(None),
            None => Err(FrameError::Truncated { len: buf.len() }),
        }
    }
}

impl Encoder<&[u8]> for MllpCodec {
    type Error = FrameError;

    fn encode(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<(), FrameError> {
        if payload.len() > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                max: self.max_frame_bytes,
            });
        }
        out.reserve(payload.len() + 3);
        out.put_u8(START_BLOCK);
        out.put_slice(payload);
        out.put_slice(&END_BLOCK);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_join_and_refuse() {
        let mut c = MllpCodec::new(16);
        let mut out = BytesMut::new();
        c.encode(b"MSH|a".as_slice(), &mut out).unwrap();
        c.encode(b"MSH|b".as_slice(), &mut out).unwrap();
        assert_eq!(&out[..], b"\x0bMSH|a\x1c\r\x0bMSH|b\x1c\r");
        // Byte by byte: a frame comes out only when whole.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in out.iter() {
            buf.put_u8(*b);
            if let Some(f) = c.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            vec![Bytes::from_static(b"MSH|a"), Bytes::from_static(b"MSH|b")]
        );
        assert!(buf.is_empty());

        let mut buf = BytesMut::from(&b"\r\n\x0bx\x1c\r"[..]);
        assert_eq!(
            c.decode(&mut buf).unwrap().unwrap(),
            Bytes::from_static(b"x")
        );
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1"[..]);
        assert!(matches!(
            c.decode(&mut buf),
            Err(FrameError::Garbage { byte: b'G' })
        ));
        let mut buf = BytesMut::from(&[b"\x0b".as_slice(), &[b'x'; 40]].concat()[..]);
        assert!(matches!(
            c.decode(&mut buf),
            Err(FrameError::TooLarge { max: 16 })
        ));
        let mut buf = BytesMut::from(&[b"\x0b".as_slice(), &[b'x'; 17], b"\x1c\r"].concat()[..]);
        assert!(matches!(
            c.decode(&mut buf),
            Err(FrameError::TooLarge { max: 16 })
        ));
        assert!(c.encode([0u8; 17].as_slice(), &mut out).is_err());
        let mut c = MllpCodec::new(16);
        let mut buf = BytesMut::from(&b"\x0bMSH|"[..]);
        assert!(matches!(
            c.decode_eof(&mut buf),
            Err(FrameError::Truncated { len: 5 })
        ));
    }
}
