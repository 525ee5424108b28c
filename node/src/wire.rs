//! The seed-to-seed wire format: one JSON object per UDP datagram (whitepaper "Seed-to-Seed
//! Communication", PROFILE §1).
//!
//! ```json
//! {"type": "FIND_NODE", "params": {"key": "…", "address": "127.0.0.1", "port": 4000,
//!   "nodeID": "caf8d9b85e7fa9a124cb44cb28ad5289faa44668", "rpcID": "…"}}
//! ```
//!
//! [`decode`] is strict: it turns a datagram into a typed [`Message`] or a [`WireError`] that
//! names the PROFILE rule the datagram breaks. A node drops every datagram that fails to decode,
//! with no reply (P-W6). [`encode`] writes the canonical form: keys in a fixed order, lowercase
//! hex, canonical IP text, exactly one of `rpcID`/`referenceID`.
//!
//! Readings of the PROFILE made here, where it leaves room:
//! - `STORE` with `timestamp` or `publisher` *absent* decodes (with `None`), because P-V3 says
//!   such a STORE is *refused* (`success: false`) rather than dropped. Present but mistyped
//!   (`"timestamp": "soon"`, `"publisher": "XYZ"`) is a mistyped param and is dropped (P-W6).
//! - `STORE`'s `value` is any JSON string at this layer: P-V3 refuses a bad value with
//!   `success: false`, which only the store can answer (see [`crate::value`]).
//! - A request (PING, STORE, FIND_NODE, FIND_VALUE) that carries a `referenceID` breaks P-W2's
//!   "exactly one of"; a reply may carry an extra `rpcID`, which is ignored (P-W2 leniency, the
//!   JavaScript kad sends both).
//! - Contacts in a reply: more than [`MAX_CONTACTS_ACCEPTED`] are cut to that many (P-W8); a
//!   contact that is malformed, repeated, or whose `nodeID` is not the SHA-1 of its
//!   `address:port` is skipped (it could not be reached under that identifier anyway); how many
//!   were skipped is kept in [`Message::skipped_contacts`] for the node's counters.

use std::net::{IpAddr, SocketAddr};

use serde_json::{Map, Value};

use crate::id::{Key, NodeId, canonical_ip};

/// Largest datagram a receiver must accept (P-W1): the IPv4 UDP payload limit.
pub const MAX_DATAGRAM: usize = 65_507;

/// Most contacts taken from one reply (P-W8): peers speaking kad's K-wide replies send up to
/// 20; anything past that is cut.
pub const MAX_CONTACTS_ACCEPTED: usize = 20;

/// Longest `rpcID` / `referenceID` accepted (P-W4).
pub const MAX_RPC_ID_LEN: usize = 128;

/// The eight message types of the whitepaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// Liveness check.
    Ping,
    /// Answer to PING.
    Pong,
    /// Store a value at a key.
    Store,
    /// Answer to STORE.
    StoreReply,
    /// Ask for the closest contacts to a key.
    FindNode,
    /// Answer to FIND_NODE.
    FindNodeReply,
    /// Ask for a value, or the closest contacts to its key.
    FindValue,
    /// Answer to FIND_VALUE.
    FindValueReply,
}

impl MessageType {
    /// Every type, requests and replies.
    pub const ALL: [MessageType; 8] = [
        MessageType::Ping,
        MessageType::Pong,
        MessageType::Store,
        MessageType::StoreReply,
        MessageType::FindNode,
        MessageType::FindNodeReply,
        MessageType::FindValue,
        MessageType::FindValueReply,
    ];

