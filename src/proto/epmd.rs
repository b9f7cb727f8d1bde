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

use bytes::{Buf, BufMut, Bytes, BytesMut};
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

/// Which response a decoding error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl std::error::Error for EpmdWireError {}

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

/// ALIVE2_REQ: register a node name and its distribution port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alive2Request {
    /// The TCP port the node accepts distribution connections on.
    pub port: u16,
    /// Informational node type.
    pub node_type: NodeType,
    /// 0 = TCP (the BEAM sends 0 for IPv6 too).
    pub protocol: u8,
    /// Highest distribution version; 6 or more selects ALIVE2_X_RESP (32-bit creation).
    pub highest_version: u16,
    /// Lowest distribution version.
    pub lowest_version: u16,
    /// The name before `@`.
    pub name: AliveName,
    /// Opaque bytes echoed in PORT2_RESP.
    pub extra: Extra,
}

impl Alive2Request {
    /// The registration beamlink sends: hidden type, TCP, versions 6..6, no extra.
    pub fn new(name: AliveName, port: u16) -> Alive2Request {
        Alive2Request {
            port,
            node_type: NodeType::Hidden,
            protocol: 0,
            highest_version: DIST_VERSION,
            lowest_version: DIST_VERSION,
            name,
            extra: Extra::default(),
        }
    }

    fn body_len(&self) -> usize {
        13 + self.name.as_str().len() + self.extra.as_bytes().len()
    }
}

/// PORT_PLEASE2_REQ: ask for a node's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlease2Request {
    /// The name before `@`.
    pub name: AliveName,
    /// Whether the request ended with a NUL (old clients send one; `epmd` ignores it).
    pub nul_terminated: bool,
}

/// A request to EPMD.
///
/// Decoding is as lenient as `epmd`: bytes after the fields of ALIVE2_REQ, NAMES_REQ,
/// DUMP_REQ and KILL_REQ are ignored, and STOP_REQ's body is not kept (beamlink never
/// honours it). Such requests decode, but re-encode without the ignored bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpmdRequest {
    /// Register.
    Alive2(Alive2Request),
    /// Look a port up.
    PortPlease2(PortPlease2Request),
    /// List names.
    Names,
    /// List names with details.
    Dump,
    /// Ask EPMD to exit.
    Kill,
    /// Ask EPMD to drop a registration.
    Stop,
}

impl EpmdRequest {
    /// The request code.
    pub fn code(&self) -> u8 {
        match self {
            EpmdRequest::Alive2(_) => code::ALIVE2_REQ,
            EpmdRequest::PortPlease2(_) => code::PORT_PLEASE2_REQ,
            EpmdRequest::Names => code::NAMES_REQ,
            EpmdRequest::Dump => code::DUMP_REQ,
            EpmdRequest::Kill => code::KILL_REQ,
            EpmdRequest::Stop => code::STOP_REQ,
        }
    }

