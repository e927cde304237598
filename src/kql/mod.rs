//! A parser and evaluator for the subset of KQL (Kusto Query Language) the project ships and people use to
//! inspect the local workspace. The subset is documented in the README; anything outside it is an error that
//! names what is unsupported, never a silently different answer.
//!
//! Queries run over [`Frame`]s: typed columns and rows of [`Value`]s shared by reference, so filters and
//! projections over large tables copy pointers, not data.

mod ast;
mod eval;
mod exec;
mod lexer;
mod parser;
/// The values and frames the engine computes over are the shared data model's.
pub use crate::model::value;

pub use crate::model::frame::{Column, Frame, Row};
pub use exec::{execute, Tables};
pub use parser::parse;
pub use value::{KType, Value};

/// Converts a value to a column type as `tolong()`, `todatetime()`… do; null when it does not convert.
pub fn eval_convert(v: &Value, t: KType) -> Value {
    eval::convert(v, t)
}

/// Where in a query's text something is: line and column, both from 1, columns counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KqlError {
    #[error("syntax error at {pos}: {message}")]
    Syntax { pos: Position, message: String },
    /// Found by the parser (with its place) or only when the query runs (an aggregation or function).
    #[error("unsupported {what}{} (outside the KQL subset this workspace implements)", pos.map(|p| format!(" at {p}")).unwrap_or_default())]
    Unsupported { pos: Option<Position>, what: String },
    #[error("{0}")]
    Semantic(String),
    #[error("the query nests deeper than {limit} levels at {pos}")]
    TooDeep { pos: Position, limit: usize },
}

/// Parses and runs a query in one step.
pub fn run(query: &str, tables: &dyn Tables, now_ticks: i64) -> Result<Frame, KqlError> {
    let q = parse(query)?;
    execute(&q, tables, now_ticks)
}

#[cfg(test)]
mod tests;
