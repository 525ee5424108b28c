//! One module per resource of the REST API (whitepaper "RESTful Interface", PROFILE §5).
//!
//! | module | endpoints |
//! |---|---|
//! | [`identities`] | `POST /` (register a key) |
//! | [`messages`] | `POST /messages`, `GET /messages/:hash` (the DHT, passive mode) |
//! | [`aliases`] | `GET /aliases/:alias`, `POST /aliases` |
//! | [`tokens`] | `POST /tokens` |
//! | [`inboxes`] | `POST /inboxes/:alias`, `GET /inboxes`, `DELETE /inboxes` |
//! | [`health`] | `GET /healthz`, `GET /readyz` (P-X3) |
//! | [`status`] | `GET /` without an upgrade: the status page (HTML or JSON) |

pub mod aliases;
pub mod health;
pub mod identities;
pub mod inboxes;
pub mod messages;
pub mod status;
pub mod tokens;
