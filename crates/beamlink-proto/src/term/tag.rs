//! Tag bytes of the external term format (`erts/doc/guides/erl_ext_dist.md`), each the first
//! byte of an encoded term. Older tags are listed too: the decoder accepts what any BEAM
//! may still produce (`term_to_binary` output stored by an old release), the encoder only
//! writes the forms an OTP 25+ BEAM writes.

/// `RECORD_EXT` (OTP 29): a native record, `Arity:u32`, a flags byte (bit 0: exported),
/// the module and record name atoms, `Arity` field-name atoms, then `Arity` values. Bytes
/// captured from OTP 29.1's `term_to_binary/1`; only sent over distribution to a node that
/// offers `DFLAG_NATIVE_RECORDS`.
pub const RECORD_EXT: u8 = 67;
/// `NEW_FLOAT_EXT`: IEEE 754 double, big-endian.
pub const NEW_FLOAT_EXT: u8 = 70;
/// `BIT_BINARY_EXT`: a bitstring whose last byte is partly used.
pub const BIT_BINARY_EXT: u8 = 77;
/// Compressed term (zlib). Never allowed over distribution.
pub const COMPRESSED: u8 = 80;
/// `ATOM_CACHE_REF`: index into the distribution header's atom cache.
pub const ATOM_CACHE_REF: u8 = 82;
/// `NEW_PID_EXT`: pid with 32-bit creation.
pub const NEW_PID_EXT: u8 = 88;
/// `NEW_PORT_EXT`: port with 32-bit id and 32-bit creation.
pub const NEW_PORT_EXT: u8 = 89;
/// `NEWER_REFERENCE_EXT`: reference with 32-bit creation.
pub const NEWER_REFERENCE_EXT: u8 = 90;
/// `SMALL_INTEGER_EXT`: unsigned 8-bit integer.
pub const SMALL_INTEGER_EXT: u8 = 97;
/// `INTEGER_EXT`: signed 32-bit integer.
pub const INTEGER_EXT: u8 = 98;
/// `FLOAT_EXT`: float as 31 bytes of `%.20e` text (pre-R11B).
pub const FLOAT_EXT: u8 = 99;
/// `ATOM_EXT`: Latin-1 atom, 16-bit length.
pub const ATOM_EXT: u8 = 100;
/// `REFERENCE_EXT`: one-word reference with 8-bit creation.
pub const REFERENCE_EXT: u8 = 101;
/// `PORT_EXT`: port with 8-bit creation.
pub const PORT_EXT: u8 = 102;
/// `PID_EXT`: pid with 8-bit creation.
pub const PID_EXT: u8 = 103;
/// `SMALL_TUPLE_EXT`: tuple, 8-bit arity.
pub const SMALL_TUPLE_EXT: u8 = 104;
/// `LARGE_TUPLE_EXT`: tuple, 32-bit arity.
pub const LARGE_TUPLE_EXT: u8 = 105;
/// `NIL_EXT`: `[]`.
pub const NIL_EXT: u8 = 106;
/// `STRING_EXT`: list of integers 0..=255, 16-bit length.
pub const STRING_EXT: u8 = 107;
/// `LIST_EXT`: list with 32-bit length, elements, then a tail.
pub const LIST_EXT: u8 = 108;
/// `BINARY_EXT`: binary, 32-bit length.
pub const BINARY_EXT: u8 = 109;
/// `SMALL_BIG_EXT`: integer, 8-bit digit count.
pub const SMALL_BIG_EXT: u8 = 110;
/// `LARGE_BIG_EXT`: integer, 32-bit digit count.
pub const LARGE_BIG_EXT: u8 = 111;
/// `NEW_FUN_EXT`: local fun.
pub const NEW_FUN_EXT: u8 = 112;
/// `EXPORT_EXT`: `fun M:F/A`.
pub const EXPORT_EXT: u8 = 113;
/// `NEW_REFERENCE_EXT`: reference with 8-bit creation.
pub const NEW_REFERENCE_EXT: u8 = 114;
/// `SMALL_ATOM_EXT`: Latin-1 atom, 8-bit length.
pub const SMALL_ATOM_EXT: u8 = 115;
/// `MAP_EXT`: map, 32-bit pair count.
pub const MAP_EXT: u8 = 116;
/// `ATOM_UTF8_EXT`: UTF-8 atom, 16-bit length.
pub const ATOM_UTF8_EXT: u8 = 118;
/// `SMALL_ATOM_UTF8_EXT`: UTF-8 atom, 8-bit length.
pub const SMALL_ATOM_UTF8_EXT: u8 = 119;
/// `V4_PORT_EXT`: port with 64-bit id.
pub const V4_PORT_EXT: u8 = 120;
/// `LOCAL_EXT`: node-local encoding (`term_to_binary(T, [local])`). Never allowed over
/// distribution.
pub const LOCAL_EXT: u8 = 121;
