//! Scalar expressions: compiled against a frame's columns (names resolved to positions once, constant
//! subexpressions folded once), then evaluated per row.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value as Json;

use super::ast::{BinOp, Expr};
use super::value::{parse_bool, KType, Key, Value};
use super::{Column, KqlError};
use crate::model::time::{format_ticks, parse_datetime_ticks, TICKS_PER_SEC};

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum CExpr {
    Lit(Value),
    Col(usize),
    /// A value a row carries past its columns, if any: the store's ingestion time (`ingestion_time()`).
    Hidden(usize),
    Neg(Box<CExpr>),
    Bin(BinOp, Box<CExpr>, Box<CExpr>),
    InSet {
        expr: Box<CExpr>,
        set: HashSet<Key>,
        ci: bool,
        negated: bool,
    },
    InList {
        expr: Box<CExpr>,
        list: Vec<CExpr>,
        ci: bool,
        negated: bool,
    },
    Between {
        expr: Box<CExpr>,
        low: Box<CExpr>,
        high: Box<CExpr>,
        negated: bool,
    },
    Call(Func, Vec<CExpr>),
    Member(Box<CExpr>, String),
    Index(Box<CExpr>, Box<CExpr>),
    Regex(Box<CExpr>, Arc<regex::Regex>),
}

/// Scalar functions of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Ago,
    Now,
    ToDateTime,
    ToString,
    ToLong,
    ToReal,
    ToBool,
    Bin,
    Floor,
    StrCat,
    Iff,
    Case,
    Coalesce,
    IsNull,
    IsNotNull,
    IsEmpty,
    IsNotEmpty,
    ParseJson,
    ArrayLength,
    ToLower,
    ToUpper,
    StrLen,
    Substring,
    Split,
    StartOfDay,
    FormatDateTime,
    DateTimeDiff,
    Not,
    Abs,
    Round,
    HasAny,
    Pack,
    PackArray,
    ToTimeSpan,
    Sqrt,
    Log,
    Exp,
    Pow,
    DayOfWeek,
    HourOfDay,
    GeoDistance,
    TypeOf,
    Trim,
    StrcatDelim,
    Replace,
    Extract,
}

fn lookup(name: &str) -> Option<(Func, usize, usize)> {
    use Func::*;
    Some(match name {
        "ago" => (Ago, 1, 1),
        "now" => (Now, 0, 1),
        "todatetime" => (ToDateTime, 1, 1),
        "tostring" => (ToString, 1, 1),
        "tolong" | "toint" => (ToLong, 1, 1),
        "todouble" | "toreal" | "todecimal" => (ToReal, 1, 1),
        "tobool" | "toboolean" => (ToBool, 1, 1),
        "totimespan" => (ToTimeSpan, 1, 1),
        "bin" => (Bin, 2, 2),
        "floor" => (Floor, 2, 2),
        "strcat" => (StrCat, 1, 64),
        "strcat_delim" => (StrcatDelim, 2, 64),
        "iff" | "iif" => (Iff, 3, 3),
        "case" => (Case, 3, 201),
        "coalesce" => (Coalesce, 1, 64),
        "isnull" => (IsNull, 1, 1),
        "isnotnull" => (IsNotNull, 1, 1),
        "isempty" => (IsEmpty, 1, 1),
        "isnotempty" => (IsNotEmpty, 1, 1),
        "parse_json" | "todynamic" | "todynamic_" => (ParseJson, 1, 1),
        "array_length" => (ArrayLength, 1, 1),
        "tolower" => (ToLower, 1, 1),
        "toupper" => (ToUpper, 1, 1),
        "strlen" => (StrLen, 1, 1),
        "substring" => (Substring, 2, 3),
        "split" => (Split, 2, 3),
        "startofday" => (StartOfDay, 1, 1),
        "format_datetime" => (FormatDateTime, 2, 2),
        "datetime_diff" => (DateTimeDiff, 3, 3),
        "not" => (Not, 1, 1),
        "abs" => (Abs, 1, 1),
        "round" => (Round, 1, 2),
        "__has_any" => (HasAny, 1, 1000),
        "pack" | "bag_pack" => (Pack, 0, 128),
        "pack_array" => (PackArray, 0, 128),
        "sqrt" => (Sqrt, 1, 1),
        "log" => (Log, 1, 1),
        "exp" => (Exp, 1, 1),
        "pow" => (Pow, 2, 2),
        "dayofweek" => (DayOfWeek, 1, 1),
        "hourofday" => (HourOfDay, 1, 1),
        "geo_distance_2points" => (GeoDistance, 4, 4),
        "gettype" => (TypeOf, 1, 1),
        "trim" => (Trim, 2, 2),
        "replace_string" => (Replace, 3, 3),
        "extract" => (Extract, 3, 3),
        _ => return None,
    })
}