    /// Appends the length-prefixed request to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            EpmdRequest::Alive2(req) => {
                let name = req.name.as_str().as_bytes();
                let extra = req.extra.as_bytes();
                dst.reserve(2 + req.body_len());
                // Name <= 1020 and extra <= 1020 bytes, so the length fits the field.
                dst.put_u16(req.body_len() as u16);
                dst.put_u8(code::ALIVE2_REQ);
                dst.put_u16(req.port);
                dst.put_u8(req.node_type.to_byte());
                dst.put_u8(req.protocol);
                dst.put_u16(req.highest_version);
                dst.put_u16(req.lowest_version);
                dst.put_u16(name.len() as u16);
                dst.put_slice(name);
                dst.put_u16(extra.len() as u16);
                dst.put_slice(extra);
            }
            EpmdRequest::PortPlease2(req) => {
                let name = req.name.as_str().as_bytes();
                let len = 1 + name.len() + usize::from(req.nul_terminated);
                dst.reserve(2 + len);
                dst.put_u16(len as u16);
                dst.put_u8(code::PORT_PLEASE2_REQ);
                dst.put_slice(name);
                if req.nul_terminated {
                    dst.put_u8(0);
                }
            }
            EpmdRequest::Names | EpmdRequest::Dump | EpmdRequest::Kill | EpmdRequest::Stop => {
                dst.put_u16(1);
                dst.put_u8(self.code());
            }
        }
    }

    /// Takes one request off the front of `src`. `Ok(None)` (nothing consumed) until the
    /// whole request is there; a bad length is refused as soon as the two length bytes are.
    /// Bytes after the request stay in `src` (`epmd` closes a connection that sent more than
    /// one request; that is the caller's decision).
    pub fn decode(src: &mut BytesMut) -> Result<Option<EpmdRequest>, EpmdWireError> {
        if src.len() < 2 {
            return Ok(None);
        }
        let length = u16::from_be_bytes([src[0], src[1]]);
        if length == 0 || usize::from(length) > MAX_REQUEST_LEN {
            return Err(EpmdWireError::RequestLength { length });
        }
        let total = 2 + usize::from(length);
        if src.len() < total {
            return Ok(None);
        }
        let request = parse_request(&src[2..total], length)?;
        src.advance(total);
        Ok(Some(request))
    }
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn parse_request(body: &[u8], length: u16) -> Result<EpmdRequest, EpmdWireError> {
    match body[0] {
        code::ALIVE2_REQ => parse_alive2(body, length).map(EpmdRequest::Alive2),
        code::PORT_PLEASE2_REQ => parse_port_please2(body).map(EpmdRequest::PortPlease2),
        code::NAMES_REQ => Ok(EpmdRequest::Names),
        code::DUMP_REQ => Ok(EpmdRequest::Dump),
        code::KILL_REQ => Ok(EpmdRequest::Kill),
        code::STOP_REQ => Ok(EpmdRequest::Stop),
        code => Err(EpmdWireError::UnknownRequest { code }),
    }
}

fn parse_alive2(body: &[u8], length: u16) -> Result<Alive2Request, EpmdWireError> {
    let len = body.len();
    if len <= 13 {
        return Err(EpmdWireError::Alive2TooShort { length });
    }
    let name_len = be16(body, 9);
    if usize::from(name_len) + 13 > len {
        return Err(EpmdWireError::Alive2NameOverrun { name_len, length });
    }
    let name_end = 11 + usize::from(name_len);
    let extra_len = be16(body, name_end);
    if usize::from(extra_len) + usize::from(name_len) + 13 > len {
        return Err(EpmdWireError::Alive2ExtraOverrun {
            name_len,
            extra_len,
            length,
        });
    }
    let name_bytes = &body[11..name_end];
    if name_bytes.contains(&0) {
        return Err(EpmdWireError::NulInName {
            request: code::ALIVE2_REQ,
        });
    }
    let highest_version = be16(body, 5);
    let refused = |problem| EpmdWireError::Alive2Refused {
        highest_version,
        problem,
    };
    let name = AliveName::from_bytes(name_bytes).map_err(refused)?;
    let extra_start = name_end + 2;
    let extra = Extra::new(Bytes::copy_from_slice(
        &body[extra_start..extra_start + usize::from(extra_len)],
    ))
    .map_err(refused)?;
    Ok(Alive2Request {
        port: be16(body, 1),
        node_type: NodeType::from_byte(body[3]),
        protocol: body[4],
        highest_version,
        lowest_version: be16(body, 7),
        name,
        extra,
    })
}

fn parse_port_please2(body: &[u8]) -> Result<PortPlease2Request, EpmdWireError> {
    let mut name = &body[1..];
    let nul_terminated = name.last() == Some(&0);
    if nul_terminated {
        name = &name[..name.len() - 1];
    }
    if name.contains(&0) {
        return Err(EpmdWireError::NulInName {
            request: code::PORT_PLEASE2_REQ,
        });
    }
    let name =
        AliveName::from_bytes(name).map_err(|problem| EpmdWireError::PortPleaseName { problem })?;
    Ok(PortPlease2Request {
        name,
        nul_terminated,
    })
}

