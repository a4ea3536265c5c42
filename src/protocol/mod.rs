//! The wire protocol `wsc.v1` (PROTOCOL.md): ids, frames, control frames, close codes.
//! No actor types live here.

pub mod close;
pub mod control;
pub mod envelope;
pub mod ids;
pub mod inbound;
pub mod time;
pub mod types;

pub use close::CloseCode;
pub use envelope::{Envelope, OutboundFrame, Source};
pub use ids::{ClientId, GroupId, MessageId, NodeId, UserId};
pub use inbound::{parse_inbound, ClientMessage, Destination, Inbound};
pub use types::{ErrorCode, MessageType, Priority, UserType};
