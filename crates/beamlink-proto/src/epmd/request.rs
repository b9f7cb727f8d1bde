//! EPMD requests: `Length:u16` + body, decoded as `epmd_srv.c` checks them.

use super::{AliveName, DIST_VERSION, EpmdWireError, Extra, MAX_REQUEST_LEN, NodeType, be16, code};
use bytes::{Buf, BufMut, Bytes, BytesMut};

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

/// STOP_REQ: ask EPMD to drop a registration (`epmd -stop NAME`; honoured only by an EPMD
/// started with `-relaxed_command_check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopRequest {
    /// Every byte after the request code, as sent (`epmd -stop` sends the name without a
    /// NUL). Not checked: `epmd` only compares it with the registered names.
    pub body: Bytes,
}

impl StopRequest {
    /// The name `epmd_srv.c` looks up: the body up to its first NUL, as `node_unreg`
    /// compares it as a C string. May be empty (then it matches no registration).
    pub fn name(&self) -> &[u8] {
        let end = self
            .body
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.body.len());
        &self.body[..end]
    }
}

/// A request to EPMD.
///
/// Decoding is as lenient as `epmd`: bytes after the fields of ALIVE2_REQ, NAMES_REQ,
/// DUMP_REQ and KILL_REQ are ignored. Such requests decode, but re-encode without the
/// ignored bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    Stop(StopRequest),
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
            EpmdRequest::Stop(_) => code::STOP_REQ,
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
            EpmdRequest::Stop(req) => {
                // At most MAX_REQUEST_LEN - 1 bytes when decoded; a longer body built by hand
                // is the caller's mistake, and epmd would close the connection on it.
                dst.reserve(3 + req.body.len());
                dst.put_u16((1 + req.body.len()) as u16);
                dst.put_u8(code::STOP_REQ);
                dst.put_slice(&req.body);
            }
            EpmdRequest::Names | EpmdRequest::Dump | EpmdRequest::Kill => {
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

fn parse_request(body: &[u8], length: u16) -> Result<EpmdRequest, EpmdWireError> {
    match body[0] {
        code::ALIVE2_REQ => parse_alive2(body, length).map(EpmdRequest::Alive2),
        code::PORT_PLEASE2_REQ => parse_port_please2(body).map(EpmdRequest::PortPlease2),
        code::NAMES_REQ => Ok(EpmdRequest::Names),
        code::DUMP_REQ => Ok(EpmdRequest::Dump),
        code::KILL_REQ => Ok(EpmdRequest::Kill),
        // `epmd_srv.c` (`do_request`) ignores a STOP_REQ without a name, relaxed or not.
        code::STOP_REQ if body.len() <= 1 => Err(EpmdWireError::StopWithoutName),
        code::STOP_REQ => Ok(EpmdRequest::Stop(StopRequest {
            body: Bytes::copy_from_slice(&body[1..]),
        })),
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
