//! Real contributions for the merge: the questions, answers and comments of a Stack Exchange
//! meta site (`../shared/data/history-meta`, beside the project), in the order they were
//! written. How well changes deflate depends on their text, so the bytes the merge sends are
//! compared with real prose, not with a template repeated ten thousand times.

use std::path::Path;

use anyhow::{Context, Result};
use catchment_crdt::schema::{Kind, MAX_BODY, MAX_TAG, MAX_TAGS, MAX_TITLE};

/// One contribution's text.
pub struct Text {
    /// Question for a question, idea for the rest (answers and comments are posted without
    /// their parents).
    pub kind: Kind,
    /// The post's title, or the first words of a comment or answer.
    pub title: String,
    /// The text, entities decoded and HTML tags dropped.
    pub body: String,
    /// The post's tags.
    pub tags: Vec<String>,
}

/// The corpus's directory: `shared/data/history-meta` beside the workspace.
pub fn default_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/history-meta");
    dir.canonicalize().unwrap_or(dir)
}

/// Every post and comment in `dir`, oldest first. Rows without text are left out.
pub fn load(dir: &Path) -> Result<Vec<Text>> {
    let mut dated: Vec<(String, Text)> = Vec::new();
    let posts = std::fs::read_to_string(dir.join("Posts.xml"))
        .with_context(|| format!("reading {}", dir.join("Posts.xml").display()))?;
    for row in &rows(&posts) {
        let body = plain(&attribute(row, "Body").unwrap_or_default());
        if body.trim().is_empty() {
            continue;
        }
        let question = attribute(row, "PostTypeId").as_deref() == Some("1");
        let title = match attribute(row, "Title") {
            Some(title) => one_line(&unescape(&title)),
            None => one_line(&body),
        };
        let tags = unescape(&attribute(row, "Tags").unwrap_or_default())
            .split(['<', '>'])
            .filter(|t| {
                let allowed = |c: char| c.is_alphanumeric() || "-_.+#".contains(c);
                !t.is_empty() && t.len() <= MAX_TAG && t.chars().all(allowed)
            })
            .take(MAX_TAGS)
            .map(str::to_string)
            .collect();
        let text = Text {
            kind: if question { Kind::Question } else { Kind::Idea },
            title,
            body: cut(&body, MAX_BODY),
            tags,
        };
        dated.push((attribute(row, "CreationDate").unwrap_or_default(), text));
    }
    let comments = std::fs::read_to_string(dir.join("Comments.xml"))
        .with_context(|| format!("reading {}", dir.join("Comments.xml").display()))?;
    for row in &rows(&comments) {
        let body = unescape(&attribute(row, "Text").unwrap_or_default());
        if body.trim().is_empty() {
            continue;
        }
        let text = Text {
            kind: Kind::Idea,
            title: one_line(&body),
            body: cut(&body, MAX_BODY),
            tags: Vec::new(),
        };
        dated.push((attribute(row, "CreationDate").unwrap_or_default(), text));
    }
    // ISO dates sort as text.
    dated.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(dated.into_iter().map(|(_, text)| text).collect())
}

/// One `<row .../>`: its attributes' names and raw (still escaped) values.
type Row<'a> = Vec<(&'a str, &'a str)>;

/// Every `<row .../>` element of a dump file. A value is quoted with `"` or `'` and may span
/// lines; the quote that delimits it never occurs in it unescaped. Reading stops at the first
/// thing that is not an attribute.
fn rows(xml: &str) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<row ") {
        rest = &rest[start + "<row ".len()..];
        let mut row = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix("/>") {
                rest = after;
                break;
            }
            let Some((name, after)) = rest.split_once('=') else {
                return out;
            };
            let Some(quote) = after.chars().next().filter(|&q| q == '"' || q == '\'') else {
                return out;
            };
            let Some(end) = after[1..].find(quote) else {
                return out;
            };
            row.push((name.trim(), &after[1..1 + end]));
            rest = &after[end + 2..];
        }
        out.push(row);
    }
    out
}

/// An attribute's raw value.
fn attribute(row: &Row<'_>, name: &str) -> Option<String> {
    row.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_string())
}

/// Decodes XML's entities: the five named ones and numeric ones.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A post's body as plain text: entities decoded, HTML tags dropped.
fn plain(escaped: &str) -> String {
    let html = unescape(escaped);
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// The first line's first 80 bytes or so, for a title.
fn one_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    cut(line.trim(), 80.min(MAX_TITLE))
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
