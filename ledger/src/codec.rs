//! Borsh codecs for foreign types that appear in signed or hashed structures.
//!
//! Why: `bitcoin::Amount` and `bitcoin::PublicKey` do not implement borsh, yet the house rule is that money
//! is a `bitcoin::Amount` in every public signature. These functions pin their canonical encoding:
//! an amount is its value in satoshis as a little-endian `u64`; a peg key is its 33-byte compressed
//! SEC1 encoding; a Bitcoin txid or block hash is its 32 bytes in internal order (as in transactions and
//! headers, not the reversed RPC display), exactly what a `Hash32` was before they had types. Use them with `#[borsh(serialize_with = "...", deserialize_with = "...")]`.

use bitcoin::Amount;
use borsh::io::{Error, ErrorKind, Read, Write};
use borsh::{BorshDeserialize, BorshSerialize};

/// `Amount` as `u64` satoshis, little-endian.
pub mod amount {
    use super::*;

    /// Writes the amount as 8 bytes (little-endian satoshis).
    pub fn serialize<W: Write>(value: &Amount, writer: &mut W) -> Result<(), Error> {
        value.to_sat().serialize(writer)
    }

    /// Reads 8 bytes of little-endian satoshis.
    pub fn deserialize<R: Read>(reader: &mut R) -> Result<Amount, Error> {
        u64::deserialize_reader(reader).map(Amount::from_sat)
    }
}

/// `Option<Amount>` as borsh's option (a 0/1 byte), then the amount as [`amount`] encodes it.
pub mod option_amount {
    use super::*;

    /// Writes `0`, or `1` and the amount.
    pub fn serialize<W: Write>(value: &Option<Amount>, writer: &mut W) -> Result<(), Error> {
        value.map(|a| a.to_sat()).serialize(writer)
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<R: Read>(reader: &mut R) -> Result<Option<Amount>, Error> {
        Option::<u64>::deserialize_reader(reader).map(|o| o.map(Amount::from_sat))
    }
}

/// `bitcoin::PublicKey` as its 33-byte compressed encoding; uncompressed keys are not accepted.
pub mod peg_key {
    use super::*;

    /// Writes the 33-byte compressed encoding.
    pub fn serialize<W: Write>(value: &bitcoin::PublicKey, writer: &mut W) -> Result<(), Error> {
        writer.write_all(&value.inner.serialize())
    }

    /// Reads 33 bytes and parses them as a compressed secp256k1 point.
    pub fn deserialize<R: Read>(reader: &mut R) -> Result<bitcoin::PublicKey, Error> {
        let mut buf = [0u8; 33];
        reader.read_exact(&mut buf)?;
        bitcoin::PublicKey::from_slice(&buf)
            .map_err(|e| Error::new(ErrorKind::InvalidData, format!("bad peg key: {e}")))
    }
}

/// `Vec<bitcoin::PublicKey>` as borsh's `u32` length, then each key as [`peg_key`] encodes it.
pub mod peg_keys {
    use super::*;

    /// Writes the count, then each 33-byte key.
    pub fn serialize<W: Write>(value: &[bitcoin::PublicKey], writer: &mut W) -> Result<(), Error> {
        let n = u32::try_from(value.len()).map_err(|_| Error::new(ErrorKind::InvalidData, "too many keys"))?;
        n.serialize(writer)?;
        value.iter().try_for_each(|k| peg_key::serialize(k, writer))
    }

    /// Reads what [`serialize`] writes (at most 255 keys: more could never make a wallet).
    pub fn deserialize<R: Read>(reader: &mut R) -> Result<Vec<bitcoin::PublicKey>, Error> {
        let n = u32::deserialize_reader(reader)?;
        if n > 255 {
            return Err(Error::new(ErrorKind::InvalidData, format!("{n} keys, at most 255")));
        }
        (0..n).map(|_| peg_key::deserialize(reader)).collect()
    }
}
/// A Bitcoin hash (`bitcoin::Txid`, `bitcoin::BlockHash`) as its 32 bytes in internal byte order.
pub mod btc_hash {
    use super::*;
    use bitcoin::hashes::Hash;

    /// Writes the 32 internal-order bytes.
    pub fn serialize<H: Hash<Bytes = [u8; 32]>, W: Write>(value: &H, writer: &mut W) -> Result<(), Error> {
        writer.write_all(value.as_byte_array())
    }

