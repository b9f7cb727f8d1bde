//! EPMD requests and responses (`erts/doc/guides/erl_dist_protocol.md`, "EPMD Protocol";
//! the rules a real `epmd` applies are in `erts/epmd/src/epmd_srv.c`).
//!
//! Framing differs by direction, and the codecs follow it:
//! * every request is `Length:u16` + `Length` bytes; [`EpmdRequest::decode`] returns
//!   `Ok(None)` until a whole request is buffered and refuses a bad length as soon as the two
//!   length bytes are there, as `epmd` does;
//! * responses carry no length. [`Alive2Response`] has a fixed size and is decoded
//!   incrementally (the registration socket stays open after it). [`Port2Response`] and
//!   [`NamesResponse`] end when EPMD closes the connection, so their decoders take the complete
//!   bytes read up to EOF; a client reads at most [`MAX_PORT2_REPLY_LEN`] /
//!   [`MAX_NAMES_REPLY_LEN`] bytes before giving up.
//!
//! Request decoding mirrors `epmd_srv.c`. Every input `epmd` answers by closing the connection
//! without a reply is an [`EpmdWireError`]; the registrations `epmd` *answers* with
//! `Result = 1` (a name that is not UTF-8, longer than 255 characters or 1020 bytes, or an
//! extra field longer than 1020 bytes) are [`EpmdWireError::Alive2Refused`], which carries
//! what the server needs to send that answer.

use bytes::Bytes;
use smol_str::SmolStr;
use std::fmt;

/// The port EPMD listens on unless `ERL_EPMD_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 4369;
/// Largest request length `epmd` accepts (its input buffer is 3060 bytes, including the
/// two length bytes and a terminating NUL it adds).
pub const MAX_REQUEST_LEN: usize = 3057;
/// Longest node name (the part before `@`), in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest node name in bytes (`MAXSYMLEN`: 255 characters of up to 4 UTF-8 bytes).
pub const MAX_NAME_BYTES: usize = 1020;
/// Longest "extra" field of a registration, in bytes.
pub const MAX_EXTRA_LEN: usize = 1020;
/// Largest PORT2_RESP a real EPMD can send: header, name and extra at their limits.
pub const MAX_PORT2_REPLY_LEN: usize = 12 + MAX_NAME_BYTES + 2 + MAX_EXTRA_LEN;
/// Largest NAMES reply a client accepts (1 MiB, room for thousands of nodes).
pub const MAX_NAMES_REPLY_LEN: usize = 1 << 20;
/// The distribution protocol version beamlink speaks (OTP 23+ handshake).
pub const DIST_VERSION: u16 = 6;
/// The dummy creation `epmd` puts in a refused registration's answer.
pub const REFUSED_CREATION: u16 = 99;

/// Request and response codes (`erts/epmd/src/epmd.h`).
pub mod code {
    /// Register a node.
    pub const ALIVE2_REQ: u8 = b'x';
    /// Registration answer with a 16-bit creation (HighestVersion < 6).
    pub const ALIVE2_RESP: u8 = b'y';
    /// Registration answer with a 32-bit creation (HighestVersion >= 6).
    pub const ALIVE2_X_RESP: u8 = b'v';
    /// Look a node's port up.
    pub const PORT_PLEASE2_REQ: u8 = b'z';
    /// Answer to PORT_PLEASE2_REQ.
    pub const PORT2_RESP: u8 = b'w';
    /// List the registered names.
    pub const NAMES_REQ: u8 = b'n';
    /// List registered and remembered names with internal details.
    pub const DUMP_REQ: u8 = b'd';
    /// Ask EPMD to exit.
    pub const KILL_REQ: u8 = b'k';
    /// Ask EPMD to drop a registration.
    pub const STOP_REQ: u8 = b's';
}

/// Why a name or extra field cannot be used in a registration or lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldError {
    /// The name is empty.
    EmptyName,
    /// The name contains a NUL byte.
    NulInName,
    /// The name is not valid UTF-8.
    NameNotUtf8,
    /// The name has more than 255 characters.
    NameTooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// The name has more than 1020 bytes.
    NameTooManyBytes {
        /// Its length in bytes.
        bytes: usize,
    },
    /// The extra field has more than 1020 bytes.
    ExtraTooLong {
        /// Its length in bytes.
        bytes: usize,
    },
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::EmptyName => f.write_str("the node name is empty"),
            FieldError::NulInName => f.write_str("the node name contains a NUL byte"),
            FieldError::NameNotUtf8 => f.write_str("the node name is not valid UTF-8"),
            FieldError::NameTooLong { chars } => write!(
                f,
                "the node name has {chars} characters, more than {MAX_NAME_CHARS}"
            ),
            FieldError::NameTooManyBytes { bytes } => write!(
                f,
                "the node name has {bytes} bytes, more than {MAX_NAME_BYTES}"
            ),
            FieldError::ExtraTooLong { bytes } => write!(
                f,
                "the extra field has {bytes} bytes, more than {MAX_EXTRA_LEN}"
            ),
        }
    }
}

