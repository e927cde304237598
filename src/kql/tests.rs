use std::collections::HashMap;

use super::value::{KType, Value};
use super::*;
use crate::model::time::{parse_datetime_ticks, TICKS_PER_SEC};

struct T(HashMap<String, Frame>);

impl Tables for T {
    fn table(&self, name: &str) -> Option<Frame> {
        self.0.get(name).cloned()
    }
}

fn dt(s: &str) -> Value {
    Value::DateTime(parse_datetime_ticks(s).unwrap())
}

fn frame(cols: &[(&str, KType)], rows: Vec<Vec<Value>>) -> Frame {
    Frame { columns: cols.iter().map(|(n, t)| Column { name: n.to_string(), ktype: *t }).collect(), rows: rows.into_iter().map(Into::into).collect() }
}

fn dynj(s: &str) -> Value {
    Value::Dynamic(std::sync::Arc::new(serde_json::from_str(s).unwrap()))
}

fn tables() -> T {
    let noxys = frame(
        &[
            ("TimeGenerated", KType::DateTime),
            ("EventType", KType::String),
            ("UserId", KType::String),
            ("PlatformId", KType::String),
            ("RiskScore", KType::Real),
            ("PolicyDecisions", KType::Dynamic),
        ],
        vec![
            vec![
                dt("2026-03-20T14:05:00Z"),
                Value::str("interaction.policy_violated"),
                Value::str("alice"),
                Value::str("deepseek"),
                Value::Real(0.95),
                dynj(r#"[{"action":"block"}]"#),
            ],
            vec![
                dt("2026-03-20T14:35:00Z"),
                Value::str("interaction.policy_violated"),
                Value::str("alice"),
                Value::str("chatgpt"),
                Value::Real(0.5),
                dynj(r#"[{"action":"coach"}]"#),
            ],
            vec![dt("2026-03-20T15:10:00Z"), Value::str("interaction.high_risk"), Value::str("bob"), Value::str("grok"), Value::Real(0.9), Value::Null],
            vec![dt("2026-03-20T15:20:00Z"), Value::str("interaction.created"), Value::Null, Value::str("claude"), Value::Null, Value::Null],
        ],
    );
    let users = frame(
        &[("UserId", KType::String), ("Dept", KType::String)],
        vec![vec![Value::str("alice"), Value::str("finance")], vec![Value::str("carol"), Value::str("it")]],
    );
    T(HashMap::from([("NoxysEvents_CL".to_string(), noxys), ("Users".to_string(), users)]))
}

fn now() -> i64 {
    parse_datetime_ticks("2026-03-20T16:00:00Z").unwrap()
}

fn q(query: &str) -> Frame {
    match run(query, &tables(), now()) {
        Ok(f) => f,
        Err(e) => panic!("{query}: {e}"),
    }
}

fn texts(f: &Frame) -> Vec<Vec<String>> {
    f.rows.iter().map(|r| r.iter().map(|v| v.to_text()).collect()).collect()
}

#[test]
fn seed_rules_and_tiles_run() {
    let f = q("NoxysEvents_CL | where EventType == \"interaction.policy_violated\" | summarize ViolationCount=count() by UserId, PlatformId, bin(TimeGenerated, 1h) | where ViolationCount > 0 | project TimeGenerated, UserId, PlatformId, ViolationCount");
    assert_eq!(f.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["TimeGenerated", "UserId", "PlatformId", "ViolationCount"]);
    assert_eq!(texts(&f)[0], ["2026-03-20T14:00:00Z", "alice", "deepseek", "1"]);
    let f = q("NoxysEvents_CL | where EventType == \"interaction.policy_violated\" | where PolicyDecisions contains \"block\" | where PlatformId !in (\"chatgpt\", \"claude\", \"gemini\") | summarize BlockCount=count() by UserId, PlatformId, TimeGenerated");
    assert_eq!(texts(&f), [["alice", "deepseek", "2026-03-20T14:05:00Z", "1"]]);
    let f = q("NoxysEvents_CL | where isnotnull(RiskScore) | summarize AvgRisk=avg(RiskScore) by bin(TimeGenerated, 1h) | render timechart");
    assert_eq!(f.rows.len(), 2);
    let f = q("NoxysEvents_CL | where EventType == 'interaction.policy_violated' | summarize ViolationCount=count() by UserId | top 10 by ViolationCount");
    assert_eq!(texts(&f), [["alice", "2"]]);
    let f = q("NoxysEvents_CL | where TimeGenerated > ago(1h) | take 10");
    assert_eq!(f.rows.len(), 2);
    let f = q("NoxysEvents_CL | where EventType == \"interaction.high_risk\" | where RiskScore > 0.8 | where PlatformId in (\"perplexity\", \"deepseek\", \"grok\") | project TimeGenerated, UserId, PlatformId, RiskScore | take 100");
    assert_eq!(texts(&f), [["2026-03-20T15:10:00Z", "bob", "grok", "0.9"]]);
}

#[test]
fn let_join_extend_and_functions() {
    let f = q("let threshold = 0.7; let risky = NoxysEvents_CL | where RiskScore > threshold; risky | join kind=inner (Users) on UserId | extend Hour = hourofday(TimeGenerated), Upper = toupper(Dept) | project UserId, Dept, Hour, Upper");
    assert_eq!(texts(&f), [["alice", "finance", "14", "FINANCE"]]);
    let f = q("NoxysEvents_CL | join kind=leftouter Users on UserId | project UserId, Dept | order by UserId asc");
    assert_eq!(texts(&f)[0], ["", ""]);
    assert_eq!(f.rows.len(), 4);
    let f = q("Users | join kind=leftanti (NoxysEvents_CL) on UserId");
    assert_eq!(texts(&f), [["carol", "it"]]);
    let f = q("print a = strcat('x', 1, true), b = iff(1 > 2, 'y', 'n'), c = case(false, 1, 2), d = coalesce('', 'z'), e = datetime_diff('hour', datetime(2026-01-02), datetime(2026-01-01)), g = format_datetime(datetime(2026-03-05 07:08:09), 'yyyy-MM-dd HH:mm'), h = split('a,b', ',')[1], i = substring('hello', 1, 3), j = tolong('42') + 1, k = 5m + 1h, l = startofday(datetime(2026-03-05 07:08:09))");
    assert_eq!(texts(&f)[0], ["x1true", "n", "2", "z", "24", "2026-03-05 07:08", "b", "ell", "43", "01:05:00", "2026-03-05T00:00:00Z"]);
}

#[test]
fn summarize_aggregations() {
    let f = q("NoxysEvents_CL | summarize n=count(), v=countif(EventType has 'violated'), u=dcount(UserId), s=sum(RiskScore), mx=max(RiskScore), mn=min(TimeGenerated), l=make_set(PlatformId), p=percentile(RiskScore, 50)");
    assert_eq!(texts(&f)[0], ["4", "2", "2", "2.35", "0.95", "2026-03-20T14:05:00Z", r#"["deepseek","chatgpt","grok","claude"]"#, "0.9"]);
    let f = q("NoxysEvents_CL | where isnotempty(UserId) | summarize arg_max(TimeGenerated, *) by UserId | order by UserId asc");
    assert_eq!(f.columns[0].name, "UserId");
    assert_eq!(f.columns[1].name, "TimeGenerated");
    assert_eq!(texts(&f)[0][..4], ["alice", "2026-03-20T14:35:00Z", "interaction.policy_violated", "chatgpt"]);
    let f = q("NoxysEvents_CL | summarize count()");
    assert_eq!(f.columns[0].name, "count_");
    let f = q("NoxysEvents_CL | where UserId == 'nobody' | summarize count()");
    assert_eq!(texts(&f), [["0"]]);
    let f = q("NoxysEvents_CL | count");
    assert_eq!(texts(&f), [["4"]]);
    let f = q("NoxysEvents_CL | distinct UserId | order by UserId asc");
    assert_eq!(f.rows.len(), 3);
}

#[test]
fn dynamic_access_mv_expand_and_operators() {
    let f = q("NoxysEvents_CL | where isnotnull(PolicyDecisions) | mv-expand PolicyDecisions | extend Action = tostring(PolicyDecisions.action), A2 = tostring(PolicyDecisions['action']) | project Action, A2");
    assert_eq!(texts(&f), [["block", "block"], ["coach", "coach"]]);
    let f = q("NoxysEvents_CL | mv-expand D = PolicyDecisions | where tostring(D.action) == 'block' | project UserId, n = array_length(PolicyDecisions)");
    assert_eq!(texts(&f), [["alice", "1"]]);
    let f = q("datatable(s:string, n:long)['Hello World', 1, 'foo-bar', 2, '', 3] | where s has 'world' or s startswith 'FOO' | project n");
    assert_eq!(texts(&f), [["1"], ["2"]]);
    let f = q("datatable(s:string)['abc123', 'xyz'] | where s matches regex '[0-9]+$'");
    assert_eq!(f.rows.len(), 1);
    let f = q("datatable(n:long)[1, 5, 10] | where n between (2 .. 10) | where n !in (10)");
    assert_eq!(texts(&f), [["5"]]);
    let f = q("datatable(s:string)['A', 'b'] | where s in~ ('a', 'B')");
    assert_eq!(f.rows.len(), 2);
    let f = q("datatable(s:string)['A'] | where s =~ 'a' and not(s == 'a') and s !has 'x' and s !contains 'q'");
    assert_eq!(f.rows.len(), 1);
    let f = q("datatable(x:dynamic)[dynamic({'a': {'b': [1, 2]}})] | project y = array_length(x.a.b), z = x.a.b[-1]");
    assert_eq!(texts(&f), [["2", "2"]]);
}

#[test]
fn null_semantics() {
    let f = q("datatable(a:long, b:long)[1, long(null)] | project c = a + b, d = b > 0, e = isnull(b), f = b == b");
    assert_eq!(texts(&f), [["", "", "true", ""]]);
    let f = q("datatable(a:long, b:long)[1, long(null)] | where b > 0 or a == 1");
    assert_eq!(f.rows.len(), 1);
    let f = q("datatable(a:long)[1, 2, long(null)] | order by a asc");
    assert_eq!(texts(&f), [[""], ["1"], ["2"]]);
    let f = q("datatable(a:long)[1, 2, long(null)] | order by a desc");
    assert_eq!(texts(&f), [["2"], ["1"], [""]]);
    let f = q("datatable(a:long)[1, long(null)] | summarize avg(a), count(a), max(a)");
    assert_eq!(texts(&f), [["1", "2", "1"]]);
}

#[test]
fn union_project_away_rename_and_transforms() {
    let f = q("union withsource=Src Users, (NoxysEvents_CL | take 1) | project Src, UserId");
    assert_eq!(f.rows.len(), 3);
    assert_eq!(texts(&f)[0][0], "Users");
    let f = q("Users | project-rename Department = Dept | project-away UserId");
    assert_eq!(f.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Department"]);
    // A DCR transformation, as TrapEye's seed writes it, with `source` bound to the incoming rows.
    let mut t = tables();
    t.0.insert(
        "source".into(),
        frame(
            &[("event_type", KType::String), ("first_interaction", KType::String), ("@meta", KType::Dynamic)],
            vec![
                vec![Value::str("new_threat"), Value::str("2026-03-20T14:30:12Z"), dynj(r#"{"product":"TrapEye","vendor":"TE"}"#)],
                vec![Value::str("new_interaction"), Value::str("2026-03-20T14:31:00Z"), Value::Null],
            ],
        ),
    );
    let f = run(
        "source\n| where event_type == \"new_threat\"\n| extend\nTimeGenerated = todatetime(first_interaction),\nProduct = tostring(['@meta'].product),\nVendor = tostring(['@meta'].vendor)\n| project-away ['@meta']",
        &t,
        now(),
    )
    .unwrap();
    assert_eq!(f.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["event_type", "first_interaction", "TimeGenerated", "Product", "Vendor"]);
    assert_eq!(texts(&f), [["new_threat", "2026-03-20T14:30:12Z", "2026-03-20T14:30:12Z", "TrapEye", "TE"]]);
    assert_eq!(f.columns[2].ktype, KType::DateTime);
}

#[test]
fn outside_the_subset_is_named() {
    for (query, what) in [
        ("Users | parse Dept with * 'x' y", "operator 'parse'"),
        ("Users | evaluate bag_unpack(x)", "operator 'evaluate'"),
        ("Users | extend x = series_decompose(Dept)", "function 'series_decompose'"),
        ("Users | summarize hll(Dept)", "aggregation 'hll'"),
        ("Users | where Dept like 'x'", "operator 'like'"),
    ] {
        match run(query, &tables(), now()) {
            Err(KqlError::Unsupported { what: w, .. }) => assert_eq!(w, what, "{query}"),
            other => panic!("{query}: expected unsupported {what}, got {other:?}"),
        }
    }
    assert!(matches!(run("Users | where", &tables(), now()), Err(KqlError::Syntax { .. })));
    assert!(matches!(run("Nope | take 1", &tables(), now()), Err(KqlError::Semantic(_))));
    assert!(matches!(run("Users | where Nope == 1", &tables(), now()), Err(KqlError::Semantic(_))));
    assert!(matches!(run("Users | where Dept not in ('x')", &tables(), now()), Err(KqlError::Syntax { .. })));
    assert!(run("Users | where x == 'unterminated", &tables(), now()).is_err());
}

#[test]
fn timespan_and_datetime_arithmetic() {
    let f = q("print a = datetime(2026-01-01) + 1d, b = datetime(2026-01-02) - datetime(2026-01-01), c = bin(datetime(2026-01-01 10:35), 15m), d = 2h / 1h, e = ago(1d)");
    assert_eq!(texts(&f)[0], ["2026-01-02T00:00:00Z", "1.00:00:00", "2026-01-01T10:30:00Z", "2", "2026-03-19T16:00:00Z"]);
    assert_eq!(f.columns[1].ktype, KType::TimeSpan);
    let _ = TICKS_PER_SEC;
}

/// Hostile nesting is refused with an error naming the bound, and what is within the bound parses and runs on a
/// thread with a Tokio worker's stack (2 MiB), in a debug build.
#[test]
fn nesting_is_bounded_and_the_bound_is_safe() {
    use super::parser::MAX_NESTING;
    let deep = |n: usize| format!("print x = {}1{}", "(".repeat(n), ")".repeat(n));
    let chain = |n: usize| format!("print x = 1{}", " + 1".repeat(n));
    let negs = |n: usize| format!("print x = {}1", "-".repeat(n));
    let subqueries = |n: usize| format!("{}NoxysEvents_CL{}", "union (".repeat(n), ")".repeat(n));
    for hostile in [deep(1000), chain(100_000), negs(5000), subqueries(1000), format!("print x = dynamic({{}}){}", ".a".repeat(5000))] {
        let err = run(&hostile, &tables(), now()).unwrap_err();
        assert!(matches!(err, super::KqlError::TooDeep { limit: MAX_NESTING, .. }), "{err}");
        assert!(err.to_string().contains("nests deeper than 128"), "{err}");
    }
    let within = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            for q in [deep(MAX_NESTING - 2), chain(MAX_NESTING - 2), negs(MAX_NESTING - 2)] {
                let f = run(&q, &tables(), now()).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(f.rows.len(), 1);
            }
        })
        .unwrap()
        .join();
    assert!(within.is_ok(), "a query within the bound overflowed a 2 MiB stack");
}

#[test]
fn any_text_converts_to_a_datetime_or_null() {
    let f = q("print a = todatetime('€€a'), b = todatetime('2026-03-20 14:3€'), c = todatetime('2026-03-20T14:32:00Z')");
    assert_eq!(texts(&f), vec![vec!["".to_string(), "".to_string(), "2026-03-20T14:32:00Z".to_string()]]);
}