/// The answer to ALIVE2_REQ. The registration socket stays open after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alive2Response {
    /// ALIVE2_X_RESP (118), for requests with HighestVersion >= 6.
    Extended {
        /// 0 = registered; anything else = refused.
        result: u8,
        /// The creation.
        creation: u32,
    },
    /// ALIVE2_RESP (121), for older requests.
    Short {
        /// 0 = registered; anything else = refused.
        result: u8,
        /// The creation (1..3 from `epmd`).
        creation: u16,
    },
}

impl Alive2Response {
    /// A successful answer in the form `highest_version` selects. A short answer carries the
    /// low 16 bits of `creation`.
    pub fn accepted(highest_version: u16, creation: u32) -> Alive2Response {
        Self::with_result(highest_version, 0, creation)
    }

    /// A refusal (`Result = 1`, creation 99), as `epmd` sends for a duplicate or bad name.
    pub fn refused(highest_version: u16) -> Alive2Response {
        Self::with_result(highest_version, 1, u32::from(REFUSED_CREATION))
    }

    fn with_result(highest_version: u16, result: u8, creation: u32) -> Alive2Response {
        if highest_version >= 6 {
            Alive2Response::Extended { result, creation }
        } else {
            Alive2Response::Short {
                result,
                creation: creation as u16,
            }
        }
    }

    /// The result byte.
    pub fn result(&self) -> u8 {
        match *self {
            Alive2Response::Extended { result, .. } | Alive2Response::Short { result, .. } => {
                result
            }
        }
    }

    /// The creation, widened to 32 bits.
    pub fn creation(&self) -> u32 {
        match *self {
            Alive2Response::Extended { creation, .. } => creation,
            Alive2Response::Short { creation, .. } => u32::from(creation),
        }
    }

    /// Appends the answer to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        match *self {
            Alive2Response::Extended { result, creation } => {
                dst.put_u8(code::ALIVE2_X_RESP);
                dst.put_u8(result);
                dst.put_u32(creation);
            }
            Alive2Response::Short { result, creation } => {
                dst.put_u8(code::ALIVE2_RESP);
                dst.put_u8(result);
                dst.put_u16(creation);
            }
        }
    }

    /// Takes the answer off the front of `src`; `Ok(None)` until it is complete.
    pub fn decode(src: &mut BytesMut) -> Result<Option<Alive2Response>, EpmdWireError> {
        let Some(&first) = src.first() else {
            return Ok(None);
        };
        let need = match first {
            code::ALIVE2_X_RESP => 6,
            code::ALIVE2_RESP => 4,
            code => {
                return Err(EpmdWireError::UnexpectedCode {
                    response: ResponseKind::Alive2,
                    code,
                });
            }
        };
        if src.len() < need {
            return Ok(None);
        }
        let result = src[1];
        let response = if first == code::ALIVE2_X_RESP {
            Alive2Response::Extended {
                result,
                creation: u32::from_be_bytes([src[2], src[3], src[4], src[5]]),
            }
        } else {
            Alive2Response::Short {
                result,
                creation: be16(src, 2),
            }
        };
        src.advance(need);
        Ok(Some(response))
    }
}

/// What EPMD knows about a registered node, as PORT2_RESP carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// Distribution port.
    pub port: u16,
    /// Node type byte.
    pub node_type: NodeType,
    /// Protocol byte.
    pub protocol: u8,
    /// Highest distribution version.
    pub highest_version: u16,
    /// Lowest distribution version.
    pub lowest_version: u16,
    /// The name before `@`.
    pub name: AliveName,
    /// The registration's extra bytes.
    pub extra: Extra,
}

