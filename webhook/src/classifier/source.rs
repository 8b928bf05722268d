//! Source helpers: byte offsets to lines, and short excerpts of code for findings.

use rustpython_parser::ast::Ranged;

/// Byte offset to 1-based line.
#[derive(Debug, Default)]
pub struct LineIndex {
    starts: Vec<u32>,
}

impl LineIndex {
    pub fn new(src: &str) -> LineIndex {
        let mut starts = Vec::with_capacity(src.len() / 32 + 1);
        starts.push(0);
        for (i, b) in src.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i as u32 + 1);
            }
        }
        LineIndex { starts }
    }

    pub fn line(&self, offset: u32) -> u32 {
        self.starts.partition_point(|&s| s <= offset).max(1) as u32
    }
}

/// Longest excerpt of code put into a finding's detail.
pub const MAX_EXCERPT: usize = 100;

/// The source text of a node, on one line, shortened to [`MAX_EXCERPT`] characters.
pub fn excerpt(src: &str, node: &impl Ranged) -> String {
    let r = node.range();
    let text = src
        .get(r.start().to_usize()..r.end().to_usize())
        .unwrap_or("");
    shorten(text)
}

/// One line, at most [`MAX_EXCERPT`] characters.
pub fn shorten(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_EXCERPT + 3));
    let mut last_space = false;
    for c in text.chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if out.chars().count() >= MAX_EXCERPT {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}