pub const AGGREGATES: &[&str] = &[
    "count",
    "countif",
    "dcount",
    "dcountif",
    "sum",
    "sumif",
    "avg",
    "avgif",
    "min",
    "max",
    "make_list",
    "make_set",
    "arg_max",
    "arg_min",
    "percentile",
    "take_any",
    "any",
    "stdev",
    "variance",
    "make_bag",
];

/// Scalars bound by `let`.
pub type Scalars = std::collections::HashMap<String, Value>;

pub struct Compiler<'a> {
    pub columns: &'a [Column],
    pub scalars: &'a Scalars,
    pub now: i64,
}

impl Compiler<'_> {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn compile(&self, e: &Expr) -> Result<CExpr, KqlError> {
        let c = match e {
            Expr::Lit(v) => CExpr::Lit(v.clone()),
            Expr::Column(name) => match self.column_index(name) {
                Some(i) => CExpr::Col(i),
                None => match self.scalars.get(name) {
                    Some(v) => CExpr::Lit(v.clone()),
                    None if name == "null" => CExpr::Lit(Value::Null),
                    None => {
                        return Err(KqlError::Semantic(format!(
                            "'{name}' is not a column here (columns: {})",
                            self.columns.iter().map(|c| c.name.as_str()).take(40).collect::<Vec<_>>().join(", ")
                        )))
                    }
                },
            },
            Expr::Star => return Err(KqlError::Semantic("'*' is only allowed in arg_max/arg_min".into())),
            Expr::Neg(x) => CExpr::Neg(Box::new(self.compile(x)?)),
            Expr::Bin(op, l, r) => CExpr::Bin(*op, Box::new(self.compile(l)?), Box::new(self.compile(r)?)),
            Expr::In { expr, list, negated, ci } => {
                let expr = Box::new(self.compile(expr)?);
                let list: Vec<CExpr> = list.iter().map(|x| self.compile(x)).collect::<Result<_, _>>()?;
                // A list of constants (possibly dynamic arrays) becomes a set.
                let mut consts = Vec::new();
                let mut all_const = true;
                for item in &list {
                    match self.fold(item) {
                        CExpr::Lit(Value::Dynamic(d)) if d.is_array() => consts.extend(d.as_array().into_iter().flatten().map(Value::from_dynamic)),
                        CExpr::Lit(v) => consts.push(v),
                        _ => all_const = false,
                    }
                }
                if all_const {
                    let set = consts.iter().map(|v| in_key(v, *ci)).collect();
                    CExpr::InSet { expr, set, ci: *ci, negated: *negated }
                } else {
                    CExpr::InList { expr, list, ci: *ci, negated: *negated }
                }
            }
            Expr::Between { expr, low, high, negated } => CExpr::Between {
                expr: Box::new(self.compile(expr)?),
                low: Box::new(self.compile(low)?),
                high: Box::new(self.compile(high)?),
                negated: *negated,
            },
            // The time the row was ingested, which the store keeps past the table's columns; null once a
            // projection has rebuilt the rows (as in Log Analytics, use it on the table's own rows).
            Expr::Call(name, args) if name == "ingestion_time" && args.is_empty() => CExpr::Hidden(self.columns.len()),
            Expr::Call(name, args) => {
                if AGGREGATES.contains(&name.as_str()) {
                    return Err(KqlError::Semantic(format!("aggregation {name}() is only allowed in summarize")));
                }
                let Some((f, min, max)) = lookup(name) else {
                    return Err(KqlError::Unsupported { pos: None, what: format!("function '{name}'") });
                };
                if args.len() < min || args.len() > max {
                    return Err(KqlError::Semantic(format!("{name}() takes {min} to {max} arguments, not {}", args.len())));
                }
                let args = args.iter().map(|a| self.compile(a)).collect::<Result<Vec<_>, _>>()?;
                CExpr::Call(f, args)
            }
            Expr::Member(base, m) => CExpr::Member(Box::new(self.compile(base)?), m.clone()),
            Expr::Index(base, idx) => {
                // ['@meta'] as a top-level column reference arrives as Column; as an index it is a member.
                CExpr::Index(Box::new(self.compile(base)?), Box::new(self.compile(idx)?))
            }
            Expr::Regex(x, re) => CExpr::Regex(Box::new(self.compile(x)?), re.clone()),
        };
        Ok(self.fold(&c))
    }

    /// Evaluates once what does not depend on the row.
    fn fold(&self, c: &CExpr) -> CExpr {
        if is_const(c) {
            CExpr::Lit(eval(c, &[], self.now))
        } else {
            c.clone()
        }
    }
}

