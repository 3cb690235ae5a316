//! The request-response wire format: one length-prefixed frame of raw bytes per request and per response.
//!
//! Invariant: a frame whose declared length exceeds the cap is an error before any payload is buffered,
//! and the buffer only grows as bytes actually arrive, so a peer cannot make us allocate by lying about a
//! length. Frame: 4-byte big-endian length, then exactly that many bytes; a short read is an error.

use std::io;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{request_response, StreamProtocol};

/// Protocol name of the request-response exchange.
pub const REQUEST_PROTOCOL: StreamProtocol = StreamProtocol::new("/sidechain/req/1");

/// Length-prefixed `Vec<u8>` codec with strict caps on both directions.
#[derive(Debug, Clone, Copy)]
pub struct RawCodec {
    /// Largest request read or written.
    pub max_request: usize,
    /// Largest response read or written.
    pub max_response: usize,
}

/// A request as read off the wire: its bytes, or the fact that the peer declared more than our cap.
///
/// Oversized requests are a value rather than an error because libp2p-request-response 0.29 drops
/// request read errors without an event; as a value it reaches the driver with the peer id, which then
/// penalizes the peer and drops the response channel (the requester sees a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFrame {
    /// A complete request within the cap.
    Bytes(Vec<u8>),
    /// The header declared `len` bytes, over the cap of `max`; the payload was not read.
    Oversized { len: usize, max: usize },
}

async fn read_len<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<usize> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    Ok(u32::from_be_bytes(len) as usize)
}

/// Reads one frame of at most `max` bytes.
pub async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let len = read_len(io).await?;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the cap of {max} bytes"),
        ));
    }
    read_body(io, len).await
}

/// Reads exactly `len` payload bytes (the caller has checked `len` against its cap).
async fn read_body<T: AsyncRead + Unpin + Send>(io: &mut T, len: usize) -> io::Result<Vec<u8>> {
    // Grow with the bytes that actually arrive: no up-front allocation of a peer-chosen length.
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame truncated: got {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

/// Writes one frame, refusing payloads over `max` (the remote would refuse them anyway).
pub async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, data: &[u8], max: usize) -> io::Result<()> {
    let len = u32::try_from(data.len()).ok().filter(|l| *l as usize <= max).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds the cap of {max} bytes", data.len()),
        )
    })?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(data).await?;
    io.flush().await
}

#[async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = RequestFrame;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RequestFrame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_len(io).await?;
        if len > self.max_request {
            return Ok(RequestFrame::Oversized { len, max: self.max_request });
        }
        Ok(RequestFrame::Bytes(read_body(io, len).await?))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: RequestFrame) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            RequestFrame::Bytes(data) => write_frame(io, &data, self.max_request).await,
            RequestFrame::Oversized { len, max } => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("request of {len} bytes exceeds the cap of {max} bytes"),
            )),
        }
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.max_response).await
    }
}

#[cfg(test)]
mod tests {
    use futures::{executor::block_on, io::Cursor};

    use super::*;

    fn framed(declared: u32, body: &[u8]) -> Vec<u8> {
        let mut v = declared.to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn round_trip() {
        let mut out = Cursor::new(Vec::new());
        block_on(write_frame(&mut out, b"hello", 16)).unwrap();
        let mut inp = Cursor::new(out.into_inner());
        assert_eq!(block_on(read_frame(&mut inp, 16)).unwrap(), b"hello");
    }

    #[test]
    fn empty_frame_is_fine() {
        let mut inp = Cursor::new(framed(0, b""));
        assert!(block_on(read_frame(&mut inp, 16)).unwrap().is_empty());
    }

    #[test]
    fn declared_length_over_cap_is_rejected_before_reading() {
        // Declares 4 GiB - 1 but sends nothing: must fail on the header, not allocate or wait.
        let mut inp = Cursor::new(framed(u32::MAX, b""));
        let err = block_on(read_frame(&mut inp, 1024)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_frame_is_an_error() {
        let mut inp = Cursor::new(framed(10, b"abc"));
        let err = block_on(read_frame(&mut inp, 1024)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn short_header_is_an_error() {
        let mut inp = Cursor::new(vec![0u8, 1]);
        assert!(block_on(read_frame(&mut inp, 1024)).is_err());
    }

    #[test]
    fn oversized_request_is_a_value_and_its_payload_is_not_read() {
        use request_response::Codec;
        let mut codec = RawCodec { max_request: 8, max_response: 8 };
        let mut inp = Cursor::new(framed(1 << 30, b"never read"));
        let got = block_on(codec.read_request(&REQUEST_PROTOCOL, &mut inp)).unwrap();
        assert_eq!(got, RequestFrame::Oversized { len: 1 << 30, max: 8 });
        assert_eq!(inp.position(), 4, "only the header was consumed");
        let mut inp = Cursor::new(framed(2, b"ok"));
        let got = block_on(codec.read_request(&REQUEST_PROTOCOL, &mut inp)).unwrap();
        assert_eq!(got, RequestFrame::Bytes(b"ok".to_vec()));
    }

    #[test]
    fn oversized_write_is_refused() {
        let mut out = Cursor::new(Vec::new());
        let err = block_on(write_frame(&mut out, &[0u8; 17], 16)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(out.into_inner().is_empty());
    }
}
