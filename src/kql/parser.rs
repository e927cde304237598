//! A recursive-descent parser for the KQL subset. Anything outside the subset is an error that names the
//! operator or construct, never a silent misreading.

use std::sync::Arc;

use super::ast::*;
use super::lexer::{lex, Tok, Token};
use super::value::{parse_timespan_text, KType, Value};
use super::KqlError;
use crate::model::time::parse_datetime_ticks;

pub fn parse(src: &str) -> Result<Query, KqlError> {
    let tokens = lex(src)?;
    let mut p = Parser { t: tokens, i: 0, depth: Depth::default() };
    let q = p.query()?;
    Ok(q)
}

/// Operators we know of but do not support: named in the error.
const UNSUPPORTED_OPS: &[&str] = &[
    "parse",
    "parse-where",
    "parse-kv",
    "make-series",
    "mv-apply",
    "evaluate",
    "invoke",
    "lookup",
    "as",
    "serialize",
    "sample",
    "sample-distinct",
    "getschema",
    "fork",
    "facet",
    "partition",
    "scan",
    "search",
    "find",
    "top-nested",
    "top-hitters",
    "project-reorder",
    "reduce",
    "consume",
    "externaldata",
    "range",
];

/// How deeply expressions and subqueries may nest. Real queries stay in single digits; the bound keeps a
/// hostile query (a thousand parentheses) from overflowing the stack of the thread that parses it.
pub const MAX_NESTING: usize = 128;

struct Parser {
    t: Vec<Token>,
    i: usize,
    /// Nesting of the recursive rules under way (expressions, unary operators, subqueries, chain links).
    depth: Depth,
}

/// The levels in use, shared with the guards that hold them.
#[derive(Default, Clone)]
struct Depth(std::rc::Rc<std::cell::Cell<usize>>);

/// One level of [`Depth`], given back when the guard drops: on success, on `?` and on every early return
/// alike, so no path can leak a level or give one back twice.
struct DepthGuard(std::rc::Rc<std::cell::Cell<usize>>);

