//! Fuzz target of the request-response framing (`net::codec`): whatever a peer writes on a stream, a read
//! returns a frame within the cap or an error, and allocates only for bytes that arrived (a header claiming
//! 16 MiB on a 5-byte stream must not reserve 16 MiB). The caps are the defaults of `NetConfig::new`.
//! Short run in `cargo test`; `scripts/fuzz` for long runs.

use futures::executor::block_on;
use futures::io::Cursor;
use fuzzkit::Target;
use libp2p::request_response::Codec;
use sidechain_net::codec::{read_frame, RawCodec, RequestFrame, REQUEST_PROTOCOL};
use sidechain_net::{Keypair, NetConfig};

#[global_allocator]
static ALLOC: fuzzkit::CountingAlloc = fuzzkit::CountingAlloc;

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn targets() -> Vec<Target> {
    let listen = "/ip4/127.0.0.1/tcp/0".parse().expect("a multiaddr");
    let cfg = NetConfig::new(Keypair::generate_ed25519(), listen);
    let caps = RawCodec { max_request: cfg.max_request_bytes, max_response: cfg.max_response_bytes };
    let seeds = vec![framed(b""), framed(b"hello"), framed(&[0xab; 300]), [framed(b"one"), framed(b"two")].concat()];
    vec![Target::new("net_frame", seeds, move |b| {
        // The peer's bytes as a stream: read as a request, as a response and as a bare frame.
        let mut codec = caps;
        match block_on(codec.read_request(&REQUEST_PROTOCOL, &mut Cursor::new(b))) {
            Ok(RequestFrame::Bytes(body)) => assert!(body.len() <= codec.max_request && body.len() + 4 <= b.len()),
            Ok(RequestFrame::Oversized { len, max }) => assert!(len > max),
            Err(_) => {}
        }
        if let Ok(body) = block_on(codec.read_response(&REQUEST_PROTOCOL, &mut Cursor::new(b))) {
            assert!(body.len() <= codec.max_response && body.len() + 4 <= b.len());
        }
        if let Ok(body) = block_on(read_frame(&mut Cursor::new(b), 64)) {
            assert_eq!(framed(&body), &b[..body.len() + 4]);
        }
    })
    // Three async reads per input: a few thousand inputs keep the short run near a second.
    .short_iterations(5_000)]
}

fuzzkit::fuzz_tests!(targets());
