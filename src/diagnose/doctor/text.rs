//! The doctor's report for a terminal.

use super::DoctorReport;
use crate::diagnose::checks::{CheckStatus, CheckStep, SKIPPED};
use std::fmt::Write as _;

impl DoctorReport {
    /// The report for a terminal: one line per check with its mark (`[ ok ]`, `[warn]`,
    /// `[FAIL]`, skipped steps folded into one line), evidence and fix under failures and
    /// warnings, and the exit code at the end. `color` adds ANSI colours to the marks.
    pub fn to_text(&self, color: bool) -> String {
        let paint = |code: &str, text: &str| {
            if color {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_string()
            }
        };
        let mark = |s: CheckStatus| match s {
            CheckStatus::Ok => paint("32", "[ ok ]"),
            CheckStatus::Warn => paint("33", "[warn]"),
            CheckStatus::Fail => paint("1;31", "[FAIL]"),
            CheckStatus::Skipped => paint("2", "[skip]"),
        };
        let mut out = String::new();
        let mut subject: Option<&str> = None;
        let mut skipped: Vec<String> = Vec::new();
        let flush = |out: &mut String, skipped: &mut Vec<String>| {
            if !skipped.is_empty() {
                let _ = writeln!(
                    out,
                    "  {} {}: not run after the failure above",
                    mark(CheckStatus::Skipped),
                    skipped.join(", ")
                );
                skipped.clear();
            }
        };
        for c in &self.checks {
            if subject != Some(c.subject.as_str()) {
                flush(&mut out, &mut skipped);
                subject = Some(&c.subject);
                let _ = writeln!(out, "{}", paint("1", &c.subject));
            }
            if c.status == CheckStatus::Skipped && c.summary == SKIPPED {
                skipped.push(c.step.to_string());
                continue;
            }
            let step = c.step.to_string();
            let _ = writeln!(out, "  {} {step:<9} {}", mark(c.status), c.summary);
            let detailed = matches!(c.status, CheckStatus::Warn | CheckStatus::Fail);
            if detailed || c.step == CheckStep::Config {
                for e in &c.evidence {
                    let _ = writeln!(out, "{:19}seen: {e}", "");
                }
            }
            if detailed && let Some(fix) = &c.fix {
                let _ = writeln!(out, "{:19}{} {fix}", "", paint("1", "fix:"));
            }
        }
        flush(&mut out, &mut skipped);
        let c = &self.counts;
        let verdict = match self.exit_class {
            None => paint("32", "healthy"),
            Some(class) => paint("1;31", &format!("unhealthy ({})", class.describe())),
        };
        let _ = writeln!(
            out,
            "\n{verdict}: {} ok, {} warning{}, {} failed, {} skipped; exit {}",
            c.ok,
            c.warn,
            if c.warn == 1 { "" } else { "s" },
            c.fail,
            c.skipped,
            self.exit_code
        );
        out
    }
}