impl Depth {
    /// Takes one more level, refusing past [`MAX_NESTING`].
    fn enter(&self, pos: super::Position) -> Result<DepthGuard, KqlError> {
        let d = self.0.get();
        if d >= MAX_NESTING {
            return Err(KqlError::TooDeep { pos, limit: MAX_NESTING });
        }
        self.0.set(d + 1);
        Ok(DepthGuard(self.0.clone()))
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

fn is_sym(t: &Tok, s: &str) -> bool {
    matches!(t, Tok::Sym(x) if *x == s)
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.t[self.i].tok
    }
    fn peek_at(&self, n: usize) -> &Tok {
        &self.t[(self.i + n).min(self.t.len() - 1)].tok
    }
    fn pos(&self) -> super::Position {
        self.t[self.i].pos
    }
    fn bump(&mut self) -> Tok {
        let t = self.t[self.i].tok.clone();
        if self.i < self.t.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, KqlError> {
        Err(KqlError::Syntax { pos: self.pos(), message: msg.into() })
    }
    fn at_sym(&self, s: &str) -> bool {
        is_sym(self.peek(), s)
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        if self.at_sym(s) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect_sym(&mut self, s: &str) -> Result<(), KqlError> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            self.err(format!("expected '{s}', found {}", describe(self.peek())))
        }
    }
    fn at_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.at_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), KqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            self.err(format!("expected '{kw}', found {}", describe(self.peek())))
        }
    }
    fn name(&mut self) -> Result<String, KqlError> {
        match self.bump() {
            Tok::Ident(s) | Tok::QuotedIdent(s) => Ok(s),
            other => {
                self.i -= 1;
                self.err(format!("expected a name, found {}", describe(&other)))
            }
        }
    }

    fn query(&mut self) -> Result<Query, KqlError> {
        let mut lets = Vec::new();
        let mut body = None;
        loop {
            while self.eat_sym(";") {}
            if matches!(self.peek(), Tok::Eof) {
                break;
            }
            if self.at_kw("let") {
                self.bump();
                let name = self.name()?;
                self.expect_sym("=")?;
                let value = self.let_value()?;
                lets.push((name, value));
                continue;
            }
            if body.is_some() {
                return self.err("only one tabular expression may follow the let statements");
            }
            body = Some(self.tabular()?);
        }
        let Some(body) = body else { return self.err("the query has no tabular expression") };
        Ok(Query { lets, body })
    }

    fn let_value(&mut self) -> Result<LetValue, KqlError> {
        // A tabular let starts with a table-like source followed by `|`, or is a union/datatable/parenthesised
        // tabular expression; otherwise it is a scalar.
        let tabular_start = match self.peek() {
            Tok::Ident(w) if matches!(w.to_ascii_lowercase().as_str(), "union" | "datatable" | "print") => true,
            Tok::Ident(_) | Tok::QuotedIdent(_) => {
                is_sym(self.peek_at(1), "|") || matches!(self.peek_at(1), Tok::Sym(";") | Tok::Eof) && self.looks_like_table()
            }
            Tok::Sym("(") => self.paren_is_tabular(),
            _ => false,
        };
        if tabular_start {
            Ok(LetValue::Tabular(self.tabular()?))
        } else {
            Ok(LetValue::Scalar(self.expr()?))
        }
    }

    fn looks_like_table(&self) -> bool {
        // `let T = SigninLogs;`: a bare name. Tables start with an uppercase letter by convention; a scalar
        // alias to another scalar let is rarer and still works as a tabular reference at run time if it is one.
        matches!(self.peek(), Tok::Ident(w) if w.chars().next().is_some_and(char::is_uppercase))
    }

    fn paren_is_tabular(&self) -> bool {
        let mut depth = 0;
        for t in &self.t[self.i..] {
            match &t.tok {
                Tok::Sym("(") => depth += 1,
                Tok::Sym(")") => {
                    depth -= 1;
                    if depth == 0 {
                        return false;
                    }
                }
                Tok::Sym("|") if depth == 1 => return true,
                Tok::Eof => return false,
                _ => {}
            }
        }
        false
    }

    /// Runs a recursive rule one level deeper, refusing past [`MAX_NESTING`].
    fn nested<T>(&mut self, rule: impl FnOnce(&mut Self) -> Result<T, KqlError>) -> Result<T, KqlError> {
        let _level = self.depth.enter(self.pos())?;
        rule(self)
    }

    /// One more link of a left-deep chain (`a or b or c`, `x.y[0]`): each makes the tree, and its evaluation,
    /// one level deeper, so chains count against the same bound as nesting. The caller keeps the guards until
    /// the chain is built.
    fn link(&mut self) -> Result<DepthGuard, KqlError> {
        self.depth.enter(self.pos())
    }

    fn tabular(&mut self) -> Result<Tabular, KqlError> {
        self.nested(Self::tabular_inner)
    }

    fn tabular_inner(&mut self) -> Result<Tabular, KqlError> {
        let source = self.source()?;
        let mut ops = Vec::new();
        while self.eat_sym("|") {
            ops.push(self.op()?);
        }
        Ok(Tabular { source, ops })
    }

    fn source(&mut self) -> Result<Source, KqlError> {
        if self.eat_sym("(") {
            let t = self.tabular()?;
            self.expect_sym(")")?;
            return Ok(Source::Nested(Box::new(t)));
        }
        if self.at_kw("union") {
            self.bump();
            let (with_source, parts) = self.union_args()?;
            return Ok(Source::Union { with_source, parts });
        }
        if self.at_kw("print") {
            self.bump();
            return Ok(Source::Print(self.named_list()?));
        }
        if self.at_kw("datatable") {
            self.bump();
            self.expect_sym("(")?;
            let mut columns = Vec::new();
            loop {
                let n = self.name()?;
                self.expect_sym(":")?;
                let t = self.name()?;
                let kt = KType::parse(&t).ok_or_else(|| KqlError::Syntax { pos: self.pos(), message: format!("unknown type '{t}'") })?;
                columns.push((n, kt));
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
            // `['A']` lexes as a quoted name: a one-value table.
            if let Tok::QuotedIdent(v) = self.peek().clone() {
                self.bump();
                return Ok(Source::Datatable { columns, values: vec![Expr::Lit(Value::str(&v))] });
            }
            self.expect_sym("[")?;
            let mut values = Vec::new();
            if !self.at_sym("]") {
                loop {
                    values.push(self.expr()?);
                    if !self.eat_sym(",") {
                        break;
                    }
                }
            }
            self.expect_sym("]")?;
            return Ok(Source::Datatable { columns, values });
        }
        match self.peek().clone() {
            Tok::Ident(w) if w.eq_ignore_ascii_case("table") && is_sym(self.peek_at(1), "(") => {
                self.bump();
                self.bump();
                let Tok::Str(name) = self.bump() else { return self.err("table() takes a string") };
                self.expect_sym(")")?;
                Ok(Source::Name(name))
            }
            Tok::Ident(w) | Tok::QuotedIdent(w) => {
                self.bump();
                Ok(Source::Name(w))
            }
            other => self.err(format!("expected a table name, found {}", describe(&other))),
        }
    }

    fn union_args(&mut self) -> Result<(Option<String>, Vec<Tabular>), KqlError> {
        let mut with_source = None;
        loop {
            if self.at_kw("withsource") || self.at_kw("kind") || self.at_kw("isfuzzy") {
                let opt = self.name()?.to_ascii_lowercase();
                self.expect_sym("=")?;
                let v = self.name().or_else(|_| match self.bump() {
                    Tok::Long(n) => Ok(n.to_string()),
                    _ => Err(KqlError::Syntax { pos: self.pos(), message: "bad union option".into() }),
                })?;
                if opt == "withsource" {
                    with_source = Some(v);
                }
                continue;
            }
            break;
        }
        let mut parts = Vec::new();
        loop {
            if self.eat_sym("(") {
                let t = self.tabular()?;
                self.expect_sym(")")?;
                parts.push(t);
            } else {
                let n = self.name()?;
                if n.contains('*') {
                    return self.err("wildcard table names in union are not supported");
                }
                parts.push(Tabular { source: Source::Name(n), ops: vec![] });
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok((with_source, parts))
    }

    fn op(&mut self) -> Result<Op, KqlError> {
        let pos = self.pos();
        let Tok::Ident(word) = self.bump() else {
            self.i -= 1;
            return self.err(format!("expected an operator after '|', found {}", describe(self.peek())));
        };
        let w = word.to_ascii_lowercase();
        Ok(match w.as_str() {
            "where" | "filter" => Op::Where(self.expr()?),
            "project" => Op::Project(self.named_list()?),
            "extend" => Op::Extend(self.named_list()?),
            "project-away" => Op::ProjectAway(self.name_list()?),
            "project-keep" => Op::ProjectKeep(self.name_list()?),
            "project-rename" => {
                let mut pairs = Vec::new();
                loop {
                    let new = self.name()?;
                    self.expect_sym("=")?;
                    let old = self.name()?;
                    pairs.push((new, old));
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                Op::ProjectRename(pairs)
            }
            "summarize" => {
                let aggs = if self.at_kw("by") { vec![] } else { self.named_list()? };
                let by = if self.eat_kw("by") { self.named_list()? } else { vec![] };
                if aggs.is_empty() && by.is_empty() {
                    return self.err("summarize needs an aggregation or a by clause");
                }
                Op::Summarize { aggs, by }
            }
            "order" | "sort" => {
                self.expect_kw("by")?;
                Op::Sort(self.sort_keys()?)
            }
            "order-by" => Op::Sort(self.sort_keys()?),
            "top" => {
                let n = self.expr()?;
                self.expect_kw("by")?;
                let key = self.sort_key()?;
                Op::Top { n, key }
            }
            "take" | "limit" => Op::Take(self.expr()?),
            "count" => Op::Count,
            "distinct" => Op::Distinct(self.named_list()?),
            "join" => {
                let mut kind = JoinKind::InnerUnique;
                while self.at_kw("kind") || self.at_kw("hint") || matches!(self.peek(), Tok::Ident(w) if w.starts_with("hint.")) {
                    let opt = self.name()?;
                    self.expect_sym("=")?;
                    let v = self.name()?.to_ascii_lowercase();
                    if opt.eq_ignore_ascii_case("kind") {
                        kind = match v.as_str() {
                            "inner" => JoinKind::Inner,
                            "innerunique" => JoinKind::InnerUnique,
                            "leftouter" => JoinKind::LeftOuter,
                            "leftanti" | "anti" | "leftantisemi" => JoinKind::LeftAnti,
                            "leftsemi" => JoinKind::LeftSemi,
                            "rightouter" => JoinKind::RightOuter,
                            "fullouter" => JoinKind::FullOuter,
                            other => return self.err(format!("join kind '{other}' is not supported")),
                        };
                    }
                }
                let right = if self.eat_sym("(") {
                    let t = self.tabular()?;
                    self.expect_sym(")")?;
                    t
                } else {
                    Tabular { source: Source::Name(self.name()?), ops: vec![] }
                };
                self.expect_kw("on")?;
                let mut on = Vec::new();
                loop {
                    if self.eat_sym("$") {
                        let side = self.name()?;
                        self.expect_sym(".")?;
                        let l = self.name()?;
                        self.expect_sym("==")?;
                        self.expect_sym("$")?;
                        let side2 = self.name()?;
                        self.expect_sym(".")?;
                        let r = self.name()?;
                        match (side.as_str(), side2.as_str()) {
                            ("left", "right") => on.push((l, r)),
                            ("right", "left") => on.push((r, l)),
                            _ => return self.err("join conditions compare $left.x == $right.y"),
                        }
                    } else {
                        let c = self.name()?;
                        on.push((c.clone(), c));
                    }
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                Op::Join { kind, right, on }
            }
            "union" => {
                let (with_source, parts) = self.union_args()?;
                Op::Union { with_source, parts }
            }
            "mv-expand" => {
                let first = self.name()?;
                let (alias, column) = if self.eat_sym("=") { (Some(first), self.name()?) } else { (None, first) };
                let to = if self.eat_kw("to") {
                    self.expect_kw("typeof")?;
                    self.expect_sym("(")?;
                    let t = self.name()?;
                    self.expect_sym(")")?;
                    Some(KType::parse(&t).ok_or_else(|| KqlError::Syntax { pos: self.pos(), message: format!("unknown type '{t}'") })?)
                } else {
                    None
                };
                Op::MvExpand { column, alias, to }
            }
            "render" => {
                // Visualisation only: accepted and ignored, with its arguments.
                while !matches!(self.peek(), Tok::Eof) && !self.at_sym("|") && !self.at_sym(";") {
                    self.bump();
                }
                Op::Render
            }
            other if UNSUPPORTED_OPS.contains(&other) => return Err(KqlError::Unsupported { pos: Some(pos), what: format!("operator '{other}'") }),
            other => return Err(KqlError::Syntax { pos, message: format!("unknown operator '{other}'") }),
        })
    }

    fn sort_keys(&mut self) -> Result<Vec<SortKey>, KqlError> {
        let mut keys = vec![self.sort_key()?];
        while self.eat_sym(",") {
            keys.push(self.sort_key()?);
        }
        Ok(keys)
    }

    fn sort_key(&mut self) -> Result<SortKey, KqlError> {
        let expr = self.expr()?;
        let mut desc = true;
        if self.eat_kw("asc") {
            desc = false;
        } else if self.eat_kw("desc") {
            desc = true;
        }
        let mut nulls_first = None;
        if self.eat_kw("nulls") {
            if self.eat_kw("first") {
                nulls_first = Some(true);
            } else {
                self.expect_kw("last")?;
                nulls_first = Some(false);
            }
        }
        Ok(SortKey { expr, desc, nulls_first })
    }

    fn name_list(&mut self) -> Result<Vec<String>, KqlError> {
        let mut v = vec![self.name()?];
        while self.eat_sym(",") {
            v.push(self.name()?);
        }
        Ok(v)
    }

    fn named_list(&mut self) -> Result<Vec<NamedExpr>, KqlError> {
        let mut v = Vec::new();
        loop {
            let named = matches!(self.peek(), Tok::Ident(_) | Tok::QuotedIdent(_)) && is_sym(self.peek_at(1), "=");
            if named {
                let name = self.name()?;
                self.bump();
                v.push(NamedExpr { name: Some(name), expr: self.expr()? });
            } else if self.at_sym("(") && self.paren_names_tuple() {
                return self.err("tuple assignments like (a, b) = … are not supported");
            } else {
                v.push(NamedExpr { name: None, expr: self.expr()? });
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(v)
    }

    fn paren_names_tuple(&self) -> bool {
        let mut j = self.i + 1;
        while let Tok::Ident(_) | Tok::Sym(",") = &self.t[j].tok {
            j += 1;
        }
        is_sym(&self.t[j].tok, ")") && is_sym(&self.t[(j + 1).min(self.t.len() - 1)].tok, "=")
    }

    // Expressions, lowest precedence first.
    pub fn expr(&mut self) -> Result<Expr, KqlError> {
        self.nested(Self::or)
    }

    fn or(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.and()?;
        let mut links = Vec::new();
        while self.eat_kw("or") {
            links.push(self.link()?);
            let r = self.and()?;
            l = Expr::Bin(BinOp::Or, Box::new(l), Box::new(r));
        }
        drop(links);
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.comparison()?;
        let mut links = Vec::new();
        while self.eat_kw("and") {
            links.push(self.link()?);
            let r = self.comparison()?;
            l = Expr::Bin(BinOp::And, Box::new(l), Box::new(r));
        }
        drop(links);
        Ok(l)
    }

    fn comparison(&mut self) -> Result<Expr, KqlError> {
        let l = self.additive()?;
        let op = match self.peek().clone() {
            Tok::Sym(s) => match s {
                "==" => Some(BinOp::Eq),
                "!=" | "<>" => Some(BinOp::Ne),
                "=~" => Some(BinOp::EqCi),
                "!~" => Some(BinOp::NeCi),
                "<" => Some(BinOp::Lt),
                "<=" => Some(BinOp::Le),
                ">" => Some(BinOp::Gt),
                ">=" => Some(BinOp::Ge),
                "!has" => Some(BinOp::NotHas),
                "!has_cs" => Some(BinOp::NotHasCs),
                "!contains" => Some(BinOp::NotContains),
                "!contains_cs" => Some(BinOp::NotContainsCs),
                "!startswith" => Some(BinOp::NotStartsWith),
                "!endswith" => Some(BinOp::NotEndsWith),
                "!in" | "!in~" => {
                    self.bump();
                    return self.in_list(l, true, s == "!in~");
                }
                "!between" => {
                    self.bump();
                    return self.between(l, true);
                }
                _ => None,
            },
            Tok::Ident(w) => match w.to_ascii_lowercase().as_str() {
                "has" => Some(BinOp::Has),
                "has_cs" => Some(BinOp::HasCs),
                "contains" => Some(BinOp::Contains),
                "contains_cs" => Some(BinOp::ContainsCs),
                "startswith" => Some(BinOp::StartsWith),
                "endswith" => Some(BinOp::EndsWith),
                "has_any" => Some(BinOp::HasAny),
                "in" => {
                    self.bump();
                    let ci = self.eat_sym("~");
                    return self.in_list(l, false, ci);
                }
                "between" => {
                    self.bump();
                    return self.between(l, false);
                }
                "matches" => {
                    self.bump();
                    self.expect_kw("regex")?;
                    let r = self.additive()?;
                    return Ok(match &r {
                        Expr::Lit(Value::String(p)) => {
                            let re = regex::Regex::new(p).map_err(|e| KqlError::Syntax { pos: self.pos(), message: format!("bad regex: {e}") })?;
                            Expr::Regex(Box::new(l), Arc::new(re))
                        }
                        _ => Expr::Bin(BinOp::MatchesRegex, Box::new(l), Box::new(r)),
                    });
                }
                "not" if matches!(self.peek_at(1), Tok::Ident(w2) if w2.eq_ignore_ascii_case("in")) => {
                    return self.err("'not in' is not KQL; use '!in'");
                }
                "like" | "notlike" | "has_all" | "hasprefix" | "hassuffix" | "!hasprefix" | "startswith_cs" | "endswith_cs" => {
                    return Err(KqlError::Unsupported { pos: Some(self.pos()), what: format!("operator '{w}'") })
                }
                _ => None,
            },
            _ => None,
        };
        let Some(op) = op else { return Ok(l) };
        self.bump();
        if op == BinOp::HasAny {
            self.expect_sym("(")?;
            let list = self.expr_list(")")?;
            return Ok(Expr::Call("__has_any".into(), std::iter::once(l).chain(list).collect()));
        }
        let r = self.additive()?;
        Ok(Expr::Bin(op, Box::new(l), Box::new(r)))
    }

    fn in_list(&mut self, l: Expr, negated: bool, ci: bool) -> Result<Expr, KqlError> {
        self.expect_sym("(")?;
        let list = self.expr_list(")")?;
        Ok(Expr::In { expr: Box::new(l), list, negated, ci })
    }

    fn between(&mut self, l: Expr, negated: bool) -> Result<Expr, KqlError> {
        self.expect_sym("(")?;
        let low = self.additive()?;
        self.expect_sym("..")?;
        let high = self.additive()?;
        self.expect_sym(")")?;
        Ok(Expr::Between { expr: Box::new(l), low: Box::new(low), high: Box::new(high), negated })
    }

    fn expr_list(&mut self, close: &str) -> Result<Vec<Expr>, KqlError> {
        let mut v = Vec::new();
        if self.eat_sym(close) {
            return Ok(v);
        }
        loop {
            v.push(self.expr()?);
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_sym(close)?;
        Ok(v)
    }

    fn additive(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.multiplicative()?;
        let mut links = Vec::new();
        loop {
            let op = if self.at_sym("+") {
                BinOp::Add
            } else if self.at_sym("-") {
                BinOp::Sub
            } else {
                break;
            };
            self.bump();
            links.push(self.link()?);
            let r = self.multiplicative()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
        drop(links);
        Ok(l)
    }

    fn multiplicative(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.unary()?;
        let mut links = Vec::new();
        loop {
            let op = if self.at_sym("*") {
                BinOp::Mul
            } else if self.at_sym("/") {
                BinOp::Div
            } else if self.at_sym("%") {
                BinOp::Mod
            } else {
                break;
            };
            self.bump();
            links.push(self.link()?);
            let r = self.unary()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
        drop(links);
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, KqlError> {
        if self.eat_sym("-") {
            return Ok(Expr::Neg(Box::new(self.nested(Self::unary)?)));
        }
        if self.eat_sym("+") {
            return self.nested(Self::unary);
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, KqlError> {
        let mut e = self.primary()?;
        let mut links = Vec::new();
        loop {
            if self.at_sym(".") && matches!(self.peek_at(1), Tok::Ident(_)) {
                links.push(self.link()?);
                self.bump();
                let Tok::Ident(m) = self.bump() else { unreachable!() };
                e = Expr::Member(Box::new(e), m);
            } else if let Tok::QuotedIdent(m) = self.peek().clone() {
                // a['b'] lexes as a quoted name right after the base.
                links.push(self.link()?);
                self.bump();
                e = Expr::Index(Box::new(e), Box::new(Expr::Lit(Value::str(&m))));
            } else if self.at_sym("[") {
                links.push(self.link()?);
                self.bump();
                let idx = self.expr()?;
                self.expect_sym("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else {
                break;
            }
        }
        drop(links);
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, KqlError> {
        let pos = self.pos();
        match self.bump() {
            Tok::Str(s) => Ok(Expr::Lit(Value::str(&s))),
            Tok::Long(n) => Ok(Expr::Lit(Value::Long(n))),
            Tok::Real(f) => Ok(Expr::Lit(Value::Real(f))),
            Tok::Span(t) => Ok(Expr::Lit(Value::TimeSpan(t))),
            Tok::Typed(kind, raw) => typed_literal(&kind, &raw).map(Expr::Lit).map_err(|m| KqlError::Syntax { pos, message: m }),
            Tok::QuotedIdent(name) => Ok(Expr::Column(name)),
            Tok::Sym("*") => Ok(Expr::Star),
            Tok::Sym("(") => {
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Ident(w) => {
                let lower = w.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => return Ok(Expr::Lit(Value::Bool(true))),
                    "false" => return Ok(Expr::Lit(Value::Bool(false))),
                    _ => {}
                }
                if self.at_sym("(") {
                    self.bump();
                    let args = self.expr_list(")")?;
                    // Typed nulls: long(null), string(null), ...
                    if let [Expr::Column(c)] = args.as_slice() {
                        if c == "null" && KType::parse(&lower).is_some() {
                            return Ok(Expr::Lit(Value::Null));
                        }
                    }
                    if let Some(kt) = KType::parse(&lower) {
                        if let [Expr::Lit(v)] = args.as_slice() {
                            return Ok(Expr::Lit(super::eval::convert(v, kt)));
                        }
                    }
                    return Ok(Expr::Call(lower, args));
                }
                Ok(Expr::Column(w))
            }
            other => Err(KqlError::Syntax { pos, message: format!("expected an expression, found {}", describe(&other)) }),
        }
    }
}

fn typed_literal(kind: &str, raw: &str) -> Result<Value, String> {
    let unquoted = raw.trim().trim_matches(|c| c == '"' || c == '\'');
    match kind {
        "datetime" => {
            if unquoted.eq_ignore_ascii_case("null") {
                return Ok(Value::Null);
            }
            parse_datetime_ticks(unquoted).map(Value::DateTime).ok_or_else(|| format!("'{raw}' is not a datetime"))
        }
        "timespan" => {
            if unquoted.eq_ignore_ascii_case("null") {
                return Ok(Value::Null);
            }
            parse_timespan_text(unquoted).map(Value::TimeSpan).ok_or_else(|| format!("'{raw}' is not a timespan"))
        }
        "guid" => Ok(Value::str(unquoted)),
        "dynamic" => {
            let v: serde_json::Value = serde_json::from_str(raw)
                .or_else(|_| serde_json::from_str(&raw.replace('\'', "\"")))
                .map_err(|e| format!("'{raw}' is not a dynamic literal: {e}"))?;
            Ok(Value::Dynamic(Arc::new(v)))
        }
        other => Err(format!("unknown literal {other}")),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(w) => format!("'{w}'"),
        Tok::QuotedIdent(w) => format!("['{w}']"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Long(n) => n.to_string(),
        Tok::Real(f) => f.to_string(),
        Tok::Span(_) => "a timespan".into(),
        Tok::Typed(k, _) => format!("{k}(…)"),
        Tok::Sym(s) => format!("'{s}'"),
        Tok::Eof => "the end of the query".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A level is given back on every path out of a rule, errors included: after a chain that fails half way
    /// and a nesting that fails at the bound, the parser is back at level zero.
    #[test]
    fn every_level_is_given_back_on_error_and_success() {
        for src in ["a or b or (c and ", "1 + 2 * (3 - ", &format!("{}1", "(".repeat(MAX_NESTING + 5)), "x.y[0].z or w"] {
            let mut p = Parser { t: lex(src).unwrap(), i: 0, depth: Depth::default() };
            let _ = p.expr();
            assert_eq!(p.depth.0.get(), 0, "{src}");
        }
    }

    #[test]
    fn errors_say_the_line_and_column() {
        let q = "Perf\n| where TimeGenerated > ago(1d)\n| summarize by\n    Computer, ~\n";
        let e = parse(q).unwrap_err();
        assert_eq!(e.to_string(), "syntax error at line 4, column 15: expected an expression, found '~'");
        let e = parse("Perf\n| where x > 1\n| frobnicate").unwrap_err();
        assert!(e.to_string().contains("at line 3, column 3"), "{e}");
        let e = parse("Perf\n| parse x with y").unwrap_err();
        assert!(e.to_string().contains("operator 'parse' at line 2, column 3"), "{e}");
    }
}