fn is_const(c: &CExpr) -> bool {
    match c {
        CExpr::Lit(_) => true,
        CExpr::Col(_) | CExpr::Hidden(_) => false,
        CExpr::Neg(x) | CExpr::Member(x, _) | CExpr::Regex(x, _) => is_const(x),
        CExpr::Bin(_, l, r) | CExpr::Index(l, r) => is_const(l) && is_const(r),
        CExpr::InSet { expr, .. } => is_const(expr),
        CExpr::InList { expr, list, .. } => is_const(expr) && list.iter().all(is_const),
        CExpr::Between { expr, low, high, .. } => is_const(expr) && is_const(low) && is_const(high),
        CExpr::Call(_, args) => args.iter().all(is_const),
    }
}

fn in_key(v: &Value, ci: bool) -> Key {
    match v {
        Value::String(s) if ci => Key::Str(Arc::from(s.to_lowercase().as_str())),
        Value::Dynamic(d) => Key::from(&Value::from_dynamic(d)),
        other => Key::from(other),
    }
}

/// Static type of a compiled expression over `columns`, for the result's column types.
pub fn infer(c: &CExpr, columns: &[Column]) -> KType {
    use BinOp::*;
    match c {
        CExpr::Lit(v) => v.ktype().unwrap_or(KType::String),
        CExpr::Col(i) => columns[*i].ktype,
        CExpr::Hidden(_) => KType::DateTime,
        CExpr::Neg(x) => infer(x, columns),
        CExpr::Bin(op, l, r) => match op {
            Add | Sub | Mul | Div | Mod => {
                let (a, b) = (infer(l, columns), infer(r, columns));
                match (op, a, b) {
                    (Sub, KType::DateTime, KType::DateTime) => KType::TimeSpan,
                    (_, KType::DateTime, _) | (_, _, KType::DateTime) => KType::DateTime,
                    (_, KType::TimeSpan, _) | (_, _, KType::TimeSpan) => KType::TimeSpan,
                    (_, KType::Real, _) | (_, _, KType::Real) | (_, KType::Dynamic, _) | (_, _, KType::Dynamic) => KType::Real,
                    _ => KType::Long,
                }
            }
            _ => KType::Bool,
        },
        CExpr::InSet { .. } | CExpr::InList { .. } | CExpr::Between { .. } | CExpr::Regex(..) => KType::Bool,
        CExpr::Member(..) | CExpr::Index(..) => KType::Dynamic,
        CExpr::Call(f, args) => {
            use Func::*;
            let first = || args.first().map(|a| infer(a, columns)).unwrap_or(KType::String);
            match f {
                Ago | Now | ToDateTime | StartOfDay => KType::DateTime,
                ToString | StrCat | ToLower | ToUpper | Substring | FormatDateTime | TypeOf | Trim | StrcatDelim | Replace | Extract => KType::String,
                ToLong | ArrayLength | StrLen | DateTimeDiff => KType::Long,
                ToReal | Sqrt | Log | Exp | Pow | GeoDistance => KType::Real,
                ToBool | IsNull | IsNotNull | IsEmpty | IsNotEmpty | Not | HasAny => KType::Bool,
                ParseJson | Split | Pack | PackArray => KType::Dynamic,
                ToTimeSpan | DayOfWeek => KType::TimeSpan,
                HourOfDay => KType::Long,
                Bin | Floor | Abs | Round => first(),
                Iff => args.get(1).map(|a| infer(a, columns)).unwrap_or(KType::String),
                Case => args.get(1).map(|a| infer(a, columns)).unwrap_or(KType::String),
                Coalesce => first(),
            }
        }
    }
}

fn truthy(v: &Value) -> Option<bool> {
    v.as_bool()
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        other => Some(other.to_text()),
    }
}

fn has_term(hay: &str, needle: &str, cs: bool) -> bool {
    // `has` matches whole terms: runs of letters and digits.
    if needle.is_empty() {
        return true;
    }
    let (h, n) = if cs { (hay.to_string(), needle.to_string()) } else { (hay.to_lowercase(), needle.to_lowercase()) };
    let bytes = h.as_bytes();
    let mut start = 0;
    while let Some(off) = h[start..].find(&n) {
        let i = start + off;
        let j = i + n.len();
        let before_ok = i == 0 || !(bytes[i - 1] as char).is_alphanumeric();
        let after_ok = j >= bytes.len() || !(bytes[j] as char).is_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        start = i + 1;
        while start < h.len() && !h.is_char_boundary(start) {
            start += 1;
        }
    }
    false
}

