//! Tabular operators over frames.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value as Json;

use super::ast::*;
use super::eval::{eval, infer, CExpr, Compiler, Scalars, AGGREGATES};
use super::value::{KType, Key, Value};
use super::{Column, Frame, KqlError, Row};

/// Where a query finds its tables.
pub trait Tables {
    fn table(&self, name: &str) -> Option<Frame>;
}

struct Env<'a> {
    tables: &'a dyn Tables,
    now: i64,
    scalars: Scalars,
    tabular: HashMap<String, Frame>,
}

pub fn execute(q: &Query, tables: &dyn Tables, now: i64) -> Result<Frame, KqlError> {
    let mut env = Env { tables, now, scalars: Scalars::new(), tabular: HashMap::new() };
    for (name, value) in &q.lets {
        match value {
            LetValue::Scalar(e) => {
                // A bare name that is a table is a tabular let after all (`let T = SigninLogs;`).
                if let Expr::Column(n) = e {
                    if let Some(f) = env.tabular.get(n).cloned().or_else(|| env.tables.table(n)) {
                        env.tabular.insert(name.clone(), f);
                        continue;
                    }
                }
                let c = Compiler { columns: &[], scalars: &env.scalars, now }.compile(e)?;
                let v = eval(&c, &[], now);
                env.scalars.insert(name.clone(), v);
            }
            LetValue::Tabular(t) => {
                let f = run_tabular(t, &env)?;
                env.tabular.insert(name.clone(), f);
            }
        }
    }
    run_tabular(&q.body, &env)
}

fn run_tabular(t: &Tabular, env: &Env) -> Result<Frame, KqlError> {
    let mut frame = source(&t.source, env)?;
    for op in &t.ops {
        frame = apply(op, frame, env)?;
    }
    Ok(frame)
}

fn named_table(name: &str, env: &Env) -> Result<Frame, KqlError> {
    env.tabular.get(name).cloned().or_else(|| env.tables.table(name)).ok_or_else(|| KqlError::Semantic(format!("unknown table or tabular expression '{name}'")))
}

fn source(s: &Source, env: &Env) -> Result<Frame, KqlError> {
    match s {
        Source::Name(n) => named_table(n, env),
        Source::Nested(t) => run_tabular(t, env),
        Source::Union { with_source, parts } => union(Frame::default(), None, with_source.as_deref(), parts, env),
        Source::Print(items) => {
            let compiler = Compiler { columns: &[], scalars: &env.scalars, now: env.now };
            let mut columns = Vec::new();
            let mut row = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let c = compiler.compile(&item.expr)?;
                let name = item.name.clone().or_else(|| item.expr.default_name()).unwrap_or_else(|| format!("print_{i}"));
                columns.push(Column { name, ktype: infer(&c, &[]) });
                row.push(eval(&c, &[], env.now));
            }
            Ok(Frame { columns, rows: vec![row.into()] })
        }
        Source::Datatable { columns, values } => {
            let compiler = Compiler { columns: &[], scalars: &env.scalars, now: env.now };
            if values.len() % columns.len() != 0 {
                return Err(KqlError::Semantic("datatable values do not fill whole rows".into()));
            }
            let mut rows = Vec::new();
            for chunk in values.chunks(columns.len()) {
                let mut row = Vec::new();
                for (e, (_, t)) in chunk.iter().zip(columns) {
                    let v = eval(&compiler.compile(e)?, &[], env.now);
                    row.push(super::eval::convert(&v, *t));
                }
                rows.push(row.into());
            }
            Ok(Frame { columns: columns.iter().map(|(n, t)| Column { name: n.clone(), ktype: *t }).collect(), rows })
        }
    }
}