impl From<&Alive2Request> for NodeEntry {
    fn from(req: &Alive2Request) -> NodeEntry {
        NodeEntry {
            port: req.port,
            node_type: req.node_type,
            protocol: req.protocol,
            highest_version: req.highest_version,
            lowest_version: req.lowest_version,
            name: req.name.clone(),
            extra: req.extra.clone(),
        }
    }
}

/// The answer to PORT_PLEASE2_REQ; EPMD closes the connection after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Port2Response {
    /// The node is registered.
    Found(NodeEntry),
    /// It is not (`epmd` sends result 1).
    NotFound {
        /// The non-zero result byte.
        result: u8,
    },
}

impl Port2Response {
    /// Appends the answer to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(code::PORT2_RESP);
        match self {
            Port2Response::NotFound { result } => dst.put_u8(*result),
            Port2Response::Found(node) => {
                let name = node.name.as_str().as_bytes();
                let extra = node.extra.as_bytes();
                dst.reserve(13 + name.len() + extra.len());
                dst.put_u8(0);
                dst.put_u16(node.port);
                dst.put_u8(node.node_type.to_byte());
                dst.put_u8(node.protocol);
                dst.put_u16(node.highest_version);
                dst.put_u16(node.lowest_version);
                dst.put_u16(name.len() as u16);
                dst.put_slice(name);
                dst.put_u16(extra.len() as u16);
                dst.put_slice(extra);
            }
        }
    }

    /// Decodes the complete answer (everything read up to EOF).
    pub fn decode(bytes: &[u8]) -> Result<Port2Response, EpmdWireError> {
        const KIND: ResponseKind = ResponseKind::Port2;
        let truncated = EpmdWireError::Truncated {
            response: KIND,
            len: bytes.len(),
        };
        if bytes.len() > MAX_PORT2_REPLY_LEN {
            return Err(EpmdWireError::TooLong {
                response: KIND,
                len: bytes.len(),
                limit: MAX_PORT2_REPLY_LEN,
            });
        }
        match bytes.first() {
            None => return Err(truncated),
            Some(&code::PORT2_RESP) => {}
            Some(&code) => {
                return Err(EpmdWireError::UnexpectedCode {
                    response: KIND,
                    code,
                });
            }
        }
        let Some(&result) = bytes.get(1) else {
            return Err(truncated);
        };
        let trailing = |used: usize| {
            if bytes.len() > used {
                Err(EpmdWireError::TrailingBytes {
                    response: KIND,
                    extra: bytes.len() - used,
                })
            } else {
                Ok(())
            }
        };
        if result != 0 {
            trailing(2)?;
            return Ok(Port2Response::NotFound { result });
        }
        if bytes.len() < 12 {
            return Err(truncated);
        }
        let name_end = 12 + usize::from(be16(bytes, 10));
        if bytes.len() < name_end + 2 {
            return Err(truncated);
        }
        let extra_end = name_end + 2 + usize::from(be16(bytes, name_end));
        if bytes.len() < extra_end {
            return Err(truncated);
        }
        trailing(extra_end)?;
        let field = |problem| EpmdWireError::ResponseName {
            response: KIND,
            problem,
        };
        Ok(Port2Response::Found(NodeEntry {
            port: be16(bytes, 2),
            node_type: NodeType::from_byte(bytes[4]),
            protocol: bytes[5],
            highest_version: be16(bytes, 6),
            lowest_version: be16(bytes, 8),
            name: AliveName::from_bytes(&bytes[12..name_end]).map_err(field)?,
            extra: Extra::new(Bytes::copy_from_slice(&bytes[name_end + 2..extra_end]))
                .map_err(field)?,
        }))
    }
}

/// One `name <n> at port <p>` line of a NAMES reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamesEntry {
    /// The name before `@`.
    pub name: AliveName,
    /// Its distribution port.
    pub port: u16,
}

