//! Where the client keeps your identity, contacts and pod: the library's
//! [`muttr_node::client::home`], shared with `muttrd`.

pub use muttr_node::client::home::{Home, read_public_key};
