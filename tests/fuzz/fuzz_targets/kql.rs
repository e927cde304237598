//! Any query text: the KQL parser and evaluator answer with a result or an error, never a panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sentinel_bridge::kql::{self, Frame, Tables};

struct One(Frame);

impl Tables for One {
    fn table(&self, name: &str) -> Option<Frame> {
        (name == "T").then(|| self.0.clone())
    }
}

static T: LazyLock<One> = LazyLock::new(|| {
    let f = kql::run("datatable(a:long, s:string, d:dynamic, t:datetime)[1, 'x', dynamic({\"k\":[1,2]}), datetime(2026-01-01), long(null), '', dynamic(null), datetime(null)]", &One(Frame::default()), 0).unwrap();
    One(f)
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.len() > 2000 {
        return;
    }
    let _ = kql::run(text, &*T, 0);
});
