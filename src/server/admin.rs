//! The admin HTTP API (API key): kick users, disconnect clients, manage group membership,
//! retry failed messages, list records.

use actix_web::web;

/// Mounts the admin routes.
pub(crate) fn routes(_cfg: &mut web::ServiceConfig) {}
