//! Input limits: sizes, file count, and a nesting bound checked on tokens before parsing.
//!
//! `ruff_python_parser` (recursive descent) builds its tree recursively, the tree is dropped
//! recursively, and so does the analysis walk recurse: a
//! deep tree (`'[' * 100000`, `1+1+...+1`, `a.b.c...`, a long `elif` chain) overflows any fixed
//! stack. So before parsing, [`nesting_bound`] computes from the tokens an upper bound of the
//! depth of the syntax tree; a file over [`Limits::max_nesting`] is not parsed (the token-level
//! scan classifies it), and the thread that runs [`super::classify`] needs at most
//! [`Limits::required_stack_bytes`] of stack for a tree of that depth.
//!
//! Why the bound holds: every node of a Python syntax tree is introduced by at least one token of
//! its own (an operator, a keyword, a bracket, a dot), except names and literals, which are
//! leaves. Within one bracket level, the nodes on any root-to-leaf path between two commas (or
//! `=`, `;`) are all introduced by tokens of that stretch, so the path is no longer than the number
//! of such tokens; a bracketed part adds its own bound plus the bracket node. `lambda` is counted
//! past commas (its parameters come before its body). Statements add two levels per indentation
//! level (the compound statement and, for `except`/`case`, its clause) plus one per `elif` of the
//! chain they sit in. f-string replacement fields are parsed too: each run of name characters and
//! each other character inside their braces counts as a level.

use super::lexer::{Kind, Token};

/// Default `max_total_bytes`: 1 MiB of Python per function.
pub const DEFAULT_MAX_TOTAL_BYTES: usize = 1 << 20;
/// Default `max_nesting`: a bound on the syntax-tree depth (see [`nesting_bound`]). Real code
/// stays far below it; the CPython standard library's deepest file reaches about 100.
pub const DEFAULT_MAX_NESTING: usize = 400;
/// Default `max_files` of one function.
pub const DEFAULT_MAX_FILES: usize = 512;

/// Stack used per level of syntax-tree depth, in the worst case over the parser's drop glue and
/// the analysis walk, unoptimised build (measured ~1.6 KiB), with a margin of 2x.
pub const STACK_BYTES_PER_LEVEL: usize = 4 << 10;
/// Stack for everything that does not grow with depth: the LALR driver's frames and the
/// analysis, with a generous margin.
pub const STACK_BASE_BYTES: usize = 2 << 20;

/// Limits on what [`super::classify`] accepts. Also the webhook's `source` configuration
/// (camelCase field names; a field not given keeps its default).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Limits {
    /// Sum of the sizes of all files (default 1 MiB). Over it: [`crate::Error::InputTooLarge`].
    pub max_total_bytes: usize,
    /// Size of one file (default 1 MiB). Over it: [`crate::Error::InputTooLarge`].
    pub max_file_bytes: usize,
    /// Bound on the syntax-tree depth of a file (default 400). A file over it is not parsed but
    /// scanned at the token level (the classification says so).
    pub max_nesting: usize,
    /// Number of files (default 512). Over it: [`crate::Error::TooManyFiles`].
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            max_file_bytes: DEFAULT_MAX_TOTAL_BYTES,
            max_nesting: DEFAULT_MAX_NESTING,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

impl Limits {
    /// Stack the thread that calls [`super::classify`] with these limits must have.
    pub const fn required_stack_bytes(&self) -> usize {
        required_stack_bytes(self.max_nesting)
    }
}

/// Stack needed for trees of depth up to `max_nesting`.
pub const fn required_stack_bytes(max_nesting: usize) -> usize {
    STACK_BASE_BYTES + max_nesting.saturating_mul(STACK_BYTES_PER_LEVEL)
}

/// Per bracket level: the running counts of the current comma-separated stretch.
#[derive(Clone, Copy, Default)]
struct Frame {
    /// Node-introducing tokens in the current stretch.
    ops: u32,
    /// Deepest bracketed child of the current stretch (its bound + 1).
    child: u32,
    /// `lambda`s of this level: their bodies come after commas.
    lambdas: u32,
    /// Deepest finished stretch.
    max: u32,
    /// Whether a comma made a tuple of this level.
    comma: bool,
}

impl Frame {
    fn end_stretch(&mut self) {
        let depth = self
            .ops
            .saturating_add(self.child)
            .saturating_add(self.lambdas);
        self.max = self.max.max(depth);
        self.ops = 0;
        self.child = 0;
    }

    fn finish(mut self) -> u32 {
        self.end_stretch();
        self.max.saturating_add(u32::from(self.comma))
    }
}

/// Per indentation level: the statements' levels and the `elif`s of the current chain.
#[derive(Clone, Copy)]
struct Block {
    elifs: u32,
}