fn member(v: &Value, key: &str) -> Value {
    match v {
        Value::Dynamic(d) => match d.get(key) {
            Some(x) => Value::Dynamic(Arc::new(x.clone())),
            None => Value::Null,
        },
        Value::String(s) => match serde_json::from_str::<Json>(s) {
            Ok(j) => j.get(key).map(|x| Value::Dynamic(Arc::new(x.clone()))).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        },
        _ => Value::Null,
    }
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Value {
    use Value::*;
    let a = if let Dynamic(d) = a { Value::from_dynamic(d) } else { a.clone() };
    let b = if let Dynamic(d) = b { Value::from_dynamic(d) } else { b.clone() };
    match (op, &a, &b) {
        (_, Null, _) | (_, _, Null) => Null,
        (BinOp::Add, DateTime(t), TimeSpan(s)) | (BinOp::Add, TimeSpan(s), DateTime(t)) => DateTime(t + s),
        (BinOp::Sub, DateTime(t), TimeSpan(s)) => DateTime(t - s),
        (BinOp::Sub, DateTime(t), DateTime(u)) => TimeSpan(t - u),
        (BinOp::Add, TimeSpan(x), TimeSpan(y)) => TimeSpan(x + y),
        (BinOp::Sub, TimeSpan(x), TimeSpan(y)) => TimeSpan(x - y),
        (BinOp::Mul, TimeSpan(x), Long(n)) | (BinOp::Mul, Long(n), TimeSpan(x)) => TimeSpan(x * n),
        (BinOp::Mul, TimeSpan(x), Real(f)) | (BinOp::Mul, Real(f), TimeSpan(x)) => TimeSpan((*x as f64 * f) as i64),
        (BinOp::Div, TimeSpan(x), TimeSpan(y)) if *y != 0 => Real(*x as f64 / *y as f64),
        (BinOp::Div, TimeSpan(x), Long(n)) if *n != 0 => TimeSpan(x / n),
        (_, Long(x), Long(y)) => match op {
            BinOp::Add => x.checked_add(*y).map(Long).unwrap_or(Null),
            BinOp::Sub => x.checked_sub(*y).map(Long).unwrap_or(Null),
            BinOp::Mul => x.checked_mul(*y).map(Long).unwrap_or(Null),
            BinOp::Div => x.checked_div(*y).map(Long).unwrap_or(Null),
            BinOp::Mod => x.checked_rem(*y).map(Long).unwrap_or(Null),
            _ => Null,
        },
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => Real(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Mod => x % y,
                _ => return Null,
            }),
            _ => Null,
        },
    }
}

/// Converts to a type as `tolong()`, `todatetime()`… do; null when it does not convert.
pub fn convert(v: &Value, t: KType) -> Value {
    let v = match v {
        Value::Dynamic(d) if t != KType::Dynamic => Value::from_dynamic(d),
        other => other.clone(),
    };
    match (t, &v) {
        (_, Value::Null) => Value::Null,
        (KType::String | KType::Guid, x) => Value::String(Arc::from(x.to_text().as_str())),
        (KType::Long | KType::Int, Value::Long(_)) => v,
        (KType::Long | KType::Int, Value::Real(f)) if f.is_finite() => Value::Long(f.trunc() as i64),
        (KType::Long | KType::Int, Value::Bool(b)) => Value::Long(*b as i64),
        (KType::Long | KType::Int, Value::String(s)) => {
            s.trim().parse::<i64>().map(Value::Long).or_else(|_| s.trim().parse::<f64>().map(|f| Value::Long(f as i64))).unwrap_or(Value::Null)
        }
        (KType::Long | KType::Int, Value::DateTime(t) | Value::TimeSpan(t)) => Value::Long(*t),
        (KType::Real, Value::Long(i)) => Value::Real(*i as f64),
        (KType::Real, Value::Real(_)) => v,
        (KType::Real, Value::String(s)) => s.trim().parse::<f64>().map(Value::Real).unwrap_or(Value::Null),
        (KType::Real, Value::Bool(b)) => Value::Real(*b as i64 as f64),
        (KType::Bool, Value::Bool(_)) => v,
        (KType::Bool, Value::Long(i)) => Value::Bool(*i != 0),
        (KType::Bool, Value::String(s)) => parse_bool(s).map(Value::Bool).unwrap_or(Value::Null),
        (KType::DateTime, Value::DateTime(_)) => v,
        (KType::DateTime, Value::String(s)) => parse_datetime_ticks(s).map(Value::DateTime).unwrap_or(Value::Null),
        (KType::DateTime, Value::Long(i)) => Value::DateTime(*i),
        (KType::TimeSpan, Value::TimeSpan(_)) => v,
        (KType::TimeSpan, Value::String(s)) => super::value::parse_timespan_text(s).map(Value::TimeSpan).unwrap_or(Value::Null),
        (KType::TimeSpan, Value::Long(i)) => Value::TimeSpan(*i),
        (KType::Dynamic, Value::Dynamic(_)) => v,
        (KType::Dynamic, Value::String(s)) => {
            serde_json::from_str::<Json>(s).map(|j| Value::Dynamic(Arc::new(j))).unwrap_or_else(|_| Value::Dynamic(Arc::new(Json::String(s.to_string()))))
        }
        (KType::Dynamic, x) => Value::Dynamic(Arc::new(x.to_json())),
        _ => Value::Null,
    }
}