impl std::error::Error for FieldError {}

/// Which response a decoding error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseKind {
    /// ALIVE2_RESP / ALIVE2_X_RESP.
    Alive2,
    /// PORT2_RESP.
    Port2,
    /// The reply to NAMES_REQ.
    Names,
}

impl fmt::Display for ResponseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseKind::Alive2 => "ALIVE2 reply",
            ResponseKind::Port2 => "PORT2 reply",
            ResponseKind::Names => "NAMES reply",
        })
    }
}

/// Malformed EPMD bytes. Request errors are the inputs `epmd` closes the connection on,
/// except [`Alive2Refused`](EpmdWireError::Alive2Refused), which `epmd` answers with
/// `Result = 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpmdWireError {
    /// The request length is 0 or larger than [`MAX_REQUEST_LEN`].
    RequestLength {
        /// The announced length.
        length: u16,
    },
    /// More bytes arrived than the request's length announced (`epmd` closes).
    RequestOverrun {
        /// How many bytes follow the request.
        extra: usize,
    },
    /// The request code is not one EPMD knows.
    UnknownRequest {
        /// The code byte.
        code: u8,
    },
    /// An ALIVE2_REQ shorter than the 14 bytes a one-character name needs.
    Alive2TooShort {
        /// The request length.
        length: u16,
    },
    /// An ALIVE2_REQ whose name length runs past the request.
    Alive2NameOverrun {
        /// The announced name length.
        name_len: u16,
        /// The request length.
        length: u16,
    },
    /// An ALIVE2_REQ whose extra length runs past the request.
    Alive2ExtraOverrun {
        /// The announced name length.
        name_len: u16,
        /// The announced extra length.
        extra_len: u16,
        /// The request length.
        length: u16,
    },
    /// A NUL byte inside the name of an ALIVE2_REQ or PORT_PLEASE2_REQ.
    NulInName {
        /// The request code.
        request: u8,
    },
    /// A well-formed ALIVE2_REQ for a name or extra field EPMD refuses; `epmd` answers it
    /// with `Result = 1` in the response type `highest_version` selects.
    Alive2Refused {
        /// The request's HighestVersion (selects ALIVE2_RESP or ALIVE2_X_RESP).
        highest_version: u16,
        /// What is wrong.
        problem: FieldError,
    },
    /// A STOP_REQ with nothing after the code.
    StopWithoutName,
    /// A PORT_PLEASE2_REQ without a usable name.
    PortPleaseName {
        /// What is wrong.
        problem: FieldError,
    },
    /// A name or extra field given to a constructor.
    Field(FieldError),
    /// A response starts with the wrong code.
    UnexpectedCode {
        /// The response expected.
        response: ResponseKind,
        /// The code received.
        code: u8,
    },
    /// A response ended before its fields did.
    Truncated {
        /// The response.
        response: ResponseKind,
        /// Bytes received.
        len: usize,
    },
    /// Bytes follow a complete response.
    TrailingBytes {
        /// The response.
        response: ResponseKind,
        /// How many bytes follow it.
        extra: usize,
    },
    /// A response larger than a client accepts.
    TooLong {
        /// The response.
        response: ResponseKind,
        /// Bytes received.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A NAMES line that is not `name <n> at port <p>`.
    NamesLine {
        /// The line number, from 1.
        line: usize,
    },
    /// A name in a response that no EPMD would have registered.
    ResponseName {
        /// The response.
        response: ResponseKind,
        /// What is wrong.
        problem: FieldError,
    },
}