impl fmt::Display for NamesEntry {
    /// The line as `epmd` writes it, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "name {} at port {}", self.name, self.port)
    }
}

/// The reply to NAMES_REQ: EPMD's own port, then one line per registered node; EPMD closes
/// the connection after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamesResponse {
    /// The port EPMD says it listens on (`net_adm:names` rejects a reply whose port differs
    /// from the one it dialled).
    pub epmd_port: u32,
    /// The nodes, in EPMD's order (most recently registered first).
    pub nodes: Vec<NamesEntry>,
}

impl NamesResponse {
    /// Appends the reply to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u32(self.epmd_port);
        for node in &self.nodes {
            dst.put_slice(node.to_string().as_bytes());
            dst.put_u8(b'\n');
        }
    }

    /// Decodes the complete reply (everything read up to EOF), at most
    /// [`MAX_NAMES_REPLY_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<NamesResponse, EpmdWireError> {
        const KIND: ResponseKind = ResponseKind::Names;
        if bytes.len() > MAX_NAMES_REPLY_LEN {
            return Err(EpmdWireError::TooLong {
                response: KIND,
                len: bytes.len(),
                limit: MAX_NAMES_REPLY_LEN,
            });
        }
        if bytes.len() < 4 {
            return Err(EpmdWireError::Truncated {
                response: KIND,
                len: bytes.len(),
            });
        }
        let epmd_port = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let mut text = &bytes[4..];
        let mut nodes = Vec::new();
        let mut line_no = 0;
        while !text.is_empty() {
            line_no += 1;
            let Some(end) = text.iter().position(|&b| b == b'\n') else {
                return Err(EpmdWireError::Truncated {
                    response: KIND,
                    len: bytes.len(),
                });
            };
            nodes.push(parse_names_line(&text[..end], line_no)?);
            text = &text[end + 1..];
        }
        Ok(NamesResponse { epmd_port, nodes })
    }
}

fn parse_names_line(line: &[u8], line_no: usize) -> Result<NamesEntry, EpmdWireError> {
    let bad = EpmdWireError::NamesLine { line: line_no };
    let rest = line.strip_prefix(b"name ").ok_or(bad.clone())?;
    // The name may itself contain " at port ", so split at the last one.
    const SEP: &[u8] = b" at port ";
    let split = rest
        .windows(SEP.len())
        .rposition(|w| w == SEP)
        .ok_or(bad.clone())?;
    let digits = &rest[split + SEP.len()..];
    let canonical = !digits.is_empty()
        && digits.len() <= 5
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1);
    if !canonical {
        return Err(bad);
    }
    let port = digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 10 + u32::from(d - b'0')))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(bad)?;
    let name =
        AliveName::from_bytes(&rest[..split]).map_err(|problem| EpmdWireError::ResponseName {
            response: ResponseKind::Names,
            problem,
        })?;
    Ok(NamesEntry { name, port })
}

/// A registered node in a DUMP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpEntry {
    /// The name.
    pub name: AliveName,
    /// Its port.
    pub port: u16,
    /// What `epmd` prints as the file descriptor; an embedded server prints a connection id.
    pub fd: u64,
}

/// Appends the reply to DUMP_REQ as `epmd` writes it: the port, then one NUL-terminated
/// text line per active and per remembered (unregistered) name.
pub fn encode_dump(epmd_port: u32, active: &[DumpEntry], old: &[DumpEntry], dst: &mut BytesMut) {
    dst.put_u32(epmd_port);
    for node in active {
        let line = format!(
            "active name     <{}> at port {}, fd = {}\n",
            node.name, node.port, node.fd
        );
        dst.put_slice(line.as_bytes());
        dst.put_u8(0);
    }
    for node in old {
        let line = format!(
            "old/unused name <{}>, port = {}, fd = {} \n",
            node.name, node.port, node.fd
        );
        dst.put_slice(line.as_bytes());
        dst.put_u8(0);
    }
}

#[cfg(test)]
mod tests;