fn union(first: Frame, first_name: Option<&str>, with_source: Option<&str>, parts: &[Tabular], env: &Env) -> Result<Frame, KqlError> {
    let mut frames: Vec<(String, Frame)> = Vec::new();
    if !first.columns.is_empty() || !first.rows.is_empty() {
        frames.push((first_name.unwrap_or("").to_string(), first));
    }
    for p in parts {
        let name = match &p.source {
            Source::Name(n) if p.ops.is_empty() => n.clone(),
            _ => "union_arg".into(),
        };
        frames.push((name, run_tabular(p, env)?));
    }
    let mut columns: Vec<Column> = Vec::new();
    if let Some(ws) = with_source {
        columns.push(Column { name: ws.to_string(), ktype: KType::String });
    }
    for (_, f) in &frames {
        for c in &f.columns {
            if !columns.iter().any(|x| x.name == c.name) {
                columns.push(c.clone());
            }
        }
    }
    let mut rows = Vec::new();
    for (name, f) in &frames {
        let map: Vec<Option<usize>> = columns.iter().map(|c| f.column_index(&c.name)).collect();
        for r in &f.rows {
            let row: Vec<Value> = map
                .iter()
                .enumerate()
                .map(|(i, m)| match m {
                    Some(j) => r[*j].clone(),
                    None if i == 0 && with_source.is_some() => Value::str(name),
                    None => Value::Null,
                })
                .collect();
            rows.push(row.into());
        }
    }
    Ok(Frame { columns, rows })
}

fn compiler<'a>(f: &'a Frame, env: &'a Env) -> Compiler<'a> {
    Compiler { columns: &f.columns, scalars: &env.scalars, now: env.now }
}

fn constant_long(e: &Expr, env: &Env, what: &str) -> Result<usize, KqlError> {
    let c = Compiler { columns: &[], scalars: &env.scalars, now: env.now }.compile(e)?;
    match eval(&c, &[], env.now) {
        Value::Long(n) if n >= 0 => Ok(n as usize),
        _ => Err(KqlError::Semantic(format!("{what} needs a non-negative whole number"))),
    }
}

fn column_name(item: &NamedExpr, i: usize) -> String {
    item.name.clone().or_else(|| item.expr.default_name()).unwrap_or_else(|| format!("Column{}", i + 1))
}