    /// The wire name (`"FIND_NODE"`).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Ping => "PING",
            MessageType::Pong => "PONG",
            MessageType::Store => "STORE",
            MessageType::StoreReply => "STORE_REPLY",
            MessageType::FindNode => "FIND_NODE",
            MessageType::FindNodeReply => "FIND_NODE_REPLY",
            MessageType::FindValue => "FIND_VALUE",
            MessageType::FindValueReply => "FIND_VALUE_REPLY",
        }
    }

    /// Parses a wire name; names are case-sensitive.
    pub fn parse(name: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// True for PING, STORE, FIND_NODE and FIND_VALUE (they carry `rpcID`, P-W2).
    pub fn is_request(self) -> bool {
        matches!(
            self,
            MessageType::Ping | MessageType::Store | MessageType::FindNode | MessageType::FindValue
        )
    }

    /// The reply type that answers this request type.
    pub fn reply_type(self) -> Option<MessageType> {
        match self {
            MessageType::Ping => Some(MessageType::Pong),
            MessageType::Store => Some(MessageType::StoreReply),
            MessageType::FindNode => Some(MessageType::FindNodeReply),
            MessageType::FindValue => Some(MessageType::FindValueReply),
            _ => None,
        }
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A peer as named on the wire: `address`, `port`, and `nodeID` = SHA-1(`address:port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Contact {
    /// The peer's IP address.
    pub address: IpAddr,
    /// The peer's UDP port (1–65535).
    pub port: u16,
    /// The peer's identifier.
    pub node_id: NodeId,
}

impl Contact {
    /// The contact for a socket address, with its identifier derived by P-W3.
    pub fn from_addr(addr: SocketAddr) -> Contact {
        let address = canonical_ip(addr.ip());
        Contact {
            address,
            port: addr.port(),
            node_id: NodeId::from_addr(SocketAddr::new(address, addr.port())),
        }
    }

    /// `address:port` as a socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

/// The result half of a FIND_VALUE_REPLY (P-W9: value *or* contacts, never both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindValueResult {
    /// The value, as hex text (P-V1).
    Value(String),
    /// The closest contacts the replier knows.
    Contacts(Vec<Contact>),
}

/// The type-specific part of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// PING: no params.
    Ping,
    /// PONG: no params.
    Pong,
    /// STORE: `key`, `value`, `timestamp`, `publisher` (the last two may be absent on the wire,
    /// in which case the STORE is refused, P-V3).
    Store {
        /// SHA-1 of `value` (P-V2).
        key: Key,
        /// Hex of an armored OpenPGP message (P-V1); validated by the store, not here.
        value: String,
        /// Milliseconds since the epoch (P-W5).
        timestamp: Option<u64>,
        /// Node ID of the original publisher.
        publisher: Option<NodeId>,
    },
    /// STORE_REPLY: `success`.
    StoreReply {
        /// Whether the value was stored.
        success: bool,
    },
    /// FIND_NODE: `key`.
    FindNode {
        /// The identifier looked up.
        key: Key,
    },
    /// FIND_NODE_REPLY: `contacts`.
    FindNodeReply {
        /// Closest known contacts, closest first.
        contacts: Vec<Contact>,
    },
    /// FIND_VALUE: `key`.
    FindValue {
        /// The key looked up.
        key: Key,
    },
    /// FIND_VALUE_REPLY: `value` or `contacts`.
    FindValueReply(FindValueResult),
}

impl Body {
    /// The message type of this body.
    pub fn message_type(&self) -> MessageType {
        match self {
            Body::Ping => MessageType::Ping,
            Body::Pong => MessageType::Pong,
            Body::Store { .. } => MessageType::Store,
            Body::StoreReply { .. } => MessageType::StoreReply,
            Body::FindNode { .. } => MessageType::FindNode,
            Body::FindNodeReply { .. } => MessageType::FindNodeReply,
            Body::FindValue { .. } => MessageType::FindValue,
            Body::FindValueReply(_) => MessageType::FindValueReply,
        }
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who claims to send it (`address`, `port`, `nodeID`); P-W3 already checked.
    pub sender: Contact,
    /// For requests the `rpcID`; for replies the `referenceID` (the request's `rpcID`).
    pub rpc_id: String,
    /// The type-specific params.
    pub body: Body,
    /// Contacts of a reply that were skipped as malformed or cut past
    /// [`MAX_CONTACTS_ACCEPTED`] (0 when encoding or for other types).
    pub skipped_contacts: usize,
}

impl Message {
    /// A message with no skipped contacts.
    pub fn new(sender: Contact, rpc_id: impl Into<String>, body: Body) -> Message {
        Message {
            sender,
            rpc_id: rpc_id.into(),
            body,
            skipped_contacts: 0,
        }
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.body.message_type()
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        self.message_type().is_request()
    }
}

/// Why a datagram is not a valid message. Every variant names the PROFILE rule it breaks
/// ([`WireError::rule`]); the node drops the datagram with no reply (P-W6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Larger than [`MAX_DATAGRAM`].
    #[error("datagram of {0} bytes exceeds {MAX_DATAGRAM} (P-W1)")]
    Oversize(usize),
    /// Not UTF-8.
    #[error("datagram is not UTF-8 (P-W1)")]
    NotUtf8,
    /// Not JSON.
    #[error("datagram is not JSON: {0} (P-W6)")]
    NotJson(String),
    /// JSON but not an object, or `params` not an object.
    #[error("{0} is not a JSON object (P-W1)")]
    NotObject(&'static str),
    /// `type` missing or not a string.
    #[error("missing or non-string `type` (P-W6)")]
    MissingType,
    /// `type` is not one of the eight.
    #[error("unknown message type {0:?} (P-W6)")]
    UnknownType(String),
    /// A required param is absent.
    #[error("missing required param `{0}` ({rule})", rule = missing_rule(.0))]
    MissingParam(&'static str),
    /// A param has the wrong JSON type.
    #[error("param `{0}` has the wrong type (P-W6)")]
    WrongType(&'static str),
    /// `address` is not an IPv4 or IPv6 address text.
    #[error("`address` is not an IP address (P-W2)")]
    BadAddress,
    /// `port` is not an integer in 1–65535.
    #[error("`port` is not an integer in 1-65535 (P-W2)")]
    BadPort,
    /// A hex param is not lowercase hex of the right length.
    #[error("param `{0}` is not 40 lowercase hex characters (P-W4)")]
    BadHex(&'static str),
    /// `nodeID` is not SHA-1(`address:port`).
    #[error("`nodeID` is not sha1(address:port) (P-W3)")]
    NodeIdMismatch,
    /// `rpcID` / `referenceID` empty, too long or not printable ASCII.
    #[error("`{0}` must be 1-128 printable ASCII characters (P-W4)")]
    BadRpcId(&'static str),
    /// A request with a `referenceID`, or a reply without one.
    #[error("{0} (P-W2)")]
    RpcIdRole(&'static str),
    /// `timestamp` present but not a non-negative integer.
    #[error("`timestamp` is not an integer count of milliseconds (P-W5)")]
    BadTimestamp,
    /// FIND_VALUE_REPLY with both `value` and `contacts`, or neither.
    #[error("FIND_VALUE_REPLY must carry exactly one of `value` or `contacts` (P-W9)")]
    ValueXorContacts,
}

fn missing_rule(name: &str) -> &'static str {
    match name {
        "address" | "port" | "nodeID" | "rpcID" | "referenceID" => "P-W2",
        _ => "P-W6",
    }
}

impl WireError {
    /// The PROFILE rule this error breaks (`"P-W3"`).
    pub fn rule(&self) -> &'static str {
        match self {
            WireError::Oversize(_) | WireError::NotUtf8 | WireError::NotObject(_) => "P-W1",
            WireError::NotJson(_) | WireError::MissingType | WireError::UnknownType(_) => "P-W6",
            WireError::MissingParam(name) => missing_rule(name),
            WireError::WrongType(_) => "P-W6",
            WireError::BadAddress | WireError::BadPort | WireError::RpcIdRole(_) => "P-W2",
            WireError::BadHex(_) | WireError::BadRpcId(_) => "P-W4",
            WireError::NodeIdMismatch => "P-W3",
            WireError::BadTimestamp => "P-W5",
            WireError::ValueXorContacts => "P-W9",
        }
    }

    /// A short stable name for counters and logs (`"node_id_mismatch"`).
    pub fn kind(&self) -> &'static str {
        match self {
            WireError::Oversize(_) => "oversize",
            WireError::NotUtf8 => "not_utf8",
            WireError::NotJson(_) => "not_json",
            WireError::NotObject(_) => "not_object",
            WireError::MissingType => "missing_type",
            WireError::UnknownType(_) => "unknown_type",
            WireError::MissingParam(_) => "missing_param",
            WireError::WrongType(_) => "wrong_type",
            WireError::BadAddress => "bad_address",
            WireError::BadPort => "bad_port",
            WireError::BadHex(_) => "bad_hex",
            WireError::NodeIdMismatch => "node_id_mismatch",
            WireError::BadRpcId(_) => "bad_rpc_id",
            WireError::RpcIdRole(_) => "rpc_id_role",
            WireError::BadTimestamp => "bad_timestamp",
            WireError::ValueXorContacts => "value_xor_contacts",
        }
    }
}

/// Decodes one datagram (P-W1–P-W9).
pub fn decode(datagram: &[u8]) -> Result<Message, WireError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(WireError::Oversize(datagram.len()));
    }
    let text = std::str::from_utf8(datagram).map_err(|_| WireError::NotUtf8)?;
    let root: Value = serde_json::from_str(text).map_err(|e| WireError::NotJson(e.to_string()))?;
    let Value::Object(mut root) = root else {
        return Err(WireError::NotObject("message"));
    };
    let ty = match root.get("type") {
        Some(Value::String(s)) => {
            MessageType::parse(s).ok_or_else(|| WireError::UnknownType(s.clone()))?
        }
        _ => return Err(WireError::MissingType),
    };
    let params = match root.remove("params") {
        Some(Value::Object(p)) => p,
        Some(_) => return Err(WireError::NotObject("params")),
        None => return Err(WireError::MissingParam("params")),
    };
    decode_params(ty, &params)
}

fn decode_params(ty: MessageType, p: &Map<String, Value>) -> Result<Message, WireError> {
    let sender = decode_contact_fields(p)?;
    let rpc_id = opt_rpc_id(p, "rpcID")?;
    let reference_id = opt_rpc_id(p, "referenceID")?;
    let rpc_id = if ty.is_request() {
        if reference_id.is_some() {
            return Err(WireError::RpcIdRole(
                "a request must not carry `referenceID`",
            ));
        }
        rpc_id.ok_or(WireError::MissingParam("rpcID"))?
    } else {
        reference_id.ok_or(WireError::MissingParam("referenceID"))?
    };
    let mut skipped = 0;
    let body = match ty {
        MessageType::Ping => Body::Ping,
        MessageType::Pong => Body::Pong,
        MessageType::Store => {
            let key = req_hex(p, "key")?;
            let value = match p.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(WireError::WrongType("value")),
                None => return Err(WireError::MissingParam("value")),
            };
            let timestamp = match p.get("timestamp") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => Some(n.as_u64().ok_or(WireError::BadTimestamp)?),
                Some(_) => return Err(WireError::BadTimestamp),
            };
            let publisher = match p.get("publisher") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => {
                    Some(NodeId::from_hex(s).map_err(|_| WireError::BadHex("publisher"))?)
                }
                Some(_) => return Err(WireError::WrongType("publisher")),
            };
            Body::Store {
                key,
                value,
                timestamp,
                publisher,
            }
        }
        MessageType::StoreReply => match p.get("success") {
            Some(Value::Bool(b)) => Body::StoreReply { success: *b },
            Some(_) => return Err(WireError::WrongType("success")),
            None => return Err(WireError::MissingParam("success")),
        },
        MessageType::FindNode => Body::FindNode {
            key: req_hex(p, "key")?,
        },
        MessageType::FindValue => Body::FindValue {
            key: req_hex(p, "key")?,
        },
        MessageType::FindNodeReply => {
            let (contacts, s) = req_contacts(p)?;
            skipped = s;
            Body::FindNodeReply { contacts }
        }
        MessageType::FindValueReply => {
            let has_value = p.get("value").is_some_and(|v| !v.is_null());
            let has_contacts = p.get("contacts").is_some_and(|v| !v.is_null());
            match (has_value, has_contacts) {
                (true, false) => match p.get("value") {
                    Some(Value::String(s)) => {
                        Body::FindValueReply(FindValueResult::Value(s.clone()))
                    }
                    _ => return Err(WireError::WrongType("value")),
                },
                (false, true) => {
                    let (contacts, s) = req_contacts(p)?;
                    skipped = s;
                    Body::FindValueReply(FindValueResult::Contacts(contacts))
                }
                _ => return Err(WireError::ValueXorContacts),
            }
        }
    };
    Ok(Message {
        sender,
        rpc_id,
        body,
        skipped_contacts: skipped,
    })
}

/// Reads `address`, `port`, `nodeID` and checks P-W3 on the address text as transmitted.
fn decode_contact_fields(p: &Map<String, Value>) -> Result<Contact, WireError> {
    let address_text = match p.get("address") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(WireError::WrongType("address")),
        None => return Err(WireError::MissingParam("address")),
    };
    let address: IpAddr = address_text.parse().map_err(|_| WireError::BadAddress)?;
    let port = match p.get("port") {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|&v| (1..=65_535).contains(&v))
            .ok_or(WireError::BadPort)? as u16,
        Some(_) => return Err(WireError::BadPort),
        None => return Err(WireError::MissingParam("port")),
    };
    let node_id = req_hex(p, "nodeID")?;
    if NodeId::from_address_text(address_text, port) != node_id {
        return Err(WireError::NodeIdMismatch);
    }
    Ok(Contact {
        address,
        port,
        node_id,
    })
}

fn req_hex(p: &Map<String, Value>, name: &'static str) -> Result<NodeId, WireError> {
    match p.get(name) {
        Some(Value::String(s)) => NodeId::from_hex(s).map_err(|_| WireError::BadHex(name)),
        Some(_) => Err(WireError::WrongType(name)),
        None => Err(WireError::MissingParam(name)),
    }
}

fn opt_rpc_id(p: &Map<String, Value>, name: &'static str) -> Result<Option<String>, WireError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if valid_rpc_id(s) {
                Ok(Some(s.clone()))
            } else {
                Err(WireError::BadRpcId(name))
            }
        }
        Some(_) => Err(WireError::WrongType(name)),
    }
}

/// P-W4: 1–128 printable ASCII characters (space through tilde).
pub fn valid_rpc_id(s: &str) -> bool {
    (1..=MAX_RPC_ID_LEN).contains(&s.len()) && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

fn req_contacts(p: &Map<String, Value>) -> Result<(Vec<Contact>, usize), WireError> {
    let list = match p.get("contacts") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(WireError::WrongType("contacts")),
        None => return Err(WireError::MissingParam("contacts")),
    };
    let mut out = Vec::with_capacity(list.len().min(MAX_CONTACTS_ACCEPTED));
    let mut skipped = 0;
    for item in list {
        if out.len() == MAX_CONTACTS_ACCEPTED {
            skipped += 1;
            continue;
        }
        match item {
            Value::Object(c) => match decode_contact_fields(c) {
                Ok(contact) if !out.contains(&contact) => out.push(contact),
                _ => skipped += 1,
            },
            _ => skipped += 1,
        }
    }
    Ok((out, skipped))
}

/// Encodes a message in canonical form (P-W1, P-W2, P-W4). Requests carry `rpcID`, replies
/// `referenceID`; the sender fields come from `msg.sender`.
pub fn encode(msg: &Message) -> Vec<u8> {
    serde_json::to_vec(&to_json(msg)).expect("a JSON value always serialises")
}

/// The JSON value of a message (what [`encode`] serialises).
pub fn to_json(msg: &Message) -> Value {
    let mut p = Map::new();
    match &msg.body {
        Body::Ping | Body::Pong => {}
        Body::Store {
            key,
            value,
            timestamp,
            publisher,
        } => {
            p.insert("key".into(), key.to_hex().into());
            p.insert("value".into(), value.clone().into());
            if let Some(t) = timestamp {
                p.insert("timestamp".into(), (*t).into());
            }
            if let Some(publ) = publisher {
                p.insert("publisher".into(), publ.to_hex().into());
            }
        }
        Body::StoreReply { success } => {
            p.insert("success".into(), (*success).into());
        }
        Body::FindNode { key } | Body::FindValue { key } => {
            p.insert("key".into(), key.to_hex().into());
        }
        Body::FindNodeReply { contacts }
        | Body::FindValueReply(FindValueResult::Contacts(contacts)) => {
            p.insert("contacts".into(), contacts_json(contacts));
        }
        Body::FindValueReply(FindValueResult::Value(v)) => {
            p.insert("value".into(), v.clone().into());
        }
    }
    insert_contact(&mut p, &msg.sender);
    let id_field = if msg.is_request() {
        "rpcID"
    } else {
        "referenceID"
    };
    p.insert(id_field.into(), msg.rpc_id.clone().into());
    let mut root = Map::new();
    root.insert("type".into(), msg.message_type().as_str().into());
    root.insert("params".into(), Value::Object(p));
    Value::Object(root)
}

fn insert_contact(p: &mut Map<String, Value>, c: &Contact) {
    p.insert("address".into(), canonical_ip(c.address).to_string().into());
    p.insert("port".into(), c.port.into());
    p.insert("nodeID".into(), c.node_id.to_hex().into());
}

fn contacts_json(contacts: &[Contact]) -> Value {
    Value::Array(
        contacts
            .iter()
            .map(|c| {
                let mut m = Map::new();
                insert_contact(&mut m, c);
                Value::Object(m)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn me() -> Contact {
        Contact::from_addr("127.0.0.1:4000".parse().unwrap())
    }

    fn params_of(extra: Value) -> Value {
        let mut p = json!({
            "address": "127.0.0.1", "port": 4000,
            "nodeID": "caf8d9b85e7fa9a124cb44cb28ad5289faa44668",
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                p.as_object_mut().unwrap().remove(k);
            } else {
                p[k] = v.clone();
            }
        }
        p
    }

    fn dgram(ty: &str, extra: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"type": ty, "params": params_of(extra)})).unwrap()
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn decodes_every_request_type() {
        let ping = decode(&dgram("PING", json!({"rpcID": "r1"}))).unwrap();
        assert_eq!(ping.body, Body::Ping);
        assert_eq!(ping.rpc_id, "r1");
        assert_eq!(ping.sender, me());
        let fnode = decode(&dgram("FIND_NODE", json!({"rpcID": "r", "key": KEY}))).unwrap();
        assert_eq!(
            fnode.body,
            Body::FindNode {
                key: NodeId::from_hex(KEY).unwrap()
            }
        );
        let fval = decode(&dgram("FIND_VALUE", json!({"rpcID": "r", "key": KEY}))).unwrap();
        assert_eq!(fval.message_type(), MessageType::FindValue);
        let store = decode(&dgram(
            "STORE",
            json!({"rpcID": "r", "key": KEY, "value": "00", "timestamp": 5, "publisher": KEY}),
        ))
        .unwrap();
        assert!(matches!(
            store.body,
            Body::Store {
                timestamp: Some(5),
                publisher: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn decodes_every_reply_type() {
        let pong = decode(&dgram("PONG", json!({"referenceID": "r1"}))).unwrap();
        assert_eq!((pong.body, pong.rpc_id.as_str()), (Body::Pong, "r1"));
        let sr = decode(&dgram(
            "STORE_REPLY",
            json!({"referenceID": "r", "success": false}),
        ));
        assert_eq!(sr.unwrap().body, Body::StoreReply { success: false });
        let c = json!([{"address": "127.0.0.1", "port": 4000,
                        "nodeID": "caf8d9b85e7fa9a124cb44cb28ad5289faa44668"}]);
        let fnr = decode(&dgram(
            "FIND_NODE_REPLY",
            json!({"referenceID": "r", "contacts": c}),
        ));
        assert_eq!(
            fnr.unwrap().body,
            Body::FindNodeReply {
                contacts: vec![me()]
            }
        );
        let fvr = decode(&dgram(
            "FIND_VALUE_REPLY",
            json!({"referenceID": "r", "value": "ab"}),
        ));
        assert_eq!(
            fvr.unwrap().body,
            Body::FindValueReply(FindValueResult::Value("ab".into()))
        );
    }

    #[test]
    fn reply_with_extra_rpc_id_is_accepted_p_w2() {
        let m = decode(&dgram(
            "PONG",
            json!({"referenceID": "orig", "rpcID": "other", "lastSeen": 1}),
        ))
        .unwrap();
        assert_eq!(m.rpc_id, "orig");
    }

    fn err(ty: &str, extra: Value) -> WireError {
        decode(&dgram(ty, extra)).unwrap_err()
    }

    #[test]
    fn rejects_with_rule_ids() {
        let cases: Vec<(WireError, &str)> = vec![
            (decode(&vec![b' '; MAX_DATAGRAM + 1]).unwrap_err(), "P-W1"),
            (decode(&[0xff, 0xfe]).unwrap_err(), "P-W1"),
            (decode(b"[1,2]").unwrap_err(), "P-W1"),
            (decode(b"{\"type\":").unwrap_err(), "P-W6"),
            (decode(br#"{"params":{}}"#).unwrap_err(), "P-W6"),
            (err("PANG", json!({"rpcID": "r"})), "P-W6"),
            (err("ping", json!({"rpcID": "r"})), "P-W6"),
            (err("PING", json!({"rpcID": "r", "address": null})), "P-W2"),
            (
                err("PING", json!({"rpcID": "r", "address": "localhost"})),
                "P-W2",
            ),
            (
                err("PING", json!({"rpcID": "r", "address": "[::1]"})),
                "P-W2",
            ),
            (err("PING", json!({"rpcID": "r", "port": 0})), "P-W2"),
            (err("PING", json!({"rpcID": "r", "port": 65536})), "P-W2"),
            (err("PING", json!({"rpcID": "r", "port": "4000"})), "P-W2"),
            (err("PING", json!({"rpcID": "r", "port": 4000.5})), "P-W2"),
            (err("PING", json!({"rpcID": "r", "port": 4001})), "P-W3"),
            (err("PING", json!({"rpcID": "r", "nodeID": KEY})), "P-W3"),
            (
                err(
                    "PING",
                    json!({"rpcID": "r", "nodeID": "CAF8D9B85E7FA9A124CB44CB28AD5289FAA44668"}),
                ),
                "P-W4",
            ),
            (err("PING", json!({})), "P-W2"),
            (err("PING", json!({"rpcID": ""})), "P-W4"),
            (err("PING", json!({"rpcID": "x".repeat(129)})), "P-W4"),
            (err("PING", json!({"rpcID": "tab\there"})), "P-W4"),
            (err("PING", json!({"rpcID": 7})), "P-W6"),
            (
                err("PING", json!({"rpcID": "r", "referenceID": "q"})),
                "P-W2",
            ),
            (err("PONG", json!({"rpcID": "r"})), "P-W2"),
            (err("FIND_NODE", json!({"rpcID": "r"})), "P-W6"),
            (
                err("FIND_NODE", json!({"rpcID": "r", "key": "abc"})),
                "P-W4",
            ),
            (err("FIND_NODE", json!({"rpcID": "r", "key": 12})), "P-W6"),
            (err("STORE", json!({"rpcID": "r", "key": KEY})), "P-W6"),
            (
                err("STORE", json!({"rpcID": "r", "key": KEY, "value": 1})),
                "P-W6",
            ),
            (
                err(
                    "STORE",
                    json!({"rpcID": "r", "key": KEY, "value": "00", "timestamp": -1}),
                ),
                "P-W5",
            ),
            (
                err(
                    "STORE",
                    json!({"rpcID": "r", "key": KEY, "value": "00", "timestamp": 1.5}),
                ),
                "P-W5",
            ),
            (
                err(
                    "STORE",
                    json!({"rpcID": "r", "key": KEY, "value": "00", "timestamp": "1"}),
                ),
                "P-W5",
            ),
            (
                err(
                    "STORE",
                    json!({"rpcID": "r", "key": KEY, "value": "00", "publisher": "ZZ"}),
                ),
                "P-W4",
            ),
            (err("STORE_REPLY", json!({"referenceID": "r"})), "P-W6"),
            (
                err("STORE_REPLY", json!({"referenceID": "r", "success": "yes"})),
                "P-W6",
            ),
            (err("FIND_NODE_REPLY", json!({"referenceID": "r"})), "P-W6"),
            (
                err(
                    "FIND_NODE_REPLY",
                    json!({"referenceID": "r", "contacts": {}}),
                ),
                "P-W6",
            ),
            (err("FIND_VALUE_REPLY", json!({"referenceID": "r"})), "P-W9"),
            (
                err(
                    "FIND_VALUE_REPLY",
                    json!({"referenceID": "r", "value": "ab", "contacts": []}),
                ),
                "P-W9",
            ),
        ];
        for (i, (e, rule)) in cases.iter().enumerate() {
            assert_eq!(e.rule(), *rule, "case {i}: {e}");
        }
        assert_eq!(
            decode(br#"{"type":"PING","params":[]}"#)
                .unwrap_err()
                .rule(),
            "P-W1"
        );
    }

    #[test]
    fn store_without_timestamp_or_publisher_decodes_for_refusal_p_v3() {
        let m = decode(&dgram(
            "STORE",
            json!({"rpcID": "r", "key": KEY, "value": "zz"}),
        ))
        .unwrap();
        assert_eq!(
            m.body,
            Body::Store {
                key: NodeId::from_hex(KEY).unwrap(),
                value: "zz".into(),
                timestamp: None,
                publisher: None
            }
        );
    }

    #[test]
    fn unknown_fields_are_ignored_p_w1() {
        let m = decode(&dgram("PING", json!({"rpcID": "r", "mip42": {"x": 1}}))).unwrap();
        assert_eq!(m.body, Body::Ping);
        let raw = br#"{"type":"PING","extra":true,"params":{"address":"127.0.0.1","port":4000,
            "nodeID":"caf8d9b85e7fa9a124cb44cb28ad5289faa44668","rpcID":"r"}}"#;
        assert!(decode(raw).is_ok());
    }

    #[test]
    fn accepts_max_size_datagram_p_w1() {
        let pad = MAX_DATAGRAM - dgram("PING", json!({"rpcID": "r", "pad": ""})).len();
        let d = dgram("PING", json!({"rpcID": "r", "pad": "p".repeat(pad)}));
        assert_eq!(d.len(), MAX_DATAGRAM);
        assert!(decode(&d).is_ok());
    }

    #[test]
    fn contacts_are_cut_and_filtered_p_w8() {
        let mut list: Vec<Value> = (1..=25u16)
            .map(|port| {
                let c = Contact::from_addr(SocketAddr::from(([10, 0, 0, 1], port)));
                json!({"address": "10.0.0.1", "port": port, "nodeID": c.node_id.to_hex()})
            })
            .collect();
        list.insert(0, json!({"address": "10.0.0.1", "port": 9, "nodeID": KEY})); // P-W3 broken
        list.insert(0, json!("not an object"));
        let m = decode(&dgram(
            "FIND_NODE_REPLY",
            json!({"referenceID": "r", "contacts": list}),
        ))
        .unwrap();
        let Body::FindNodeReply { contacts } = &m.body else {
            panic!("wrong body")
        };
        assert_eq!(contacts.len(), MAX_CONTACTS_ACCEPTED);
        assert_eq!(contacts[0].port, 1);
        assert_eq!(m.skipped_contacts, 2 + 5);
    }

    #[test]
    fn ipv6_sender() {
        let id = NodeId::from_address_text("::1", 4000);
        let d = dgram(
            "PING",
            json!({"rpcID": "r", "address": "::1", "nodeID": id.to_hex()}),
        );
        let m = decode(&d).unwrap();
        assert_eq!(m.sender.socket_addr(), "[::1]:4000".parse().unwrap());
    }

    #[test]
    fn encoding_is_canonical() {
        let m = Message::new(me(), "abc", Body::FindNode { key: NodeId::ZERO });
        let v: Value = serde_json::from_slice(&encode(&m)).unwrap();
        assert_eq!(
            v,
            json!({"type": "FIND_NODE", "params": {
                "key": "0000000000000000000000000000000000000000",
                "address": "127.0.0.1", "port": 4000,
                "nodeID": "caf8d9b85e7fa9a124cb44cb28ad5289faa44668", "rpcID": "abc"}})
        );
        let r = Message::new(me(), "abc", Body::StoreReply { success: true });
        let v: Value = serde_json::from_slice(&encode(&r)).unwrap();
        assert_eq!(v["params"]["referenceID"], "abc");
        assert!(v["params"].get("rpcID").is_none());
    }

    fn arb_contact() -> impl Strategy<Value = Contact> {
        prop_oneof![
            (any::<[u8; 4]>(), 1u16..).prop_map(|(ip, port)| Contact::from_addr((ip, port).into())),
            (any::<[u16; 8]>(), 1u16..).prop_map(|(ip, port)| {
                Contact::from_addr(SocketAddr::new(std::net::Ipv6Addr::from(ip).into(), port))
            }),
        ]
    }

    fn arb_rpc_id() -> impl Strategy<Value = String> {
        "[ -~]{1,128}"
    }

    fn arb_body() -> impl Strategy<Value = Body> {
        let id = any::<[u8; 20]>().prop_map(NodeId);
        let contacts = || {
            proptest::collection::vec(arb_contact(), 0..=20).prop_map(|mut v| {
                let mut seen = std::collections::HashSet::new();
                v.retain(|c| seen.insert(*c));
                v
            })
        };
        prop_oneof![
            Just(Body::Ping),
            Just(Body::Pong),
            (
                id.clone(),
                "[0-9a-f]{0,64}",
                proptest::option::of(any::<u64>()),
                proptest::option::of(id.clone())
            )
                .prop_map(|(key, value, timestamp, publisher)| Body::Store {
                    key,
                    value,
                    timestamp,
                    publisher
                }),
            any::<bool>().prop_map(|success| Body::StoreReply { success }),
            id.clone().prop_map(|key| Body::FindNode { key }),
            id.prop_map(|key| Body::FindValue { key }),
            contacts().prop_map(|contacts| Body::FindNodeReply { contacts }),
            contacts().prop_map(|c| Body::FindValueReply(FindValueResult::Contacts(c))),
            "[0-9a-f]{0,64}".prop_map(|v| Body::FindValueReply(FindValueResult::Value(v))),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(sender in arb_contact(), rpc in arb_rpc_id(), body in arb_body()) {
            let m = Message::new(sender, rpc, body);
            prop_assert_eq!(decode(&encode(&m)).unwrap(), m);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_json_shapes(ty in "[A-Z_]{0,16}", port in any::<i64>(), addr in ".{0,20}") {
            let d = serde_json::to_vec(&json!({"type": ty, "params": {"address": addr, "port": port, "rpcID": "r"}})).unwrap();
            let _ = decode(&d);
        }
    }
}