fn floor_to(v: &Value, step: &Value) -> Value {
    match (v, step) {
        (Value::DateTime(t), Value::TimeSpan(s)) if *s > 0 => Value::DateTime(t.div_euclid(*s) * s),
        (Value::TimeSpan(t), Value::TimeSpan(s)) if *s > 0 => Value::TimeSpan(t.div_euclid(*s) * s),
        (Value::Long(x), Value::Long(s)) if *s > 0 => Value::Long(x.div_euclid(*s) * s),
        (x, s) => match (x.as_f64(), s.as_f64()) {
            (Some(x), Some(s)) if s > 0.0 => Value::Real((x / s).floor() * s),
            _ => Value::Null,
        },
    }
}

pub fn eval(c: &CExpr, row: &[Value], now: i64) -> Value {
    use Value::*;
    match c {
        CExpr::Lit(v) => v.clone(),
        CExpr::Col(i) => row[*i].clone(),
        CExpr::Hidden(i) => row.get(*i).cloned().unwrap_or(Null),
        CExpr::Neg(x) => match eval(x, row, now) {
            Long(i) => Long(-i),
            Real(f) => Real(-f),
            TimeSpan(t) => TimeSpan(-t),
            _ => Null,
        },
        CExpr::Bin(op, l, r) => {
            match op {
                BinOp::And => {
                    let a = truthy(&eval(l, row, now));
                    if a == Some(false) {
                        return Bool(false);
                    }
                    let b = truthy(&eval(r, row, now));
                    return match (a, b) {
                        (_, Some(false)) => Bool(false),
                        (Some(true), Some(true)) => Bool(true),
                        _ => Null,
                    };
                }
                BinOp::Or => {
                    let a = truthy(&eval(l, row, now));
                    if a == Some(true) {
                        return Bool(true);
                    }
                    let b = truthy(&eval(r, row, now));
                    return match (a, b) {
                        (_, Some(true)) => Bool(true),
                        (Some(false), Some(false)) => Bool(false),
                        _ => Null,
                    };
                }
                _ => {}
            }
            let a = eval(l, row, now);
            let b = eval(r, row, now);
            binary(*op, &a, &b)
        }
        CExpr::InSet { expr, set, ci, negated } => {
            let v = eval(expr, row, now);
            if v.is_null() {
                return Bool(*negated);
            }
            let v = if let Dynamic(d) = &v { Value::from_dynamic(d) } else { v };
            let hit = set.contains(&in_key(&v, *ci)) || (*ci && set.contains(&in_key(&Value::str(&v.to_text()), true)));
            Bool(hit != *negated)
        }
        CExpr::InList { expr, list, ci, negated } => {
            let v = eval(expr, row, now);
            let hit = list.iter().any(|item| {
                let x = eval(item, row, now);
                if *ci {
                    v.to_text().to_lowercase() == x.to_text().to_lowercase()
                } else {
                    v.kql_eq(&x) == Some(true)
                }
            });
            Bool(hit != *negated)
        }
        CExpr::Between { expr, low, high, negated } => {
            let v = eval(expr, row, now);
            let (lo, hi) = (eval(low, row, now), eval(high, row, now));
            match (v.kql_cmp(&lo), v.kql_cmp(&hi)) {
                (Some(a), Some(b)) => Bool((a.is_ge() && b.is_le()) != *negated),
                _ => Null,
            }
        }
        CExpr::Member(base, m) => member(&eval(base, row, now), m),
        CExpr::Index(base, idx) => {
            let b = eval(base, row, now);
            let i = eval(idx, row, now);
            match (&b, &i) {
                (Dynamic(d), Long(n)) => {
                    let arr = d.as_array();
                    let n = *n;
                    arr.and_then(|a| {
                        let len = a.len() as i64;
                        let k = if n < 0 { len + n } else { n };
                        (0..len).contains(&k).then(|| a[k as usize].clone())
                    })
                    .map(|x| Dynamic(Arc::new(x)))
                    .unwrap_or(Null)
                }
                (_, String(k)) => member(&b, k),
                _ => Null,
            }
        }
        CExpr::Regex(x, re) => match eval(x, row, now) {
            Null => Null,
            v => Bool(re.is_match(&v.to_text())),
        },
        CExpr::Call(f, args) => call(*f, args, row, now),
    }
}