fn apply(op: &Op, f: Frame, env: &Env) -> Result<Frame, KqlError> {
    Ok(match op {
        Op::Render => f,
        Op::Where(e) => {
            let c = compiler(&f, env).compile(e)?;
            if let CExpr::Lit(v) = &c {
                return Ok(if v.as_bool() == Some(true) { f } else { Frame { columns: f.columns, rows: vec![] } });
            }
            let now = env.now;
            let rows = f.rows.into_iter().filter(|r| matches!(eval(&c, r, now), Value::Bool(true))).collect();
            Frame { columns: f.columns, rows }
        }
        Op::Take(n) => {
            let n = constant_long(n, env, "take")?;
            let mut f = f;
            f.rows.truncate(n);
            f
        }
        Op::Count => Frame { columns: vec![Column { name: "Count".into(), ktype: KType::Long }], rows: vec![vec![Value::Long(f.rows.len() as i64)].into()] },
        Op::Project(items) | Op::Extend(items) => {
            let extend = matches!(op, Op::Extend(_));
            let comp = compiler(&f, env);
            let mut compiled = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if matches!(item.expr, Expr::Star) {
                    return Err(KqlError::Unsupported { pos: None, what: "'*' in project".into() });
                }
                let c = comp.compile(&item.expr)?;
                let name = column_name(item, i + if extend { f.columns.len() } else { 0 });
                compiled.push((name, c));
            }
            let mut columns = if extend { f.columns.clone() } else { Vec::new() };
            // Where each output value comes from: an input column or a computed expression.
            enum Slot {
                Keep(usize),
                Calc(usize),
            }
            let mut slots: Vec<Slot> = if extend { (0..f.columns.len()).map(Slot::Keep).collect() } else { Vec::new() };
            for (k, (name, c)) in compiled.iter().enumerate() {
                let col = Column { name: name.clone(), ktype: infer(c, &f.columns) };
                let slot = match c {
                    CExpr::Col(i) => Slot::Keep(*i),
                    _ => Slot::Calc(k),
                };
                if let Some(pos) = columns.iter().position(|x| x.name == *name) {
                    columns[pos] = col;
                    slots[pos] = slot;
                } else {
                    columns.push(col);
                    slots.push(slot);
                }
            }
            let now = env.now;
            let rows = f
                .rows
                .iter()
                .map(|r| {
                    slots
                        .iter()
                        .map(|s| match s {
                            Slot::Keep(i) => r[*i].clone(),
                            Slot::Calc(k) => eval(&compiled[*k].1, r, now),
                        })
                        .collect::<Vec<_>>()
                        .into()
                })
                .collect();
            Frame { columns, rows }
        }
        Op::ProjectAway(names) | Op::ProjectKeep(names) => {
            let keep = matches!(op, Op::ProjectKeep(_));
            let matches = |col: &str, pat: &str| match pat.strip_suffix('*') {
                Some(prefix) => col.starts_with(prefix),
                None => col == pat,
            };
            for n in names {
                if !n.ends_with('*') && f.column_index(n).is_none() {
                    return Err(KqlError::Semantic(format!("'{n}' is not a column here")));
                }
            }
            let idx: Vec<usize> = (0..f.columns.len()).filter(|i| names.iter().any(|n| matches(&f.columns[*i].name, n)) == keep).collect();
            select(&f, &idx)
        }
        Op::ProjectRename(pairs) => {
            let mut f = f;
            for (new, old) in pairs {
                let i = f.column_index(old).ok_or_else(|| KqlError::Semantic(format!("'{old}' is not a column here")))?;
                f.columns[i].name = new.clone();
            }
            f
        }
        Op::Sort(keys) => sort(f, keys, env)?,
        Op::Top { n, key } => {
            let n = constant_long(n, env, "top")?;
            let mut f = sort(f, std::slice::from_ref(key), env)?;
            f.rows.truncate(n);
            f
        }
        Op::Distinct(items) => {
            let f = if items.len() == 1 && matches!(items[0].expr, Expr::Star) { f } else { apply(&Op::Project(items.clone()), f, env)? };
            let mut seen = HashSet::new();
            let width = f.columns.len();
            let rows = f.rows.into_iter().filter(|r| seen.insert(r.iter().take(width).map(Key::from).collect::<Vec<_>>())).collect();
            Frame { columns: f.columns, rows }
        }
        Op::Summarize { aggs, by } => summarize(f, aggs, by, env)?,
        Op::Join { kind, right, on } => join(f, *kind, run_tabular(right, env)?, on)?,
        Op::Union { with_source, parts } => union(f, None, with_source.as_deref(), parts, env)?,
        Op::MvExpand { column, alias, to } => {
            let src = f.column_index(column).ok_or_else(|| KqlError::Semantic(format!("'{column}' is not a column here")))?;
            let mut columns = f.columns.clone();
            // With `Name = Column`, the expanded values go to a new column and the array stays.
            let i = match alias {
                Some(a) => {
                    columns.push(Column { name: a.clone(), ktype: KType::Dynamic });
                    columns.len() - 1
                }
                None => src,
            };
            columns[i].ktype = to.unwrap_or(KType::Dynamic);
            let mut rows = Vec::new();
            for r in &f.rows {
                let items: Vec<Json> = match &r[src] {
                    Value::Dynamic(d) => match &**d {
                        Json::Array(a) => a.clone(),
                        Json::Object(m) => m.iter().map(|(k, v)| serde_json::json!({ k: v })).collect(),
                        other => vec![other.clone()],
                    },
                    other => vec![other.to_json()],
                };
                for it in items {
                    // The columns only: a value a stored row carries past them (its ingestion time) stays behind.
                    let mut row: Vec<Value> = r[..f.columns.len()].to_vec();
                    if alias.is_some() {
                        row.push(Value::Null);
                    }
                    let v = Value::Dynamic(Arc::new(it));
                    row[i] = match to {
                        Some(t) => super::eval::convert(&v, *t),
                        None => v,
                    };
                    rows.push(row.into());
                }
            }
            Frame { columns, rows }
        }
    })
}

fn select(f: &Frame, idx: &[usize]) -> Frame {
    Frame {
        columns: idx.iter().map(|i| f.columns[*i].clone()).collect(),
        rows: f.rows.iter().map(|r| idx.iter().map(|i| r[*i].clone()).collect::<Vec<_>>().into()).collect(),
    }
}

