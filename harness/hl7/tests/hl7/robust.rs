//! Input from a socket never panics a reader: arbitrary bytes, and valid
//! messages cut and mutated at random, through the parser, both decoders,
//! the ACK reader and the MLLP codec; any text survives escaping.

use bytes::BytesMut;
use medtwin_hl7::mllp::MllpCodec;
use medtwin_hl7::{
    AlertReport, Delimiters, Er7Writer, Message, Pcd01Options, decode_oru_r01, encode_oru_r01,
    parse_ack, unescape,
};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use tokio_util::codec::Decoder;

use crate::common::{every_device, every_report};

fn read_everything(bytes: &[u8]) {
    if let Ok(m) = Message::parse_bytes(bytes) {
        let _ = decode_oru_r01(&m);
        let _ = AlertReport::decode(&m);
        let _ = m.encode();
        for path in ["MSH-9-2", "PID-3(2)-4-2", "OBX[3]-5-9", "OBX[99]-1"] {
            let _ = m.get(path);
        }
    }
    let _ = parse_ack(bytes);
    let _ = medtwin_hl7::control_id(bytes);
    let mut codec = MllpCodec::new(256);
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
    let _ = codec.decode_eof(&mut buf);
}

#[test]
fn arbitrary_bytes_never_panic_a_reader() {
    fn prop(bytes: Vec<u8>, msh: bool) -> bool {
        let bytes = if msh {
            [b"MSH|^~\\&|".as_slice(), &bytes].concat()
        } else {
            bytes
        };
        read_everything(&bytes);
        true
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(Vec<u8>, bool) -> bool);
}

#[test]
fn mutated_messages_never_panic_a_reader() {
    let opts = Pcd01Options::default();
    let mut corpus: Vec<Vec<u8>> = every_device()
        .iter()
        .map(|m| encode_oru_r01(m, &opts).into_bytes())
        .collect();
    corpus.extend(
        every_report()
            .iter()
            .map(|r| r.encode(&opts, "X1").into_bytes()),
    );
    // Delimiters, segment and frame ends, bytes that are not UTF-8, and the
    // characters times and sub-ids are made of.
    let specials = [
        b'|', b'^', b'~', b'\\', b'&', b'\r', b'\n', 0x0B, 0x1C, 0xFF, b'.', b'-', b'+',
    ];
    let mut g = Gen::new(64);
    for _ in 0..5000 {
        let mut m = g.choose(&corpus).unwrap().clone();
        let edits: Vec<(usize, usize)> = Arbitrary::arbitrary(&mut g);
        for (at, b) in edits {
            let i = at % m.len();
            m[i] = specials[b % specials.len()];
        }
        m.truncate(usize::arbitrary(&mut g) % (m.len() + 1));
        read_everything(&m);
    }
}

#[test]
fn any_text_survives_escaping() {
    fn prop(text: String) -> bool {
        let d = Delimiters::default();
        let mut w = Er7Writer::new();
        w.msh()
            .field("A")
            .empty(5)
            .comps(&["ORU", "R01"])
            .field("1");
        w.segment("NTE").field(&text).comps(&["x", &text]);
        let m = Message::parse(&w.finish()).unwrap();
        let mut escaped = String::new();
        medtwin_hl7::escape_into(&mut escaped, &text, &d);
        let empty_or = |v: Option<&str>| v.unwrap_or("").to_owned();
        empty_or(m.get("NTE-1")) == text
            && empty_or(m.get("NTE-2-2")) == text
            && unescape(&escaped, &d) == text
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(String) -> bool);
}