pub fn binary(op: BinOp, a: &Value, b: &Value) -> Value {
    use Value::*;
    let cmp = || a.kql_cmp(b);
    let texts = || Some((text_of(a)?, text_of(b)?));
    let bool_or_null = |o: Option<bool>| o.map(Bool).unwrap_or(Null);
    match op {
        BinOp::Eq => bool_or_null(cmp().map(|o| o.is_eq())),
        BinOp::Ne => bool_or_null(cmp().map(|o| o.is_ne())),
        BinOp::Lt => bool_or_null(cmp().map(|o| o.is_lt())),
        BinOp::Le => bool_or_null(cmp().map(|o| o.is_le())),
        BinOp::Gt => bool_or_null(cmp().map(|o| o.is_gt())),
        BinOp::Ge => bool_or_null(cmp().map(|o| o.is_ge())),
        BinOp::EqCi => bool_or_null(texts().map(|(x, y)| x.to_lowercase() == y.to_lowercase())),
        BinOp::NeCi => bool_or_null(texts().map(|(x, y)| x.to_lowercase() != y.to_lowercase())),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => arith(op, a, b),
        // String operators treat null as the empty string, as Kusto does.
        _ => {
            let x = a.to_text();
            let y = b.to_text();
            let (xl, yl) = (|| x.to_lowercase(), || y.to_lowercase());
            Bool(match op {
                BinOp::Has => has_term(&x, &y, false),
                BinOp::NotHas => !has_term(&x, &y, false),
                BinOp::HasCs => has_term(&x, &y, true),
                BinOp::NotHasCs => !has_term(&x, &y, true),
                BinOp::Contains => xl().contains(&yl()),
                BinOp::NotContains => !xl().contains(&yl()),
                BinOp::ContainsCs => x.contains(&y),
                BinOp::NotContainsCs => !x.contains(&y),
                BinOp::StartsWith => xl().starts_with(&yl()),
                BinOp::NotStartsWith => !xl().starts_with(&yl()),
                BinOp::EndsWith => xl().ends_with(&yl()),
                BinOp::NotEndsWith => !xl().ends_with(&yl()),
                BinOp::MatchesRegex => match regex::Regex::new(&y) {
                    Ok(re) => re.is_match(&x),
                    Err(_) => return Null,
                },
                _ => return Null,
            })
        }
    }
}