    /// Reads 32 bytes.
    pub fn deserialize<H: Hash<Bytes = [u8; 32]>, R: Read>(reader: &mut R) -> Result<H, Error> {
        <[u8; 32]>::deserialize_reader(reader).map(H::from_byte_array)
    }
}

/// `Vec` of Bitcoin hashes as borsh's `u32` length, then each as [`btc_hash`] encodes it (borsh's own
/// encoding of a `Vec<[u8; 32]>`).
pub mod btc_hashes {
    use super::*;
    use bitcoin::hashes::Hash;

    /// Writes the count, then each hash's 32 bytes.
    pub fn serialize<H: Hash<Bytes = [u8; 32]>, W: Write>(value: &[H], writer: &mut W) -> Result<(), Error> {
        let arrays: Vec<[u8; 32]> = value.iter().map(|h| h.to_byte_array()).collect();
        arrays.serialize(writer)
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<H: Hash<Bytes = [u8; 32]>, R: Read>(reader: &mut R) -> Result<Vec<H>, Error> {
        Vec::<[u8; 32]>::deserialize_reader(reader).map(|v| v.into_iter().map(H::from_byte_array).collect())
    }
}

/// A Bitcoin hash in the ledger's JSON (the genesis file's anchor, `BtcOutPoint`s): the hex of its 32
/// internal-order bytes, exactly as it was written while it was a `Hash32`, so genesis files written before
/// it had a type still read as the same chain. (The RPC shows Bitcoin's display order in its own types.)
/// Use with `#[serde(with = "...")]`.
pub mod btc_hash_json {
    use bitcoin::hashes::Hash;
    use primitives::Hash32;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the internal-order hex.
    pub fn serialize<H: Hash<Bytes = [u8; 32]>, S: Serializer>(value: &H, s: S) -> Result<S::Ok, S::Error> {
        Hash32(value.to_byte_array()).serialize(s)
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, H: Hash<Bytes = [u8; 32]>, D: Deserializer<'de>>(d: D) -> Result<H, D::Error> {
        Hash32::deserialize(d).map(|h| H::from_byte_array(h.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(BorshSerialize, BorshDeserialize, PartialEq, Debug)]
    struct Wrap(#[borsh(serialize_with = "amount::serialize", deserialize_with = "amount::deserialize")] Amount);

    #[test]
    fn amount_is_eight_bytes_le_sats() {
        let bytes = borsh::to_vec(&Wrap(Amount::from_sat(0x0102))).unwrap();
        assert_eq!(bytes, vec![2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(borsh::from_slice::<Wrap>(&bytes).unwrap(), Wrap(Amount::from_sat(0x0102)));
    }

    /// A typed Bitcoin hash is encoded exactly as the `[u8; 32]` (a `Hash32`) it replaced, so no signed or
    /// stored byte changed when it got its type.
    #[test]
    fn btc_hashes_encode_as_their_internal_bytes() {
        use bitcoin::hashes::Hash;
        #[derive(BorshSerialize, BorshDeserialize, PartialEq, Debug)]
        struct Hashes {
            #[borsh(serialize_with = "btc_hash::serialize", deserialize_with = "btc_hash::deserialize")]
            one: bitcoin::Txid,
            #[borsh(serialize_with = "btc_hashes::serialize", deserialize_with = "btc_hashes::deserialize")]
            many: Vec<bitcoin::BlockHash>,
        }
        let typed = Hashes {
            one: bitcoin::Txid::from_byte_array([1; 32]),
            many: vec![bitcoin::BlockHash::from_byte_array([2; 32]), bitcoin::BlockHash::from_byte_array([3; 32])],
        };
        let bytes = borsh::to_vec(&typed).unwrap();
        assert_eq!(bytes, borsh::to_vec(&([1u8; 32], vec![[2u8; 32], [3u8; 32]])).unwrap());
        assert_eq!(borsh::from_slice::<Hashes>(&bytes).unwrap(), typed);
    }

    #[test]
    fn peg_key_rejects_garbage() {
        let mut bytes = vec![0x02];
        bytes.extend([0xff; 32]);
        let r = peg_key::deserialize(&mut bytes.as_slice());
        assert!(r.is_err());
    }
}
