//! EPMD responses: ALIVE2 (fixed size, incremental), PORT2 and NAMES (framed by EOF: their
//! decoders take the complete bytes), and DUMP (encoded only).

use super::request::Alive2Request;
use super::{
    AliveName, EpmdWireError, Extra, MAX_NAMES_REPLY_LEN, MAX_PORT2_REPLY_LEN, NodeType,
    REFUSED_CREATION, ResponseKind, be16, code,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

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