/// An upper bound of the syntax-tree depth of the file these tokens came from (see the module
/// documentation), and the line where it is reached.
pub fn nesting_bound(src: &str, tokens: &[Token]) -> (usize, u32) {
    let mut frames: Vec<Frame> = vec![Frame::default()];
    let mut blocks: Vec<Block> = vec![Block { elifs: 0 }];
    let mut best = (0u32, 1u32);
    let mut line_start = true;
    let stmt_depth = |blocks: &[Block]| -> u32 {
        blocks
            .iter()
            .fold(0u32, |acc, b| acc.saturating_add(2).saturating_add(b.elifs))
    };
    for t in tokens {
        match t.kind {
            Kind::Indent => {
                blocks.push(Block { elifs: 0 });
                line_start = true;
                continue;
            }
            Kind::Dedent => {
                if blocks.len() > 1 {
                    blocks.pop();
                }
                line_start = true;
                continue;
            }
            Kind::Newline => {
                let depth = close_all(&frames).saturating_add(stmt_depth(&blocks));
                if depth > best.0 {
                    best = (depth, t.line);
                }
                frames.clear();
                frames.push(Frame::default());
                line_start = true;
                continue;
            }
            _ => {}
        }
        if line_start {
            line_start = false;
            if let Some(b) = blocks.last_mut() {
                let text = t.text(src);
                if t.kind == Kind::Name && text == "elif" {
                    b.elifs = b.elifs.saturating_add(1);
                } else if !(t.kind == Kind::Name && text == "else") {
                    b.elifs = 0;
                }
            }
        }
        let Some(top) = frames.last_mut() else {
            frames.push(Frame::default());
            continue;
        };
        match t.kind {
            Kind::Name => match t.text(src) {
                "lambda" => top.lambdas = top.lambdas.saturating_add(1),
                "not" | "and" | "or" | "if" | "else" | "await" | "yield" | "in" | "is" | "for"
                | "async" | "from" => top.ops = top.ops.saturating_add(1),
                _ => {}
            },
            Kind::Str { prefix, .. } => {
                let text = t.text(src);
                let is_f = text
                    .get(..prefix as usize)
                    .is_some_and(|p| p.contains(['f', 'F']));
                if is_f {
                    top.ops = top.ops.saturating_add(fstring_levels(text));
                }
            }
            Kind::Op => match t.text(src) {
                "(" | "[" | "{" => {
                    top.ops = top.ops.saturating_add(1);
                    frames.push(Frame::default());
                }
                ")" | "]" | "}" => {
                    if frames.len() > 1 {
                        if let Some(f) = frames.pop() {
                            let depth = f.finish().saturating_add(1);
                            if let Some(parent) = frames.last_mut() {
                                parent.child = parent.child.max(depth);
                            }
                        }
                    }
                }
                "," => {
                    top.comma = true;
                    top.end_stretch();
                }
                "=" | ";" | "+=" | "-=" | "*=" | "/=" | "%=" | "&=" | "|=" | "^=" | "@="
                | "**=" | "//=" | ">>=" | "<<=" => top.end_stretch(),
                _ => top.ops = top.ops.saturating_add(1),
            },
            _ => {}
        }
    }
    // A file that ends inside brackets (it will not parse, but count it all the same).
    let depth = close_all(&frames).saturating_add(stmt_depth(&blocks));
    if depth > best.0 {
        best = (depth, tokens.last().map_or(1, |t| t.line));
    }
    // Unbalanced closing brackets never pop the root frame; unclosed ones are counted above. The
    // bracket count alone is a bound too (each open bracket is a level).
    (best.0 as usize, best.1)
}

/// Closes every open bracket level (innermost first) and returns the root's bound.
fn close_all(frames: &[Frame]) -> u32 {
    let mut carry: Option<u32> = None;
    for f in frames.iter().rev() {
        let mut f = *f;
        if let Some(c) = carry {
            f.child = f.child.max(c);
        }
        carry = Some(f.finish().saturating_add(1));
    }
    carry.map_or(0, |c| c.saturating_sub(1))
}

/// Levels an f-string's replacement fields can add: within braces, each run of name characters
/// and each other non-space character.
fn fstring_levels(text: &str) -> u32 {
    let mut depth = 0u32;
    let mut levels = 0u32;
    let mut in_word = false;
    for c in text.bytes() {
        match c {
            b'{' => {
                depth = depth.saturating_add(1);
                levels = levels.saturating_add(1);
                in_word = false;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                in_word = false;
            }
            _ if depth == 0 => {}
            b' ' | b'\t' | b'\n' => in_word = false,
            c if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 => {
                if !in_word {
                    levels = levels.saturating_add(1);
                    in_word = true;
                }
            }
            _ => {
                levels = levels.saturating_add(1);
                in_word = false;
            }
        }
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;

    fn bound(src: &str) -> usize {
        nesting_bound(src, &lex(src).tokens).0
    }

    #[test]
    fn bound_grows_with_every_kind_of_nesting() {
        let n = 300;
        let cases = [
            format!("x = {}{}\n", "[".repeat(n), "]".repeat(n)),
            format!("x = 1{}\n", "+1".repeat(n)),
            format!("x = a{}\n", ".b".repeat(n)),
            format!("x = {}a\n", "not ".repeat(n)),
            format!("x = {}a\n", "-".repeat(n)),
            format!("x = a{}\n", "()".repeat(n)),
            format!("x = {}c\n", "a if b else ".repeat(n)),
            format!("x = {}1\n", "lambda a, b: ".repeat(n)),
            format!("x = f'{{{}}}'\n", "-".repeat(n)),
            format!("if a:\n    pass\n{}", "elif b:\n    pass\n".repeat(n)),
            "[".repeat(n),
        ];
        for src in &cases {
            assert!(
                bound(src) >= n,
                "{}: {}",
                &src[..40.min(src.len())],
                bound(src)
            );
        }
    }

    #[test]
    fn ordinary_code_is_shallow() {
        let src = "import torch\n\ndef handle(req):\n    x = torch.rand(3, 3, device=d)\n    return {'a': [1, 2, 3], 'b': x.sum().item()}\n";
        assert!(bound(src) < 30, "{}", bound(src));
    }
}
