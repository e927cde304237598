//! A storage account's data plane (StorageBlobLogs): who read its blobs, from where, how much. Data taken out
//! of an account leaves as reads from an address the account never served, far above what any address read
//! from it in a day; the account's own readers (its app, the month-end backup from its usual address) are not.

use std::collections::BTreeMap;

use super::{Evidence, Signal, SignalKind};
use crate::enrich::rows::StorageReads;
use crate::model::text::printable;
use crate::model::time::format_ticks;

/// Bytes from one new address in the window, at least, for a bulk read (50 MB), and as a multiple of the most
/// any address read from the account in one day of its baseline.
pub const BULK_BYTES: f64 = 50e6;
pub const BULK_FACTOR: f64 = 5.0;
/// Reads from a new address that count on their own, whatever their size (a listing and sampling).
pub const MANY_READS: f64 = 200.0;

pub fn storage_reads(rows: &[StorageReads]) -> Vec<Signal> {
    // Per account: the addresses it served before the window, and the most one of them read in a day.
    let mut served: BTreeMap<&str, (Vec<&str>, f64)> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.during) {
        let e = served.entry(r.account.as_str()).or_default();
        e.0.push(r.ip.as_str());
        e.1 = e.1.max(r.bytes.unwrap_or(0.0) / r.days.unwrap_or(1.0).max(1.0));
    }
    let mut evidence = Vec::new();
    let mut strength: f64 = 0.0;
    for r in rows.iter().filter(|r| r.during && !r.ip.is_empty()) {
        let (ips, daily) = served.get(r.account.as_str()).map_or((&[][..], 0.0), |(ips, d)| (ips.as_slice(), *d));
        if ips.contains(&r.ip.as_str()) {
            continue;
        }
        let (bytes, reads) = (r.bytes.unwrap_or(0.0), r.reads.unwrap_or(0.0));
        let s = if bytes >= BULK_BYTES && bytes >= BULK_FACTOR * daily {
            0.9
        } else if reads >= MANY_READS {
            0.6
        } else {
            continue;
        };
        strength = strength.max(s);
        evidence.push(Evidence {
            table: "StorageBlobLogs".into(),
            time: r.last.map(format_ticks).unwrap_or_default(),
            key: printable(r.account.rsplit('/').next().unwrap_or_default(), 100),
            detail: format!(
                "{reads:.0} reads returning {:.1} MB to {}, an address the account never served ({} known; the most one read in a day before: {:.1} MB; auth {})",
                bytes / 1e6,
                printable(&r.ip, 64),
                ips.len(),
                daily / 1e6,
                if r.auth.is_empty() { "-".to_string() } else { printable(&r.auth, 40) }
            ),
        });
    }
    if evidence.is_empty() {
        return Vec::new();
    }
    vec![Signal {
        name: SignalKind::BlobReadsNewNetwork,
        family: "storage",
        summary: format!("blobs read in bulk from {}", crate::model::text::count(evidence.len(), "new address", "new addresses")),
        strength,
        routine: false,
        thin_baseline_days: None,
        evidence: evidence.into_iter().take(5).collect(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ip: &str, during: bool, reads: f64, bytes: f64, days: f64) -> StorageReads {
        StorageReads {
            account: "/subscriptions/s/resourcegroups/prod/providers/microsoft.storage/storageaccounts/acmedata".into(),
            ip: ip.into(),
            during,
            reads: Some(reads),
            bytes: Some(bytes),
            days: Some(days),
            auth: "AccountKey".into(),
            last: Some(0),
        }
    }

    #[test]
    fn a_new_address_reading_far_more_than_any_day_is_data_taken() {
        let rows = [row("10.0.1.4", false, 5000.0, 3e8, 30.0), row("198.51.100.23", true, 300.0, 1.8e9, 1.0)];
        let s = storage_reads(&rows);
        assert_eq!((s.len(), s[0].strength), (1, 0.9));
        assert!(s[0].evidence[0].detail.contains("1800.0 MB to 198.51.100.23"), "{:?}", s[0].evidence);
    }

    #[test]
    fn the_account_s_own_readers_are_not() {
        // The month-end backup reads a lot, from the address it always uses.
        let rows = [row("20.38.98.5", false, 900.0, 9e9, 1.0), row("20.38.98.5", true, 900.0, 9e9, 1.0), row("10.0.1.4", true, 20.0, 1e6, 1.0)];
        let mut with_app = rows.to_vec();
        with_app.push(row("10.0.1.4", false, 5000.0, 3e8, 30.0));
        assert!(storage_reads(&with_app).is_empty());
        // A new address reading a few small blobs is not a bulk read.
        assert!(storage_reads(&[row("10.0.1.4", false, 5000.0, 3e8, 30.0), row("203.0.113.7", true, 3.0, 2e5, 1.0)]).is_empty());
    }
}