fn call(f: Func, args: &[CExpr], row: &[Value], now: i64) -> Value {
    use Value::*;
    let arg = |i: usize| args.get(i).map(|a| eval(a, row, now)).unwrap_or(Null);
    match f {
        Func::Iff => match truthy(&arg(0)) {
            Some(true) => arg(1),
            _ => arg(2),
        },
        Func::Case => {
            let mut i = 0;
            while i + 1 < args.len() {
                if truthy(&arg(i)) == Some(true) {
                    return arg(i + 1);
                }
                i += 2;
            }
            arg(args.len() - 1)
        }
        Func::Coalesce => args.iter().map(|a| eval(a, row, now)).find(|v| !v.is_null() && !matches!(v, String(s) if s.is_empty())).unwrap_or(Null),
        Func::Ago => match arg(0) {
            TimeSpan(t) => DateTime(now - t),
            _ => Null,
        },
        Func::Now => match arg(0) {
            TimeSpan(t) => DateTime(now + t),
            _ => DateTime(now),
        },
        Func::ToDateTime => convert(&arg(0), KType::DateTime),
        Func::ToString => String(Arc::from(arg(0).to_text().as_str())),
        Func::ToLong => convert(&arg(0), KType::Long),
        Func::ToReal => convert(&arg(0), KType::Real),
        Func::ToBool => convert(&arg(0), KType::Bool),
        Func::ToTimeSpan => convert(&arg(0), KType::TimeSpan),
        Func::Bin | Func::Floor => {
            let v = arg(0);
            let v = if let Dynamic(d) = &v { Value::from_dynamic(d) } else { v };
            floor_to(&v, &arg(1))
        }
        Func::StrCat => String(Arc::from(args.iter().map(|a| eval(a, row, now).to_text()).collect::<std::string::String>().as_str())),
        Func::StrcatDelim => {
            let d = arg(0).to_text();
            String(Arc::from(args[1..].iter().map(|a| eval(a, row, now).to_text()).collect::<Vec<_>>().join(&d).as_str()))
        }
        Func::IsNull => Bool(match arg(0) {
            Null => true,
            Dynamic(d) => d.is_null(),
            _ => false,
        }),
        Func::IsNotNull => Bool(match arg(0) {
            Null => false,
            Dynamic(d) => !d.is_null(),
            _ => true,
        }),
        Func::IsEmpty => Bool(arg(0).to_text().is_empty()),
        Func::IsNotEmpty => Bool(!arg(0).to_text().is_empty()),
        Func::ParseJson => convert(&arg(0), KType::Dynamic),
        Func::ArrayLength => match arg(0) {
            Dynamic(d) => d.as_array().map(|a| Long(a.len() as i64)).unwrap_or(Null),
            _ => Null,
        },
        Func::ToLower => text_of(&arg(0)).map(|s| String(Arc::from(s.to_lowercase().as_str()))).unwrap_or(Null),
        Func::ToUpper => text_of(&arg(0)).map(|s| String(Arc::from(s.to_uppercase().as_str()))).unwrap_or(Null),
        Func::Trim => {
            let re = arg(0).to_text();
            let s = arg(1).to_text();
            match regex::Regex::new(&format!("^(?:{re})+|(?:{re})+$")) {
                Ok(r) => String(Arc::from(r.replace_all(&s, "").as_ref())),
                Err(_) => Null,
            }
        }
        Func::StrLen => text_of(&arg(0)).map(|s| Long(s.chars().count() as i64)).unwrap_or(Null),
        Func::Substring => {
            let s: Vec<char> = arg(0).to_text().chars().collect();
            let start = match arg(1) {
                Long(i) => i.clamp(0, s.len() as i64) as usize,
                _ => return Null,
            };
            let len = match arg(2) {
                Long(n) => n.max(0) as usize,
                Null => s.len(),
                _ => return Null,
            };
            String(Arc::from(s[start..(start + len).min(s.len())].iter().collect::<std::string::String>().as_str()))
        }
        Func::Split => {
            let s = arg(0).to_text();
            let d = arg(1).to_text();
            let parts: Vec<Json> = if d.is_empty() { vec![Json::String(s)] } else { s.split(d.as_str()).map(|p| Json::String(p.to_string())).collect() };
            match arg(2) {
                Null => Dynamic(Arc::new(Json::Array(parts))),
                Long(i) => parts.get(i as usize).map(|p| Dynamic(Arc::new(Json::Array(vec![p.clone()])))).unwrap_or(Null),
                _ => Null,
            }
        }
        Func::StartOfDay => match convert(&arg(0), KType::DateTime) {
            DateTime(t) => DateTime(t.div_euclid(86_400 * TICKS_PER_SEC) * 86_400 * TICKS_PER_SEC),
            _ => Null,
        },
        Func::FormatDateTime => match convert(&arg(0), KType::DateTime) {
            DateTime(t) => String(Arc::from(format_kusto_datetime(t, &arg(1).to_text()).as_str())),
            _ => Null,
        },
        Func::DateTimeDiff => {
            let part = arg(0).to_text().to_lowercase();
            match (convert(&arg(1), KType::DateTime), convert(&arg(2), KType::DateTime)) {
                (DateTime(a), DateTime(b)) => {
                    let per = match part.as_str() {
                        "day" => 86_400 * TICKS_PER_SEC,
                        "hour" => 3600 * TICKS_PER_SEC,
                        "minute" => 60 * TICKS_PER_SEC,
                        "second" => TICKS_PER_SEC,
                        "millisecond" => 10_000,
                        "microsecond" => 10,
                        "week" => 7 * 86_400 * TICKS_PER_SEC,
                        _ => return Null,
                    };
                    Long(a.div_euclid(per) - b.div_euclid(per))
                }
                _ => Null,
            }
        }
        Func::Not => truthy(&arg(0)).map(|b| Bool(!b)).unwrap_or(Null),
        Func::Abs => match arg(0) {
            Long(i) => Long(i.abs()),
            Real(f) => Real(f.abs()),
            TimeSpan(t) => TimeSpan(t.abs()),
            _ => Null,
        },
        Func::Round => {
            let digits = match arg(1) {
                Long(d) => d as i32,
                _ => 0,
            };
            match arg(0).as_f64() {
                Some(x) => {
                    let m = 10f64.powi(digits);
                    Real((x * m).round() / m)
                }
                None => Null,
            }
        }
        Func::HasAny => {
            let hay = arg(0).to_text();
            let mut terms = Vec::new();
            for a in &args[1..] {
                match eval(a, row, now) {
                    Dynamic(d) if d.is_array() => terms.extend(d.as_array().into_iter().flatten().map(|j| Value::from_dynamic(j).to_text())),
                    v => terms.push(v.to_text()),
                }
            }
            Bool(terms.iter().any(|t| has_term(&hay, t, false)))
        }
        Func::Pack => {
            let mut m = serde_json::Map::new();
            let mut i = 0;
            while i + 1 < args.len() {
                m.insert(arg(i).to_text(), arg(i + 1).to_json());
                i += 2;
            }
            Dynamic(Arc::new(Json::Object(m)))
        }
        Func::PackArray => Dynamic(Arc::new(Json::Array(args.iter().map(|a| eval(a, row, now).to_json()).collect()))),
        Func::Sqrt | Func::Log | Func::Exp => match arg(0).as_f64() {
            Some(x) => Real(match f {
                Func::Sqrt => x.sqrt(),
                Func::Log => x.ln(),
                _ => x.exp(),
            }),
            None => Null,
        },
        Func::Pow => match (arg(0).as_f64(), arg(1).as_f64()) {
            (Some(x), Some(y)) => Real(x.powf(y)),
            _ => Null,
        },
        Func::DayOfWeek => match convert(&arg(0), KType::DateTime) {
            // Kusto counts from Sunday: 1970-01-01 was a Thursday (day 4).
            DateTime(t) => TimeSpan(((t.div_euclid(86_400 * TICKS_PER_SEC) + 4).rem_euclid(7)) * 86_400 * TICKS_PER_SEC),
            _ => Null,
        },
        Func::HourOfDay => match convert(&arg(0), KType::DateTime) {
            DateTime(t) => Long(t.div_euclid(3600 * TICKS_PER_SEC).rem_euclid(24)),
            _ => Null,
        },
        Func::GeoDistance => {
            // geo_distance_2points(lon1, lat1, lon2, lat2) in metres, on a sphere.
            match (arg(0).as_f64(), arg(1).as_f64(), arg(2).as_f64(), arg(3).as_f64()) {
                (Some(lon1), Some(lat1), Some(lon2), Some(lat2)) => {
                    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
                    let dp = p2 - p1;
                    let dl = (lon2 - lon1).to_radians();
                    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
                    Real(2.0 * 6_371_008.8 * a.sqrt().atan2((1.0 - a).sqrt()))
                }
                _ => Null,
            }
        }
        Func::TypeOf => String(Arc::from(match arg(0) {
            Null => "null",
            Bool(_) => "bool",
            Long(_) => "long",
            Real(_) => "real",
            String(_) => "string",
            DateTime(_) => "datetime",
            TimeSpan(_) => "timespan",
            Dynamic(d) => match &*d {
                Json::Array(_) => "array",
                Json::Object(_) => "dictionary",
                _ => "dynamic",
            },
        })),
        Func::Replace => String(Arc::from(arg(0).to_text().replace(&arg(1).to_text(), &arg(2).to_text()).as_str())),
        Func::Extract => {
            let re = match regex::Regex::new(&arg(0).to_text()) {
                Ok(r) => r,
                Err(_) => return Null,
            };
            let group = match arg(1) {
                Long(g) => g as usize,
                _ => return Null,
            };
            let s = arg(2).to_text();
            re.captures(&s).and_then(|c| c.get(group)).map(|m| String(Arc::from(m.as_str()))).unwrap_or(Null)
        }
    }
}

