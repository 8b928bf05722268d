//! A fast, lenient Python tokenizer.
//!
//! One pass over the bytes gives the tokens that every later step uses: the nesting check
//! ([`super::limits`]), the relevance pre-check, the import scan of multi-file projects
//! ([`super::project`]) and the token-level fallback ([`super::fallback`]). Strings and comments
//! are recognised here, so nothing inside them ever counts as code.
//!
//! It never fails: on input the real grammar rejects it records why and goes on. For input it
//! claims to handle exactly (ASCII code outside strings and comments, `\n` line ends: almost all
//! real code) its names, numbers, strings, operators, newlines and indentation are the ones the
//! parser's own lexer finds (a test checks this over the whole CPython standard library). The
//! parser (`ruff_python_parser`) reads the source itself; these tokens decide what is parsed
//! (nesting bound, relevance) and what the fallback sees.

/// What a token is. Keywords are [`Kind::Name`]s (their text tells).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Name,
    Number,
    /// A string literal; `prefix` is the length of its prefix (`f`, `rb`, ...), `triple` whether
    /// it is triple-quoted, `closed` whether its closing quote was found.
    Str {
        prefix: u8,
        triple: bool,
        closed: bool,
    },
    Op,
    Newline,
    Indent,
    Dedent,
}

/// One token: its kind, byte range and 1-based line of its first byte.
#[derive(Clone, Copy, Debug)]
pub struct Token {
    pub kind: Kind,
    pub start: u32,
    pub end: u32,
    pub line: u32,
}

impl Token {
    /// The token's text.
    pub fn text<'s>(&self, src: &'s str) -> &'s str {
        src.get(self.start as usize..self.end as usize)
            .unwrap_or("")
    }

    pub fn is_op(&self, src: &str, op: &str) -> bool {
        self.kind == Kind::Op && self.text(src) == op
    }

    pub fn is_name(&self, src: &str, name: &str) -> bool {
        self.kind == Kind::Name && self.text(src) == name
    }

    /// The value of a string token without prefix and quotes, escapes left as written.
    pub fn str_body<'s>(&self, src: &'s str) -> Option<&'s str> {
        let Kind::Str {
            prefix,
            triple,
            closed,
        } = self.kind
        else {
            return None;
        };
        let q = if triple { 3 } else { 1 };
        let start = self.start as usize + prefix as usize + q;
        let end = if closed {
            (self.end as usize).checked_sub(q)?
        } else {
            self.end as usize
        };
        src.get(start..end.max(start))
    }
}

/// The tokens of one file.
#[derive(Debug, Default)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    /// The tokens are exactly what `rustpython_parser`'s lexer would produce.
    pub exact: bool,
    /// The first reason the tokens are not exact, with its line.
    pub problem: Option<(u32, &'static str)>,
}

struct Lx<'s> {
    b: &'s [u8],
    i: usize,
    line: u32,
    nesting: u32,
    at_bol: bool,
    indents: Vec<(u32, u32)>,
    out: Vec<Token>,
    exact: bool,
    problem: Option<(u32, &'static str)>,
}

const OPS3: [&[u8; 3]; 4] = [b"**=", b"//=", b">>=", b"<<="];
const OPS2: [&[u8; 2]; 19] = [
    b"**", b"//", b"<<", b">>", b"<=", b">=", b"==", b"!=", b"->", b":=", b"+=", b"-=", b"*=",
    b"/=", b"%=", b"&=", b"|=", b"^=", b"@=",
];

/// Tokenizes `src`.
pub fn lex(src: &str) -> Lexed {
    let mut lx = Lx {
        b: src.as_bytes(),
        i: 0,
        line: 1,
        nesting: 0,
        at_bol: true,
        indents: Vec::new(),
        out: Vec::with_capacity(src.len() / 5 + 8),
        exact: true,
        problem: None,
    };
    if lx.b.starts_with(b"\xEF\xBB\xBF") {
        lx.inexact("byte order mark");
        lx.i = 3;
    }
    lx.run();
    Lexed {
        tokens: lx.out,
        exact: lx.exact,
        problem: lx.problem,
    }
}

