//! The syntax tree of the KQL subset.

use super::value::Value;

#[derive(Debug, Clone)]
pub struct Query {
    pub lets: Vec<(String, LetValue)>,
    pub body: Tabular,
}

#[derive(Debug, Clone)]
pub enum LetValue {
    Scalar(Expr),
    Tabular(Tabular),
}

#[derive(Debug, Clone)]
pub struct Tabular {
    pub source: Source,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone)]
pub enum Source {
    /// A table or a tabular `let`.
    Name(String),
    Union {
        with_source: Option<String>,
        parts: Vec<Tabular>,
    },
    Datatable {
        columns: Vec<(String, super::value::KType)>,
        values: Vec<Expr>,
    },
    Print(Vec<NamedExpr>),
    Nested(Box<Tabular>),
}

#[derive(Debug, Clone)]
pub struct NamedExpr {
    pub name: Option<String>,
    pub expr: Expr,
}

#[derive(Debug, Clone)]
pub struct SortKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    InnerUnique,
    LeftOuter,
    LeftAnti,
    LeftSemi,
    RightOuter,
    FullOuter,
}

#[derive(Debug, Clone)]
pub enum Op {
    Where(Expr),
    Project(Vec<NamedExpr>),
    ProjectAway(Vec<String>),
    ProjectKeep(Vec<String>),
    ProjectRename(Vec<(String, String)>),
    Extend(Vec<NamedExpr>),
    Summarize { aggs: Vec<NamedExpr>, by: Vec<NamedExpr> },
    Sort(Vec<SortKey>),
    Top { n: Expr, key: SortKey },
    Take(Expr),
    Count,
    Distinct(Vec<NamedExpr>),
    Join { kind: JoinKind, right: Tabular, on: Vec<(String, String)> },
    Union { with_source: Option<String>, parts: Vec<Tabular> },
    MvExpand { column: String, alias: Option<String>, to: Option<super::value::KType> },
    Render,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    EqCi,
    NeCi,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Has,
    NotHas,
    HasCs,
    NotHasCs,
    Contains,
    NotContains,
    ContainsCs,
    NotContainsCs,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    MatchesRegex,
    HasAny,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Lit(Value),
    Column(String),
    /// `*` as a function argument (arg_max(x, *)).
    Star,
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
        ci: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Call(String, Vec<Expr>),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    /// A compiled regex for `matches regex` with a literal pattern.
    Regex(Box<Expr>, std::sync::Arc<regex::Regex>),
}

impl Expr {
    /// The column name a projection of this expression gets when none is given.
    pub fn default_name(&self) -> Option<String> {
        match self {
            Expr::Column(c) => Some(c.clone()),
            Expr::Member(base, m) => base.default_name().map(|b| format!("{b}_{m}")),
            Expr::Index(base, idx) => match (base.default_name(), &**idx) {
                (Some(b), Expr::Lit(Value::String(s))) => Some(format!("{b}_{s}")),
                (Some(b), Expr::Lit(v)) => Some(format!("{b}_{}", v.to_text())),
                _ => None,
            },
            Expr::Call(f, args)
                if matches!(f.as_str(), "bin" | "floor" | "startofday" | "tostring" | "todatetime" | "tolong" | "toint" | "todouble" | "toreal" | "tobool") =>
            {
                args.first().and_then(Expr::default_name)
            }
            _ => None,
        }
    }
}
