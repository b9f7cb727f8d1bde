//! What a run produced: one [`Row`] per reported number, both sides and their paired
//! ratios, and the three ways it is shown (a text table, a JSON document, an SVG chart).

use serde_json::{Value, json};
use std::fmt::Write as _;

/// Which direction is good.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// The target a row is judged against.
#[derive(Clone, Copy)]
pub enum Goal {
    /// beamlink ÷ BEAM ≥ x.
    RatioAtLeast(f64),
    /// beamlink ÷ BEAM ≤ x.
    RatioAtMost(f64),
    /// beamlink's own value ≤ x (in the row's unit).
    ValueAtMost(f64),
    /// beamlink's own value < x.
    ValueBelow(f64),
    /// Reported only.
    None,
}

/// How a value is printed.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Messages per second; `payload` bytes per message give MB/s too.
    MsgsPerS {
        payload: u64,
    },
    Micros,
    Millis,
    Kib,
    PercentCore,
}

/// One reported number, both sides.
pub struct Row {
    pub id: String,
    pub workload: char,
    pub title: String,
    pub beam_side: String,
    pub beamlink_side: String,
    pub unit: Unit,
    pub better: Better,
    pub goal: Goal,
    pub beam: Vec<f64>,
    pub beamlink: Vec<f64>,
    /// beamlink ÷ the BEAM measurement taken just before it, one per round.
    pub ratios: Vec<f64>,
    /// 1-minute load average when each measurement started.
    pub loads: Vec<f64>,
}

impl Row {
    pub fn new(id: &str, workload: char, title: &str, unit: Unit, better: Better) -> Row {
        Row {
            id: id.to_owned(),
            workload,
            title: title.to_owned(),
            beam_side: String::new(),
            beamlink_side: String::new(),
            unit,
            better,
            goal: Goal::None,
            beam: Vec::new(),
            beamlink: Vec::new(),
            ratios: Vec::new(),
            loads: Vec::new(),
        }
    }

    pub fn sides(mut self, beam: &str, beamlink: &str) -> Row {
        self.beam_side = beam.to_owned();
        self.beamlink_side = beamlink.to_owned();
        self
    }

    pub fn goal(mut self, goal: Goal) -> Row {
        self.goal = goal;
        self
    }

    /// Records one round: the BEAM value, the beamlink value, the load before them.
    pub fn pair(&mut self, beam: f64, beamlink: f64, load: f64) {
        self.beam.push(beam);
        self.beamlink.push(beamlink);
        if beam > 0.0 {
            self.ratios.push(beamlink / beam);
        }
        self.loads.push(load);
    }

    pub fn beam_median(&self) -> Option<f64> {
        median(&self.beam)
    }

    pub fn beamlink_median(&self) -> Option<f64> {
        median(&self.beamlink)
    }

    /// The median of the paired ratios (or of the medians when there are no pairs).
    pub fn ratio(&self) -> Option<f64> {
        median(&self.ratios).or_else(|| Some(self.beamlink_median()? / self.beam_median()?))
    }

    /// None when there is no target or nothing was measured.
    pub fn met(&self) -> Option<bool> {
        match self.goal {
            Goal::RatioAtLeast(x) => Some(self.ratio()? >= x),
            Goal::RatioAtMost(x) => Some(self.ratio()? <= x),
            Goal::ValueAtMost(x) => Some(self.beamlink_median()? <= x),
            Goal::ValueBelow(x) => Some(self.beamlink_median()? < x),
            Goal::None => None,
        }
    }

    pub fn goal_text(&self) -> String {
        match self.goal {
            Goal::RatioAtLeast(x) => format!("ratio ≥ {x}"),
            Goal::RatioAtMost(x) => format!("ratio ≤ {x}"),
            Goal::ValueAtMost(x) => format!("≤ {}", self.format(x)),
            Goal::ValueBelow(x) => format!("< {}", self.format(x)),
            Goal::None => "—".into(),
        }
    }

    pub fn format(&self, v: f64) -> String {
        match self.unit {
            Unit::MsgsPerS { payload } => {
                format!("{} msg/s, {} MB/s", si(v), fixed(v * payload as f64 / 1e6))
            }
            Unit::Micros => format!("{} µs", fixed(v)),
            Unit::Millis => format!("{} ms", fixed3(v)),
            Unit::Kib => {
                if v >= 10240.0 {
                    format!("{:.1} MiB", v / 1024.0)
                } else {
                    format!("{} KiB", fixed(v))
                }
            }
            Unit::PercentCore => format!("{v:.2} %"),
        }
    }

    fn format_opt(&self, v: Option<f64>) -> String {
        v.map(|v| self.format(v)).unwrap_or_else(|| "—".into())
    }

    fn ratio_text(&self) -> String {
        let Some(r) = self.ratio() else {
            return "—".into();
        };
        if self.ratios.len() > 1 {
            let (lo, hi) = min_max(&self.ratios);
            format!("{} ({}–{})", ratio(r), ratio(lo), ratio(hi))
        } else {
            ratio(r)
        }
    }

    fn load_text(&self) -> String {
        if self.loads.is_empty() {
            return "—".into();
        }
        let (lo, hi) = min_max(&self.loads);
        format!("{lo:.1}–{hi:.1}")
    }