impl Lx<'_> {
    fn peek(&self, k: usize) -> u8 {
        self.b.get(self.i + k).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    fn inexact(&mut self, why: &'static str) {
        self.exact = false;
        if self.problem.is_none() {
            self.problem = Some((self.line, why));
        }
    }

    fn push(&mut self, kind: Kind, start: usize, line: u32) {
        self.out.push(Token {
            kind,
            start: start as u32,
            end: self.i as u32,
            line,
        });
    }

    fn run(&mut self) {
        loop {
            if self.at_bol {
                self.indentation();
            }
            if self.at_end() {
                break;
            }
            self.token();
        }
        if self.nesting > 0 {
            self.inexact("unclosed bracket");
        }
        let end = self.b.len();
        if !self.at_bol {
            self.out.push(Token {
                kind: Kind::Newline,
                start: end as u32,
                end: end as u32,
                line: self.line,
            });
        }
        for _ in 0..self.indents.len() {
            self.out.push(Token {
                kind: Kind::Dedent,
                start: end as u32,
                end: end as u32,
                line: self.line,
            });
        }
        self.indents.clear();
    }

    fn skip_comment(&mut self) {
        while !self.at_end() && !matches!(self.peek(0), b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// At the start of a line: measure its indentation (skipping blank and comment-only lines)
    /// and emit indents or dedents.
    fn indentation(&mut self) {
        let (mut spaces, mut tabs) = (0u32, 0u32);
        loop {
            match self.peek(0) {
                b' ' => {
                    self.i += 1;
                    spaces += 1;
                }
                b'\t' => {
                    if spaces != 0 {
                        self.inexact("tab after spaces in indentation");
                    }
                    self.i += 1;
                    tabs += 1;
                }
                b'#' => {
                    self.skip_comment();
                    (spaces, tabs) = (0, 0);
                }
                b'\x0c' => {
                    self.inexact("form feed");
                    self.i += 1;
                    (spaces, tabs) = (0, 0);
                }
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                    (spaces, tabs) = (0, 0);
                }
                b'\r' => {
                    self.inexact("carriage return");
                    self.i += 1;
                    if self.peek(0) == b'\n' {
                        self.i += 1;
                    }
                    self.line += 1;
                    (spaces, tabs) = (0, 0);
                }
                _ if self.at_end() => {
                    (spaces, tabs) = (0, 0);
                    break;
                }
                _ => {
                    self.at_bol = false;
                    break;
                }
            }
        }
        if self.nesting != 0 {
            return;
        }
        let level = (tabs, spaces);
        let current = self.indents.last().copied().unwrap_or((0, 0));
        match self.compare(level, current) {
            std::cmp::Ordering::Equal => {}
            std::cmp::Ordering::Greater => {
                self.indents.push(level);
                let start = self.i - (spaces + tabs) as usize;
                self.push(Kind::Indent, start, self.line);
            }
            std::cmp::Ordering::Less => loop {
                let current = self.indents.last().copied().unwrap_or((0, 0));
                match self.compare(level, current) {
                    std::cmp::Ordering::Less => {
                        self.indents.pop();
                        self.push(Kind::Dedent, self.i, self.line);
                    }
                    std::cmp::Ordering::Equal => break,
                    std::cmp::Ordering::Greater => {
                        self.inexact("unindent does not match any outer indentation level");
                        self.indents.push(level);
                        break;
                    }
                }
            },
        }
    }

    /// `rustpython_parser`'s comparison of indentation levels (tabs, spaces).
    fn compare(&mut self, a: (u32, u32), b: (u32, u32)) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match a.0.cmp(&b.0) {
            Less if a.1 <= b.1 => Less,
            Greater if a.1 >= b.1 => Greater,
            Equal => a.1.cmp(&b.1),
            other => {
                self.inexact("inconsistent use of tabs and spaces");
                other
            }
        }
    }

    fn token(&mut self) {
        let c = self.peek(0);
        let start = self.i;
        let line = self.line;
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let c1 = self.peek(1);
                if is_quote(c1) && single_prefix(c) {
                    self.string(1);
                } else if is_quote(self.peek(2)) && double_prefix(c, c1) {
                    self.string(2);
                } else {
                    self.name();
                }
            }
            b'0'..=b'9' => self.number(),
            b'.' => {
                if self.peek(1).is_ascii_digit() {
                    self.number();
                } else if self.peek(1) == b'.' && self.peek(2) == b'.' {
                    self.i += 3;
                    self.push(Kind::Op, start, line);
                } else {
                    self.i += 1;
                    self.push(Kind::Op, start, line);
                }
            }
            b'#' => self.skip_comment(),
            b'"' | b'\'' => self.string(0),
            b'\n' | b'\r' => {
                if c == b'\r' {
                    self.inexact("carriage return");
                    if self.peek(1) == b'\n' {
                        self.i += 1;
                    }
                }
                self.i += 1;
                self.line += 1;
                if self.nesting == 0 {
                    self.at_bol = true;
                    self.push(Kind::Newline, start, line);
                }
            }
            b' ' | b'\t' => {
                while matches!(self.peek(0), b' ' | b'\t') {
                    self.i += 1;
                }
            }
            b'\x0c' => {
                self.inexact("form feed");
                self.i += 1;
            }
            b'\\' => {
                self.i += 1;
                match self.peek(0) {
                    b'\n' => {
                        self.i += 1;
                        self.line += 1;
                    }
                    b'\r' => {
                        self.inexact("carriage return");
                        self.i += 1;
                        if self.peek(0) == b'\n' {
                            self.i += 1;
                        }
                        self.line += 1;
                    }
                    _ => self.inexact("unexpected character after line continuation"),
                }
                if self.at_end() {
                    self.inexact("end of file after line continuation");
                }
            }
            b'(' | b'[' | b'{' => {
                self.nesting = self.nesting.saturating_add(1);
                self.i += 1;
                self.push(Kind::Op, start, line);
            }
            b')' | b']' | b'}' => {
                if self.nesting == 0 {
                    self.inexact("unmatched closing bracket");
                } else {
                    self.nesting -= 1;
                }
                self.i += 1;
                self.push(Kind::Op, start, line);
            }
            b'!' if self.peek(1) != b'=' => {
                self.inexact("unexpected '!'");
                self.i += 1;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^' | b'~' | b'@' | b'<' | b'>'
            | b'=' | b'!' | b':' | b',' | b';' => {
                let rest = self.b.get(self.i..).unwrap_or(&[]);
                let len = if OPS3.iter().any(|op| rest.starts_with(&op[..])) {
                    3
                } else if OPS2.iter().any(|op| rest.starts_with(&op[..])) {
                    2
                } else {
                    1
                };
                self.i += len;
                self.push(Kind::Op, start, line);
            }
            0x80.. => {
                self.inexact("non-ASCII character in code");
                let ch = self.char_at();
                if ch.is_alphabetic() {
                    self.name();
                } else {
                    self.i += ch.len_utf8().max(1);
                }
            }
            _ => {
                self.inexact("unexpected character");
                self.i += 1;
            }
        }
    }

    fn char_at(&self) -> char {
        let rest = self.b.get(self.i..).unwrap_or(&[]);
        let n = rest.len().min(4);
        for k in (1..=n).rev() {
            if let Some(s) = rest.get(..k).and_then(|p| std::str::from_utf8(p).ok()) {
                if let Some(c) = s.chars().next() {
                    return c;
                }
            }
        }
        '\u{FFFD}'
    }

    fn name(&mut self) {
        let start = self.i;
        let line = self.line;
        loop {
            let c = self.peek(0);
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.i += 1;
            } else if c >= 0x80 {
                let ch = self.char_at();
                if ch.is_alphanumeric() {
                    self.inexact("non-ASCII identifier");
                    self.i += ch.len_utf8();
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        if self.i == start {
            self.i += 1;
        }
        self.push(Kind::Name, start, line);
    }

    fn radix_run(&mut self, digit: fn(u8) -> bool) {
        loop {
            if digit(self.peek(0)) || (self.peek(0) == b'_' && digit(self.peek(1))) {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// Number extents exactly as `rustpython_parser` finds them; [`to_parser_tokens`] checks
    /// the value.
    fn number(&mut self) {
        let start = self.i;
        let line = self.line;
        let radix: Option<fn(u8) -> bool> = match (self.peek(0), self.peek(1)) {
            (b'0', b'x' | b'X') => Some(|c: u8| c.is_ascii_hexdigit()),
            (b'0', b'o' | b'O') => Some(|c: u8| (b'0'..=b'7').contains(&c)),
            (b'0', b'b' | b'B') => Some(|c: u8| c == b'0' || c == b'1'),
            _ => None,
        };
        if let Some(digit) = radix {
            self.i += 2;
            self.radix_run(digit);
        } else {
            let dec = |c: u8| c.is_ascii_digit();
            self.radix_run(dec);
            let at_exponent = matches!(self.peek(0), b'e' | b'E')
                && (self.peek(1).is_ascii_digit()
                    || (matches!(self.peek(1), b'+' | b'-') && self.peek(2).is_ascii_digit()));
            if self.peek(0) == b'.' || at_exponent {
                if self.peek(0) == b'.' {
                    if self.peek(1) == b'_' {
                        self.inexact("invalid number");
                    }
                    self.i += 1;
                    self.radix_run(dec);
                }
                if matches!(self.peek(0), b'e' | b'E') {
                    if self.peek(1) == b'_' {
                        self.inexact("invalid number");
                    }
                    self.i += 1;
                    if matches!(self.peek(0), b'+' | b'-') {
                        if self.peek(1) == b'_' {
                            self.inexact("invalid number");
                        }
                        self.i += 1;
                    }
                    self.radix_run(dec);
                }
            }
            if matches!(self.peek(0), b'j' | b'J') {
                self.i += 1;
            }
        }
        self.push(Kind::Number, start, line);
    }

    fn string(&mut self, prefix: usize) {
        let start = self.i;
        let line = self.line;
        self.i += prefix;
        let q = self.peek(0);
        self.i += 1;
        let triple = self.peek(0) == q && self.peek(1) == q;
        if triple {
            self.i += 2;
        }
        let mut closed = false;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'\\' => {
                    self.i += 1;
                    match self.peek(0) {
                        b'\n' => self.line += 1,
                        b'\r' => self.inexact("carriage return"),
                        _ => {}
                    }
                    if !self.at_end() {
                        self.i += 1;
                    }
                }
                b'\n' => {
                    if !triple {
                        self.inexact("end of line in a string");
                        break;
                    }
                    self.line += 1;
                    self.i += 1;
                }
                b'\r' => {
                    self.inexact("carriage return");
                    if !triple {
                        break;
                    }
                    self.i += 1;
                }
                _ if c == q => {
                    if !triple {
                        self.i += 1;
                        closed = true;
                        break;
                    }
                    if self.peek(1) == q && self.peek(2) == q {
                        self.i += 3;
                        closed = true;
                        break;
                    }
                    self.i += 1;
                }
                _ => self.i += 1,
            }
        }
        if !closed {
            self.inexact("unterminated string");
        }
        self.push(
            Kind::Str {
                prefix: prefix as u8,
                triple,
                closed,
            },
            start,
            line,
        );
    }
}

fn is_quote(c: u8) -> bool {
    c == b'"' || c == b'\''
}

fn single_prefix(c: u8) -> bool {
    matches!(c.to_ascii_lowercase(), b'r' | b'f' | b'u' | b'b')
}

fn double_prefix(a: u8, b: u8) -> bool {
    matches!(
        (a.to_ascii_lowercase(), b.to_ascii_lowercase()),
        (b'r', b'f') | (b'f', b'r') | (b'r', b'b') | (b'b', b'r')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_the_parsers_lexer(src: &str) {
        let lexed = lex(src);
        assert!(lexed.exact, "{src:?}: {:?}", lexed.problem);
        assert!(lexed.problem.is_none());
        assert_eq!(crate::testing::token_mismatch(src), None, "{src:?}");
    }

    #[test]
    fn tokens_match_the_parsers_lexer_on_tricky_snippets() {
        for src in [
            "",
            "x = 1",
            "x = 1\n",
            "if x:\n    y = 2\n\n# c\n  # d\nz = 0x_1F + 0o7 + 0b1 + 1_000 + 1.5e-3 + 2j + .5 + 1. + 1e5\n",
            "def f(a, *, b=...):\n\treturn a ** b // 2 >> 1\n",
            "s = rb'\\x00' + f\"{a!r:>{w}}\" + '''x\n'y''' + \"\"\"\"q\"\"\" + u'\\''\n",
            "match x:\n    case [1, 2]:\n        pass\nmatch = 1\ntype X = int\ntype = 3\n",
            "x = (1,\n  2)\ny = [\n]\n",
            "a = b \\\n  + c\n",
            "class A:\n    def f(self):\n        if x:\n            return 1\n    y = 2\n",
            "lambda: (yield)\nx @= y\nz := 1\n",
            "print('é', \"日本\")  # ünïcode in a comment\n",
            "x = 00\ny = 0.0\n",
        ] {
            same_as_the_parsers_lexer(src);
        }
    }

    #[test]
    fn strings_and_comments_hide_code() {
        let src = "# import torch\n\"import cupy\"\nx = '.cuda()'\n";
        let lexed = lex(src);
        assert!(lexed
            .tokens
            .iter()
            .all(|t| t.kind != Kind::Name || t.text(src) == "x"));
    }

    #[test]
    fn hostile_input_is_lexed_without_panicking() {
        for src in [
            "'unterminated",
            "\"\"\"never closed",
            "x = (((",
            ")))",
            "\\",
            "\u{0}\u{1}\u{7f}$?`",
            "\r\r\n\x0c",
            "é = 1",
            "0x",
            "1e",
            "1_",
            "\t  \t x",
        ] {
            let lexed = lex(src);
            // Exact or not, comparing with the parser's lexer never panics.
            let _ = crate::testing::token_mismatch(src);
            assert!(lexed.tokens.iter().all(|t| t.start <= t.end));
        }
    }
}