fn sort(f: Frame, keys: &[SortKey], env: &Env) -> Result<Frame, KqlError> {
    let comp = compiler(&f, env);
    let compiled: Vec<(CExpr, bool, bool)> =
        keys.iter().map(|k| Ok((comp.compile(&k.expr)?, k.desc, k.nulls_first.unwrap_or(!k.desc)))).collect::<Result<_, KqlError>>()?;
    let now = env.now;
    let mut keyed: Vec<(Vec<Value>, Row)> = f.rows.into_iter().map(|r| (compiled.iter().map(|(c, _, _)| eval(c, &r, now)).collect(), r)).collect();
    keyed.sort_by(|(a, _), (b, _)| {
        for (i, (_, desc, nulls_first)) in compiled.iter().enumerate() {
            let (x, y) = (&a[i], &b[i]);
            let o = match (x.is_null(), y.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => {
                    if *nulls_first {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    }
                }
                (false, true) => {
                    if *nulls_first {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    }
                }
                (false, false) => {
                    let o = x.sort_cmp(y);
                    if *desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(Frame { columns: f.columns, rows: keyed.into_iter().map(|(_, r)| r).collect() })
}

enum AggKind {
    Count,
    CountIf(CExpr),
    DCount(CExpr, Option<CExpr>),
    Sum(CExpr, Option<CExpr>),
    Avg(CExpr, Option<CExpr>),
    Min(CExpr),
    Max(CExpr),
    MakeList(CExpr, usize),
    MakeSet(CExpr, usize),
    MakeBag(CExpr),
    Arg { expr: CExpr, cols: Vec<usize>, max: bool },
    Percentile(CExpr, f64),
    Any(CExpr),
    Stdev(CExpr, bool),
}

#[derive(Clone)]
enum State {
    Count(i64),
    Set(HashSet<Key>),
    Sum(Option<Value>),
    Avg(f64, i64),
    Best(Option<Value>),
    List(Vec<Json>, HashSet<String>),
    Bag(serde_json::Map<String, Json>),
    Arg(Option<(Value, Row)>),
    Nums(Vec<Value>),
    Any(Option<Value>),
    Moments(f64, f64, i64),
}

struct Agg {
    kind: AggKind,
    /// Output columns of this aggregation (arg_max/arg_min produce several).
    columns: Vec<Column>,
}

fn default_agg_name(f: &str, args: &[Expr]) -> String {
    let arg = args.first().and_then(Expr::default_name);
    match (f, arg) {
        ("count", _) => "count_".into(),
        ("countif", _) => "countif_".into(),
        ("make_list", Some(a)) => format!("list_{a}"),
        ("make_set", Some(a)) => format!("set_{a}"),
        ("make_bag", Some(a)) => format!("bag_{a}"),
        ("percentile", Some(a)) => {
            let p = match args.get(1) {
                Some(Expr::Lit(v)) => v.to_text().replace('.', "_"),
                _ => "p".into(),
            };
            format!("percentile_{a}_{p}")
        }
        ("take_any" | "any", Some(a)) => a,
        (f, Some(a)) => format!("{f}_{a}"),
        (f, None) => format!("{f}_"),
    }
}

fn build_agg(item: &NamedExpr, input: &Frame, env: &Env, by_names: &[String]) -> Result<Agg, KqlError> {
    let Expr::Call(fname, args) = &item.expr else {
        return Err(KqlError::Semantic("summarize takes aggregations such as count() or max(x)".into()));
    };
    if !AGGREGATES.contains(&fname.as_str()) {
        return Err(KqlError::Unsupported { pos: None, what: format!("aggregation '{fname}'") });
    }
    let comp = compiler(input, env);
    let arg = |i: usize| -> Result<CExpr, KqlError> {
        args.get(i).map(|a| comp.compile(a)).unwrap_or_else(|| Err(KqlError::Semantic(format!("{fname}() needs argument {}", i + 1))))
    };
    let opt = |i: usize| -> Result<Option<CExpr>, KqlError> { args.get(i).map(|a| comp.compile(a)).transpose() };
    let name = item.name.clone().unwrap_or_else(|| default_agg_name(fname, args));
    let one = |t: KType| vec![Column { name: name.clone(), ktype: t }];
    let max_items = |i: usize| -> Result<usize, KqlError> {
        match args.get(i) {
            Some(e) => constant_long(e, env, fname),
            None => Ok(1_048_576),
        }
    };
    Ok(match fname.as_str() {
        "count" => Agg { kind: AggKind::Count, columns: one(KType::Long) },
        "countif" => Agg { kind: AggKind::CountIf(arg(0)?), columns: one(KType::Long) },
        "dcount" => Agg { kind: AggKind::DCount(arg(0)?, None), columns: one(KType::Long) },
        "dcountif" => Agg { kind: AggKind::DCount(arg(0)?, Some(arg(1)?)), columns: one(KType::Long) },
        "sum" | "sumif" => {
            let e = arg(0)?;
            let t = match infer(&e, &input.columns) {
                KType::Long | KType::Int => KType::Long,
                KType::TimeSpan => KType::TimeSpan,
                _ => KType::Real,
            };
            let cond = if fname == "sumif" { Some(arg(1)?) } else { None };
            Agg { kind: AggKind::Sum(e, cond), columns: one(t) }
        }
        "avg" | "avgif" => {
            let cond = if fname == "avgif" { Some(arg(1)?) } else { None };
            Agg { kind: AggKind::Avg(arg(0)?, cond), columns: one(KType::Real) }
        }
        "min" | "max" => {
            let e = arg(0)?;
            let t = infer(&e, &input.columns);
            Agg { kind: if fname == "min" { AggKind::Min(e) } else { AggKind::Max(e) }, columns: one(t) }
        }
        "make_list" => Agg { kind: AggKind::MakeList(arg(0)?, max_items(1)?), columns: one(KType::Dynamic) },
        "make_set" => Agg { kind: AggKind::MakeSet(arg(0)?, max_items(1)?), columns: one(KType::Dynamic) },
        "make_bag" => Agg { kind: AggKind::MakeBag(arg(0)?), columns: one(KType::Dynamic) },
        "percentile" => {
            let e = arg(0)?;
            let p = match opt(1)? {
                Some(CExpr::Lit(v)) => v.as_f64().ok_or_else(|| KqlError::Semantic("percentile needs a number".into()))?,
                _ => return Err(KqlError::Semantic("percentile(x, p) needs a constant p".into())),
            };
            let t = infer(&e, &input.columns);
            Agg { kind: AggKind::Percentile(e, p), columns: one(t) }
        }
        "take_any" | "any" => {
            let e = arg(0)?;
            let t = infer(&e, &input.columns);
            Agg { kind: AggKind::Any(e), columns: one(t) }
        }
        "stdev" | "variance" => Agg { kind: AggKind::Stdev(arg(0)?, fname == "stdev"), columns: one(KType::Real) },
        "arg_max" | "arg_min" => {
            let e = arg(0)?;
            let first_name = item.name.clone().or_else(|| args[0].default_name()).unwrap_or_else(|| format!("{}_", fname));
            let mut columns = vec![Column { name: first_name.clone(), ktype: infer(&e, &input.columns) }];
            let mut cols = Vec::new();
            for a in &args[1..] {
                match a {
                    Expr::Star => {
                        for (i, c) in input.columns.iter().enumerate() {
                            if c.name != first_name && !by_names.contains(&c.name) && !cols.contains(&i) {
                                cols.push(i);
                                columns.push(c.clone());
                            }
                        }
                    }
                    Expr::Column(n) => {
                        let i = input.column_index(n).ok_or_else(|| KqlError::Semantic(format!("'{n}' is not a column here")))?;
                        if !cols.contains(&i) {
                            cols.push(i);
                            columns.push(input.columns[i].clone());
                        }
                    }
                    _ => return Err(KqlError::Semantic(format!("{fname}() returns columns by name or *"))),
                }
            }
            Agg { kind: AggKind::Arg { expr: e, cols, max: fname == "arg_max" }, columns }
        }
        other => return Err(KqlError::Unsupported { pos: None, what: format!("aggregation '{other}'") }),
    })
}

fn init(kind: &AggKind) -> State {
    match kind {
        AggKind::Count | AggKind::CountIf(_) => State::Count(0),
        AggKind::DCount(..) => State::Set(HashSet::new()),
        AggKind::Sum(..) => State::Sum(None),
        AggKind::Avg(..) => State::Avg(0.0, 0),
        AggKind::Min(_) | AggKind::Max(_) => State::Best(None),
        AggKind::MakeList(..) | AggKind::MakeSet(..) => State::List(Vec::new(), HashSet::new()),
        AggKind::MakeBag(_) => State::Bag(serde_json::Map::new()),
        AggKind::Arg { .. } => State::Arg(None),
        AggKind::Percentile(..) => State::Nums(Vec::new()),
        AggKind::Any(_) => State::Any(None),
        AggKind::Stdev(..) => State::Moments(0.0, 0.0, 0),
    }
}

fn cond_ok(c: &Option<CExpr>, r: &Row, now: i64) -> bool {
    c.as_ref().is_none_or(|c| matches!(eval(c, r, now), Value::Bool(true)))
}

fn update(kind: &AggKind, st: &mut State, r: &Row, now: i64) {
    match (kind, st) {
        (AggKind::Count, State::Count(n)) => *n += 1,
        (AggKind::CountIf(c), State::Count(n)) => {
            if matches!(eval(c, r, now), Value::Bool(true)) {
                *n += 1
            }
        }
        (AggKind::DCount(e, c), State::Set(s))
            if cond_ok(c, r, now) => {
                let v = eval(e, r, now);
                if !v.is_null() {
                    s.insert(Key::from(&v));
                }
            }
        (AggKind::Sum(e, c), State::Sum(acc))
            if cond_ok(c, r, now) => {
                let v = eval(e, r, now);
                if !v.is_null() {
                    *acc = Some(match acc.take() {
                        None => v,
                        Some(a) => super::eval::binary(BinOp::Add, &a, &v),
                    });
                }
            }
        (AggKind::Avg(e, c), State::Avg(mean, n))
            // A running mean: equal values average to themselves exactly, unlike sum / n.
            if cond_ok(c, r, now) => {
                if let Some(x) = eval(e, r, now).as_f64() {
                    *n += 1;
                    *mean += (x - *mean) / *n as f64;
                }
            }
        (AggKind::Min(e), State::Best(b)) | (AggKind::Max(e), State::Best(b)) => {
            let v = eval(e, r, now);
            if v.is_null() {
                return;
            }
            let better = match b {
                None => true,
                Some(cur) => {
                    let o = v.sort_cmp(cur);
                    if matches!(kind, AggKind::Min(_)) { o.is_lt() } else { o.is_gt() }
                }
            };
            if better {
                *b = Some(v);
            }
        }
        (AggKind::MakeList(e, max), State::List(l, _)) => {
            let v = eval(e, r, now);
            if !v.is_null() && l.len() < *max {
                l.push(v.to_json());
            }
        }
        (AggKind::MakeSet(e, max), State::List(l, seen)) => {
            let v = eval(e, r, now);
            if !v.is_null() && l.len() < *max {
                let j = v.to_json();
                let flat: Vec<Json> = match j {
                    Json::Array(a) => a,
                    other => vec![other],
                };
                for x in flat {
                    if l.len() < *max && seen.insert(x.to_string()) {
                        l.push(x);
                    }
                }
            }
        }
        (AggKind::MakeBag(e), State::Bag(m)) => {
            if let Value::Dynamic(d) = eval(e, r, now) {
                if let Json::Object(o) = &*d {
                    for (k, v) in o {
                        m.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        (AggKind::Arg { expr, max, .. }, State::Arg(best)) => {
            let v = eval(expr, r, now);
            if v.is_null() {
                return;
            }
            let better = match best {
                None => true,
                Some((cur, _)) => {
                    let o = v.sort_cmp(cur);
                    if *max { o.is_gt() } else { o.is_lt() }
                }
            };
            if better {
                *best = Some((v, r.clone()));
            }
        }
        (AggKind::Percentile(e, _), State::Nums(v)) => {
            let x = eval(e, r, now);
            if !x.is_null() {
                v.push(x);
            }
        }
        (AggKind::Any(e), State::Any(a))
            if a.is_none() => {
                let v = eval(e, r, now);
                if !v.is_null() {
                    *a = Some(v);
                }
            }
        (AggKind::Stdev(e, _), State::Moments(mean, m2, n)) => {
            if let Some(x) = eval(e, r, now).as_f64() {
                *n += 1;
                let d = x - *mean;
                *mean += d / *n as f64;
                *m2 += d * (x - *mean);
            }
        }
        _ => {}
    }
}

fn finish(agg: &Agg, st: State, out: &mut Vec<Value>) {
    match (&agg.kind, st) {
        (_, State::Count(n)) => out.push(Value::Long(n)),
        (_, State::Set(s)) => out.push(Value::Long(s.len() as i64)),
        (_, State::Sum(acc)) => out.push(acc.map(|v| super::eval::convert(&v, agg.columns[0].ktype)).unwrap_or(match agg.columns[0].ktype {
            KType::Long => Value::Long(0),
            KType::TimeSpan => Value::TimeSpan(0),
            _ => Value::Real(0.0),
        })),
        (_, State::Avg(mean, n)) => out.push(if n == 0 { Value::Null } else { Value::Real(mean) }),
        (_, State::Best(b)) => out.push(b.unwrap_or(Value::Null)),
        (_, State::List(l, _)) => out.push(Value::Dynamic(Arc::new(Json::Array(l)))),
        (_, State::Bag(m)) => out.push(Value::Dynamic(Arc::new(Json::Object(m)))),
        (AggKind::Arg { cols, .. }, State::Arg(best)) => match best {
            Some((v, row)) => {
                out.push(v);
                out.extend(cols.iter().map(|i| row[*i].clone()));
            }
            None => out.extend(std::iter::repeat_n(Value::Null, cols.len() + 1)),
        },
        (AggKind::Percentile(_, p), State::Nums(mut v)) => {
            if v.is_empty() {
                out.push(Value::Null);
            } else {
                v.sort_by(|a, b| a.sort_cmp(b));
                // Nearest rank.
                let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
                out.push(v[rank.min(v.len()) - 1].clone());
            }
        }
        (_, State::Any(a)) => out.push(a.unwrap_or(Value::Null)),
        (AggKind::Stdev(_, stdev), State::Moments(_, m2, n)) => {
            if n < 2 {
                out.push(Value::Real(0.0));
            } else {
                let var = m2 / (n - 1) as f64;
                out.push(Value::Real(if *stdev { var.sqrt() } else { var }));
            }
        }
        _ => out.push(Value::Null),
    }
}

fn summarize(f: Frame, aggs: &[NamedExpr], by: &[NamedExpr], env: &Env) -> Result<Frame, KqlError> {
    let comp = compiler(&f, env);
    let mut by_compiled = Vec::new();
    let mut columns = Vec::new();
    for (i, b) in by.iter().enumerate() {
        let c = comp.compile(&b.expr)?;
        columns.push(Column { name: column_name(b, i), ktype: infer(&c, &f.columns) });
        by_compiled.push(c);
    }
    let by_names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let built: Vec<Agg> = aggs.iter().map(|a| build_agg(a, &f, env, &by_names)).collect::<Result<_, _>>()?;
    for a in &built {
        columns.extend(a.columns.iter().cloned());
    }
    let now = env.now;
    let mut groups: HashMap<Vec<Key>, usize> = HashMap::new();
    let mut keys: Vec<Vec<Value>> = Vec::new();
    let mut states: Vec<Vec<State>> = Vec::new();
    let fresh: Vec<State> = built.iter().map(|a| init(&a.kind)).collect();
    for r in &f.rows {
        let kv: Vec<Value> = by_compiled.iter().map(|c| eval(c, r, now)).collect();
        let k: Vec<Key> = kv.iter().map(Key::from).collect();
        let g = match groups.get(&k) {
            Some(g) => *g,
            None => {
                let g = keys.len();
                groups.insert(k, g);
                keys.push(kv);
                states.push(fresh.clone());
                g
            }
        };
        for (a, st) in built.iter().zip(states[g].iter_mut()) {
            update(&a.kind, st, r, now);
        }
    }
    // Without `by`, summarize yields one row even over no input.
    if by.is_empty() && keys.is_empty() {
        keys.push(Vec::new());
        states.push(fresh);
    }
    let rows = keys
        .into_iter()
        .zip(states)
        .map(|(mut k, st)| {
            for (a, s) in built.iter().zip(st) {
                finish(a, s, &mut k);
            }
            k.into()
        })
        .collect();
    Ok(Frame { columns, rows })
}

fn join(left: Frame, kind: JoinKind, right: Frame, on: &[(String, String)]) -> Result<Frame, KqlError> {
    let li: Vec<usize> = on
        .iter()
        .map(|(l, _)| left.column_index(l).ok_or_else(|| KqlError::Semantic(format!("join key '{l}' is not a column of the left side"))))
        .collect::<Result<_, _>>()?;
    let ri: Vec<usize> = on
        .iter()
        .map(|(_, r)| right.column_index(r).ok_or_else(|| KqlError::Semantic(format!("join key '{r}' is not a column of the right side"))))
        .collect::<Result<_, _>>()?;
    let key = |row: &Row, idx: &[usize]| -> Option<Vec<Key>> { idx.iter().map(|i| if row[*i].is_null() { None } else { Some(Key::from(&row[*i])) }).collect() };
    let mut index: HashMap<Vec<Key>, Vec<usize>> = HashMap::new();
    for (j, r) in right.rows.iter().enumerate() {
        if let Some(k) = key(r, &ri) {
            index.entry(k).or_default().push(j);
        }
    }
    if matches!(kind, JoinKind::LeftAnti | JoinKind::LeftSemi) {
        let semi = kind == JoinKind::LeftSemi;
        let rows = left.rows.into_iter().filter(|r| key(r, &li).is_some_and(|k| index.contains_key(&k)) == semi).collect();
        return Ok(Frame { columns: left.columns, rows });
    }
    let mut columns = left.columns.clone();
    for c in &right.columns {
        let mut name = c.name.clone();
        let mut n = 1;
        while columns.iter().any(|x| x.name == name) {
            name = format!("{}{n}", c.name);
            n += 1;
        }
        columns.push(Column { name, ktype: c.ktype });
    }
    let (lw, rw) = (left.columns.len(), right.columns.len());
    let mut rows: Vec<Row> = Vec::new();
    let mut right_used = vec![false; right.rows.len()];
    let mut seen_left = HashSet::new();
    for l in &left.rows {
        let k = key(l, &li);
        if kind == JoinKind::InnerUnique {
            if let Some(k) = &k {
                if !seen_left.insert(k.clone()) {
                    continue;
                }
            }
        }
        let matches = k.as_ref().and_then(|k| index.get(k));
        match matches {
            Some(js) => {
                for j in js {
                    right_used[*j] = true;
                    rows.push(l.iter().take(lw).chain(right.rows[*j].iter().take(rw)).cloned().collect::<Vec<_>>().into());
                }
            }
            None if matches!(kind, JoinKind::LeftOuter | JoinKind::FullOuter) => {
                rows.push(l.iter().take(lw).cloned().chain(std::iter::repeat_n(Value::Null, rw)).collect::<Vec<_>>().into());
            }
            None => {}
        }
    }
    if matches!(kind, JoinKind::RightOuter | JoinKind::FullOuter) {
        for (j, r) in right.rows.iter().enumerate() {
            if !right_used[j] {
                rows.push(std::iter::repeat_n(Value::Null, lw).chain(r.iter().take(rw).cloned()).collect::<Vec<_>>().into());
            }
        }
    }
    Ok(Frame { columns, rows })
}