impl fmt::Display for EpmdWireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpmdWireError::RequestLength { length } => write!(
                f,
                "request length {length} (EPMD accepts 1..={MAX_REQUEST_LEN})"
            ),
            EpmdWireError::RequestOverrun { extra } => {
                write!(f, "{extra} bytes beyond the announced request length")
            }
            EpmdWireError::UnknownRequest { code } => write!(f, "unknown request code {code}"),
            EpmdWireError::Alive2TooShort { length } => write!(
                f,
                "ALIVE2 request of {length} bytes, shorter than the 14 a one-character name needs"
            ),
            EpmdWireError::Alive2NameOverrun { name_len, length } => write!(
                f,
                "ALIVE2 request announces a {name_len}-byte name in a {length}-byte request"
            ),
            EpmdWireError::Alive2ExtraOverrun {
                name_len,
                extra_len,
                length,
            } => write!(
                f,
                "ALIVE2 request announces a {name_len}-byte name and {extra_len} extra bytes \
                 in a {length}-byte request"
            ),
            EpmdWireError::NulInName { request } => {
                write!(f, "NUL byte in the node name of request {request}")
            }
            EpmdWireError::Alive2Refused { problem, .. } => {
                write!(f, "registration refused: {problem}")
            }
            EpmdWireError::StopWithoutName => f.write_str("STOP request without a name"),
            EpmdWireError::PortPleaseName { problem } => {
                write!(f, "PORT_PLEASE2 request refused: {problem}")
            }
            EpmdWireError::Field(problem) => problem.fmt(f),
            EpmdWireError::UnexpectedCode { response, code } => {
                write!(f, "{response} starts with code {code}")
            }
            EpmdWireError::Truncated { response, len } => {
                write!(f, "{response} cut short after {len} bytes")
            }
            EpmdWireError::TrailingBytes { response, extra } => {
                write!(f, "{extra} unexpected bytes after the {response}")
            }
            EpmdWireError::TooLong {
                response,
                len,
                limit,
            } => write!(
                f,
                "{response} of {len} bytes, more than the {limit} accepted"
            ),
            EpmdWireError::NamesLine { line } => write!(
                f,
                "NAMES reply line {line} is not `name <name> at port <port>`"
            ),
            EpmdWireError::ResponseName { response, problem } => {
                write!(f, "{response} names a node EPMD cannot hold: {problem}")
            }
        }
    }
}

impl std::error::Error for EpmdWireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EpmdWireError::Field(problem) => Some(problem),
            _ => None,
        }
    }
}

impl From<FieldError> for EpmdWireError {
    fn from(problem: FieldError) -> Self {
        EpmdWireError::Field(problem)
    }
}

/// A node name as EPMD stores it: the part before `@`, valid UTF-8, 1 to 255 characters,
/// at most 1020 bytes, no NUL.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AliveName(SmolStr);

impl AliveName {
    /// Checks `name` against EPMD's rules.
    pub fn new(name: &str) -> Result<AliveName, FieldError> {
        Self::check(name)?;
        Ok(AliveName(SmolStr::new(name)))
    }

    /// Checks raw bytes from the wire, in the order `epmd_srv.c` does.
    pub fn from_bytes(bytes: &[u8]) -> Result<AliveName, FieldError> {
        if bytes.contains(&0) {
            return Err(FieldError::NulInName);
        }
        if bytes.len() > MAX_NAME_BYTES {
            return Err(FieldError::NameTooManyBytes { bytes: bytes.len() });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| FieldError::NameNotUtf8)?;
        AliveName::new(text)
    }

    fn check(name: &str) -> Result<(), FieldError> {
        if name.is_empty() {
            return Err(FieldError::EmptyName);
        }
        if name.contains('\0') {
            return Err(FieldError::NulInName);
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(FieldError::NameTooManyBytes { bytes: name.len() });
        }
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            return Err(FieldError::NameTooLong { chars });
        }
        Ok(())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AliveName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AliveName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The opaque "extra" field of a registration, at most 1020 bytes. EPMD stores it and hands
/// it back in PORT2_RESP; BEAM nodes send it empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra(Bytes);

impl Extra {
    /// Checks the length.
    pub fn new(bytes: impl Into<Bytes>) -> Result<Extra, FieldError> {
        let bytes = bytes.into();
        if bytes.len() > MAX_EXTRA_LEN {
            return Err(FieldError::ExtraTooLong { bytes: bytes.len() });
        }
        Ok(Extra(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The NodeType byte. EPMD and the BEAM only store and echo it: whether a connection is
/// hidden is decided by the handshake flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    /// 77 (`M`), what every BEAM sends.
    Normal,
    /// 72 (`H`).
    Hidden,
    /// Anything else (erl_interface sends 104, `h`).
    Other(u8),
}

impl NodeType {
    /// From the wire byte.
    pub fn from_byte(byte: u8) -> NodeType {
        match byte {
            77 => NodeType::Normal,
            72 => NodeType::Hidden,
            other => NodeType::Other(other),
        }
    }

    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            NodeType::Normal => 77,
            NodeType::Hidden => 72,
            NodeType::Other(byte) => byte,
        }
    }
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

mod request;
mod response;

pub use request::{Alive2Request, EpmdRequest, PortPlease2Request, StopRequest};
pub use response::{
    Alive2Response, DumpEntry, NamesEntry, NamesResponse, NodeEntry, Port2Response, encode_dump,
};

#[cfg(test)]
mod tests;