    fn met_text(&self) -> &'static str {
        match self.met() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "workload": self.workload.to_string(),
            "title": self.title,
            "beam_side": self.beam_side,
            "beamlink_side": self.beamlink_side,
            "unit": match self.unit {
                Unit::MsgsPerS { .. } => "msgs_per_s",
                Unit::Micros => "us",
                Unit::Millis => "ms",
                Unit::Kib => "KiB",
                Unit::PercentCore => "percent_of_one_core",
            },
            "payload_bytes": match self.unit { Unit::MsgsPerS { payload } => json!(payload), _ => Value::Null },
            "better": if self.better == Better::Higher { "higher" } else { "lower" },
            "target": self.goal_text(),
            "met": self.met(),
            "beam_median": self.beam_median(),
            "beamlink_median": self.beamlink_median(),
            "ratio": self.ratio(),
            "beam": self.beam,
            "beamlink": self.beamlink,
            "paired_ratios": self.ratios,
            "load1": self.loads,
        })
    }
}

pub fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn fixed(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// As [`fixed`], with three decimals under 1 (a fraction of a millisecond).
fn fixed3(v: f64) -> String {
    if v < 1.0 { format!("{v:.3}") } else { fixed(v) }
}

fn ratio(r: f64) -> String {
    if r >= 0.095 {
        format!("{r:.2}")
    } else {
        format!("{r:.3}")
    }
}

/// The table as Markdown (it reads fine on a terminal too).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| | workload | BEAM side | beamlink side | ratio (range) | target | met | load 1m |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        // Rows with nothing to compare on the BEAM side (workload w) leave it empty.
        let beam = if r.beam_side.is_empty() {
            "—".to_owned()
        } else {
            format!("{}: {}", r.beam_side, r.format_opt(r.beam_median()))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}: {} | {} | {} | {} | {} |",
            r.workload,
            r.title,
            beam,
            r.beamlink_side,
            r.format_opt(r.beamlink_median()),
            r.ratio_text(),
            r.goal_text(),
            r.met_text(),
            r.load_text(),
        );
    }
    out
}

// ------------------------------------------------------------------------------- SVG

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One bar per row on a log scale centred on 1 (the BEAM side): right of the centre line
/// beamlink's number is larger than the BEAM's. Green: target met, red: missed, grey: no
/// target. The target is a dark tick on the row.
pub fn svg(rows: &[Row], title: &str, subtitle: &str, notes: &[String]) -> String {
    const W: f64 = 1060.0;
    const LABEL: f64 = 330.0;
    const PLOT: f64 = 430.0;
    const ROW_H: f64 = 30.0;
    const TOP: f64 = 78.0;
    // Rows judged on beamlink's own value (memory per peer, CPU) go in the notes instead.
    let plotted: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.ratio().is_some_and(|x| x > 0.0)
                && matches!(
                    r.goal,
                    Goal::RatioAtLeast(_) | Goal::RatioAtMost(_) | Goal::None
                )
        })
        .collect();
    let (lo, hi) = (0.01f64, 10.0f64);
    let x = |v: f64| {
        let v = v.clamp(lo, hi);
        LABEL + (v.log10() - lo.log10()) / (hi.log10() - lo.log10()) * PLOT
    };
    let height = TOP + plotted.len() as f64 * ROW_H + 40.0 + notes.len() as f64 * 17.0 + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="40" fill="#444">{}</text>"##,
        esc(subtitle)
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="58" fill="#444">bar = beamlink ÷ BEAM in the same run (log scale; 1 = as the BEAM); green = target met, red = missed, dark tick = target</text>"##
    );
    let bottom = TOP + plotted.len() as f64 * ROW_H;
    for g in [0.01, 0.1, 1.0, 10.0] {
        let gx = x(g);
        let w = if g == 1.0 { 2 } else { 1 };
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{:.1}" x2="{gx:.1}" y2="{bottom:.1}" stroke="#999" stroke-width="{w}"/>"##,
            TOP - 6.0
        );
        let _ = writeln!(
            s,
            r##"<text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#666">×{g}</text>"##,
            bottom + 14.0
        );
    }
    for (i, r) in plotted.iter().enumerate() {
        let y = TOP + i as f64 * ROW_H;
        let ratio = r.ratio().unwrap_or(1.0);
        let colour = match r.met() {
            Some(true) => "#2e7d32",
            Some(false) => "#c62828",
            None => "#9e9e9e",
        };
        let (x0, x1) = (x(1.0).min(x(ratio)), x(1.0).max(x(ratio)));
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}. {}</text>"#,
            LABEL - 8.0,
            y + 15.0,
            r.workload,
            esc(&r.title)
        );
        let _ = writeln!(
            s,
            r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="16" fill="{colour}"/>"#,
            y + 3.0,
            (x1 - x0).max(1.5)
        );
        let target = match r.goal {
            Goal::RatioAtLeast(t) | Goal::RatioAtMost(t) => Some(t),
            _ => None,
        };
        if let Some(t) = target {
            let tx = x(t);
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#111" stroke-width="2"/>"##,
                y,
                y + 22.0
            );
        }
        let direction = if r.better == Better::Higher {
            "higher is better"
        } else {
            "lower is better"
        };
        let target = match r.goal {
            Goal::None => String::new(),
            _ => format!(", target {}", r.goal_text().trim_start_matches("ratio ")),
        };
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}">×{} <tspan fill="#666">({direction}{})</tspan></text>"##,
            LABEL + PLOT + 12.0,
            y + 15.0,
            self::ratio(ratio),
            esc(&target)
        );
    }
    let mut ny = bottom + 38.0;
    for n in notes {
        let _ = writeln!(
            s,
            r##"<text x="10" y="{ny:.1}" fill="#333">{}</text>"##,
            esc(n)
        );
        ny += 17.0;
    }
    s.push_str("</svg>\n");
    s
}
