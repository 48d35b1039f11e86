//! Pictures drawn on the server as SVG: an invite's QR code and a member's contributions per
//! week. Both are plain markup with no script, sized by their `viewBox`.

use std::fmt::Write;

use qrcode::{Color, EcLevel, QrCode};

/// One week in milliseconds.
pub const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

/// An invite as a QR code, or `None` when it is too long for one. Upper case lets the code
/// use its compact alphanumeric mode; invites read the same in either case.
pub fn qr(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.to_uppercase(), EcLevel::L).ok()?;
    let width = code.width();
    let quiet = 4;
    let side = width + 2 * quiet;
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == Color::Dark {
            let (x, y) = (i % width + quiet, i / width + quiet);
            let _ = write!(path, "M{x} {y}h1v1h-1z");
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"qr\" viewBox=\"0 0 {side} {side}\" \
         role=\"img\" aria-label=\"QR code of the invite\" shape-rendering=\"crispEdges\">\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

/// Counts of `times` (ms since the epoch) per week, for the `weeks` weeks ending with the one
/// that holds `now`; oldest first.
pub fn per_week(times: &[i64], now: i64, weeks: usize) -> Vec<u32> {
    let mut counts = vec![0u32; weeks];
    let current = now.div_euclid(WEEK_MS);
    for t in times {
        let back = current - t.div_euclid(WEEK_MS);
        if back >= 0 && (back as usize) < weeks {
            counts[weeks - 1 - back as usize] += 1;
        }
    }
    counts
}

/// A bar chart of contributions per week, oldest on the left, labelled for screen readers.
pub fn week_chart(counts: &[u32]) -> String {
    let (bar, gap, height, top, bottom) = (22u32, 6u32, 120u32, 16u32, 20u32);
    let width = counts.len() as u32 * (bar + gap) + gap;
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let total: u32 = counts.iter().sum();
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {width} {}\" \
         role=\"img\" aria-label=\"{total} contributions over the last {} weeks\">",
        height + top + bottom,
        counts.len()
    );
    let _ = write!(
        out,
        "<line x1=\"0\" y1=\"{y}\" x2=\"{width}\" y2=\"{y}\" class=\"axis\"/>",
        y = top + height
    );
    for (i, count) in counts.iter().enumerate() {
        let x = gap + i as u32 * (bar + gap);
        let h = if *count == 0 {
            0
        } else {
            (count * height / max).max(2)
        };
        let y = top + height - h;
        let weeks_ago = counts.len() - 1 - i;
        let label = match weeks_ago {
            0 => "this week".to_string(),
            1 => "last week".to_string(),
            n => format!("{n} weeks ago"),
        };
        let _ = write!(
            out,
            "<g><title>{count} in {label}</title><rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" \
             height=\"{h}\" class=\"bar\"/>"
        );
        if *count > 0 {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" class=\"count\">{count}</text>",
                x + bar / 2,
                y.saturating_sub(3)
            );
        }
        let tick = if weeks_ago == 0 {
            "now".to_string()
        } else {
            format!("-{weeks_ago}")
        };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" class=\"tick\">{tick}</text></g>",
            x + bar / 2,
            top + height + 14
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_bucket_from_now_backwards() {
        let now = 100 * WEEK_MS + 5;
        let times = [
            now,
            now - 1,
            now - WEEK_MS,
            now - 3 * WEEK_MS,
            now - 40 * WEEK_MS,
            now + WEEK_MS,
        ];
        assert_eq!(per_week(&times, now, 4), vec![1, 0, 1, 2]);
    }

    #[test]
    fn qr_codes_draw_and_too_long_ones_do_not() {
        let svg = qr("catchment1abc").expect("short text fits");
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
        assert!(qr(&"x".repeat(5000)).is_none());
    }

    #[test]
    fn chart_has_one_bar_per_week() {
        let svg = week_chart(&[0, 3, 1]);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("4 contributions over the last 3 weeks"));
    }
}
