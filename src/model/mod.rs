//! The one data model every room shares: table schemas, column types and checked rows ([`schema`]), and
//! time: parsing, formatting and ISO 8601 durations ([`time`]).

pub mod schema;
pub mod time;