/// format_datetime with Kusto's specifiers: yyyy, MM, dd, HH, hh, mm, ss, f…, tt.
fn format_kusto_datetime(ticks: i64, fmt: &str) -> String {
    let iso = format_ticks(ticks);
    let (y, mo, d) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    let (h, mi, s) = (&iso[11..13], &iso[14..16], &iso[17..19]);
    let frac = format!("{:07}", ticks.rem_euclid(TICKS_PER_SEC));
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        match c {
            'y' if n >= 4 => out.push_str(y),
            'y' => out.push_str(&y[2..]),
            'M' => out.push_str(if n >= 2 { mo } else { mo.trim_start_matches('0') }),
            'd' => out.push_str(if n >= 2 { d } else { d.trim_start_matches('0') }),
            'H' => out.push_str(if n >= 2 { h } else { h.trim_start_matches('0') }),
            'h' => {
                let hh = h.parse::<u32>().unwrap_or(0) % 12;
                let hh = if hh == 0 { 12 } else { hh };
                out.push_str(&if n >= 2 { format!("{hh:02}") } else { hh.to_string() });
            }
            'm' => out.push_str(if n >= 2 { mi } else { mi.trim_start_matches('0') }),
            's' => out.push_str(if n >= 2 { s } else { s.trim_start_matches('0') }),
            'f' | 'F' => out.push_str(&frac[..n.min(7)]),
            't' => out.push_str(if h.parse::<u32>().unwrap_or(0) < 12 { "AM" } else { "PM" }),
            other => {
                for _ in 0..n {
                    out.push(other);
                }
            }
        }
        i += n;
    }
    out
}
