//! Source helpers: byte offsets to lines, and short excerpts of code for findings.

use ruff_python_ast::{self as ast, Expr};
use ruff_text_size::Ranged;

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
    let mut n = 0;
    for c in text.trim().chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if n >= MAX_EXCERPT {
            out.push('…');
            break;
        }
        out.push(c);
        n += 1;
    }
    out
}

/// A call's excerpt; a long one is cut to its end (`….cuda()`, `….to(device)`), which is the
/// part that says what it does.
pub fn call_excerpt(src: &str, call: &ast::ExprCall) -> String {
    let full = excerpt(src, call);
    if full.chars().count() <= 60 {
        return full;
    }
    if let Expr::Attribute(a) = call.func.as_ref() {
        let end = call.range().end().to_usize();
        let attr_start = a.value.range().end().to_usize();
        let tail = src.get(attr_start..end).unwrap_or("");
        let tail = shorten(tail);
        if tail.chars().count() <= 60 {
            return format!("…{tail}");
        }
    }
    full
}
