//! The one data model every room shares: table schemas, column types and checked rows ([`schema`]), and
//! time: parsing, formatting and ISO 8601 durations ([`time`]), and the typed values and frames a query
//! answers with ([`value`], [`frame`]), and how any value from outside is shown to a reader ([`text`]).

pub mod frame;
pub mod schema;
pub mod text;
pub mod time;
pub mod value;
